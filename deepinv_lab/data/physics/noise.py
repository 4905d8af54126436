"""Noise models of simulated data: the distribution of ``n`` in ``y = A x + n`` and how its level
is drawn per item (a fixed level, or one drawn uniformly from a range, for blind training).

Each model is a config block (``physics.init_args.noise``). It draws the item's level into the
batch (``sigma`` or ``gain``), adds noise with the per-item generators of
:meth:`~deepinv_lab.data.physics.base.Physics.measure`, and gives the noise as a System with the
batch's levels (:meth:`NoiseModel.system`, the System of denoising batches).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import System
from deepinv_lab.systems.noise import GaussianNoise, PoissonNoise


def _level(
    owner: str, name: str, value: float | None, value_range: Sequence[float] | None,
    default: float | None, minimum: float, strict: bool,
) -> tuple[float | None, tuple[float, float] | None]:  # fmt: skip
    """``(value, None)`` or ``(None, (low, high))``, checked: ``value >= minimum`` (``>`` with
    ``strict``) and finite."""
    key = f"{name}_range"
    if value is not None and value_range is not None:
        raise UserError(f"{owner}: give either {name} ({value}) or {key} ({value_range}), not both")

    def valid(v: float) -> bool:
        return math.isfinite(v) and (v > minimum if strict else v >= minimum)

    bound = f"{'>' if strict else '>='} {minimum:g}"
    if value_range is not None:
        value_range = tuple(float(v) for v in value_range)
        if (
            len(value_range) != 2
            or not all(map(valid, value_range))
            or value_range[0] > value_range[1]
        ):
            raise UserError(
                f"{owner}: {key} must be (low, high) with {bound} and low <= high, got "
                f"{list(value_range)}"
            )
        return None, value_range
    value = default if value is None else value
    if value is None or not valid(float(value)):
        raise UserError(f"{owner}: {name} must be a finite number {bound}, got {value}")
    return float(value), None


def _draw(value: float | None, value_range: tuple[float, float] | None, generator) -> torch.Tensor:
    if value_range is None:
        return torch.tensor(value, dtype=torch.float32)
    low, high = value_range
    return (low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64)).float()


#: The default Gaussian noise level of the denoising data: 25 on the 0-255 scale.
DEFAULT_SIGMA = 25 / 255


class NoiseModel:
    """Base class of the noise models: :meth:`draw` (the item's level), :meth:`add` (noise on a
    batch, item by item) and :meth:`system` (the noise as a System with the batch's levels)."""

    #: The batch key of the level.
    key: str

    def draw(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement draw")

    def system(self, params: dict[str, torch.Tensor]) -> System:
        raise NotImplementedError(f"{type(self).__name__} must implement system")

    def add(
        self, y: torch.Tensor, params: dict[str, torch.Tensor], generators: list[torch.Generator]
    ) -> torch.Tensor:
        """``y + n`` for a batch ``y``, item ``i``'s noise drawn from ``generators[i]`` (so an
        item's noise does not depend on the batch it is in)."""
        noise = self.system(params)
        levels = params[self.key].reshape(-1)
        return torch.cat(
            [
                type(noise)(levels[i : i + 1])(y[i : i + 1], generator=g)
                for i, g in enumerate(generators)
            ]
        )


class Gaussian(NoiseModel):
    """White Gaussian noise of standard deviation ``sigma``: real for real measurements, circular
    complex (``E|n|^2 = sigma^2``) for complex ones
    (:class:`~deepinv_lab.systems.noise.GaussianNoise`).

    Args:
        sigma: the level, >= 0, in the units of the measurements (images in ``[0, 1]``; MRI
            k-space of images whose maximum is about 1).
        sigma_range: ``(low, high)``: instead, a level drawn uniformly per item (blind training;
            validation items keep theirs from epoch to epoch).

    Batch key: ``sigma`` ``(B,)``.
    """

    key = "sigma"

    def __init__(self, sigma: float | None = None, sigma_range: tuple[float, float] | None = None):
        self.sigma, self.sigma_range = _level(
            "Gaussian noise", "sigma", sigma, sigma_range, None, 0.0, strict=False
        )

    def draw(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"sigma": _draw(self.sigma, self.sigma_range, generator)}

    def system(self, params: dict[str, torch.Tensor]) -> GaussianNoise:
        return GaussianNoise(params["sigma"])

    def __repr__(self) -> str:
        level = self.sigma if self.sigma_range is None else list(self.sigma_range)
        return f"Gaussian({'sigma' if self.sigma_range is None else 'sigma_range'}={level})"


class Poisson(NoiseModel):
    """Photon-counting noise ``y = Poisson(gain x) / gain`` (:class:`~deepinv_lab.systems.noise.
    PoissonNoise`): ``E[y] = x``, ``Var[y] = x / gain``; for non-negative real measurements
    (images, not k-space).

    Args:
        gain: photons per unit intensity, > 0 (a peak of ``gain`` photons for images in
            ``[0, 1]``); larger is less noisy.
        gain_range: ``(low, high)``: instead, a gain drawn uniformly per item.

    Batch key: ``gain`` ``(B,)``.
    """

    key = "gain"

    def __init__(self, gain: float | None = None, gain_range: tuple[float, float] | None = None):
        self.gain, self.gain_range = _level(
            "Poisson noise", "gain", gain, gain_range, None, 0.0, strict=True
        )

    def draw(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"gain": _draw(self.gain, self.gain_range, generator)}

    def system(self, params: dict[str, torch.Tensor]) -> PoissonNoise:
        return PoissonNoise(params["gain"])

    def __repr__(self) -> str:
        level = self.gain if self.gain_range is None else list(self.gain_range)
        return f"Poisson({'gain' if self.gain_range is None else 'gain_range'}={level})"
