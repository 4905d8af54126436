"""The physics of simulated data: which System measures the ground truth, how its per-sample
parameters are drawn, and the noise.

A :class:`Physics` is a config block (``data.init_args.physics``). For every item it

1. **draws** the item's parameters from the item's generator (:meth:`Physics.draw`): a mask, a
   trajectory, coil maps, a noise level, plus ``noise_seed``, the seed of the noise realisation;
2. **measures** a batch of ground-truth images with them (:meth:`Physics.measure`):
   ``y = R(A x + n)``, where ``A`` is :meth:`Physics.acquisition` of the parameters, ``n`` the
   noise (:mod:`deepinv_lab.data.physics.noise`) drawn per item from ``noise_seed``, and ``R``
   the restriction to what is acquired (:meth:`Physics.restrict`: the sampled k-space locations,
   the observed pixels);
3. **builds the System** that travels with the batch (:meth:`Physics.system`), from the
   parameters the reconstruction may know (estimated coil maps replace the true ones when the
   physics estimates them from the measurements).

Parameters are flat batch keys (``mask``, ``coil_maps``, ``sigma``, ...) with a leading batch
dimension once collated, so the System is built the same way in DataLoader workers and on the
training device (:mod:`deepinv_lab.data.simulation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from deepinv_lab.data.physics.noise import NoiseModel
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem, System

#: Per-item or per-batch parameters of a physics, by batch key.
Params = dict[str, torch.Tensor]

#: The batch key of the seed of each item's noise realisation.
NOISE_SEED = "noise_seed"


def noise_generators(seeds: torch.Tensor, device: torch.device) -> list[torch.Generator]:
    """One generator on ``device`` per item, seeded by its ``noise_seed``."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds.reshape(-1)]


class Physics:
    """How measurements ``y = R(A x + n)`` are simulated (module docstring).

    Subclasses implement :meth:`draw_operator` (the operator's per-item parameters) and
    :meth:`operator` (``A`` from batched parameters), and may override :meth:`restrict`,
    :meth:`estimate` and :meth:`system`.

    Args:
        noise: the noise model (e.g. ``Gaussian(sigma=0.01)``); ``None``: noiseless.
    """

    #: Whether the ground truth must be complex (MRI: magnitude times a smooth phase) or real.
    complex_images: ClassVar[bool] = False

    def __init__(self, noise: NoiseModel | None = None):
        if noise is not None and not isinstance(noise, NoiseModel):
            raise UserError(
                f"{type(self).__name__}: noise must be a noise model of "
                f"deepinv_lab.data.physics.noise (e.g. Gaussian), got {type(noise).__name__}"
            )
        self.noise = noise

    # ---- per item ------------------------------------------------------------------------
    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        """The operator's parameters for one image ``(C, H, W)``, without a batch dimension."""
        raise NotImplementedError(f"{type(self).__name__} must implement draw_operator")

    def draw(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        """All parameters of one item: the operator's, the noise level's, and ``noise_seed``."""
        params = self.draw_operator(tuple(image_shape), generator)
        if self.noise is not None:
            params.update(self.noise.draw(generator))
        params[NOISE_SEED] = torch.randint(0, 2**62, (), generator=generator)
        return params

    # ---- per batch -----------------------------------------------------------------------
    def operator(self, params: Params) -> LinearSystem:
        """The linear operator ``A`` of a batch's parameters (leading batch dimension)."""
        raise NotImplementedError(f"{type(self).__name__} must implement operator")

    def acquisition(self, params: Params) -> LinearSystem:
        """The operator that acquires the data (default: :meth:`operator`; a weighted
        reconstruction operator acquires without its weights, see :meth:`restrict`)."""
        return self.operator(params)

    def restrict(self, y: torch.Tensor, params: Params, acquisition: LinearSystem) -> torch.Tensor:
        """``R y``: the noisy acquired data as the reconstruction's operator sees them (default:
        unchanged; the sampled k-space locations, density weights, observed pixels)."""
        return y

    def estimate(self, y: torch.Tensor, params: Params) -> Params:
        """Parameters estimated from the measurements, replacing drawn ones in the batch
        (default: none)."""
        return {}

    def system(self, params: Params) -> System:
        """The System handed to the Recon with the batch (default: the operator)."""
        return self.operator(params)

    @torch.no_grad()
    def measure(self, x: torch.Tensor, params: Params) -> tuple[torch.Tensor, Params]:
        """``y = R(A x + n)`` for a batch ``x`` and its parameters (which hold ``noise_seed``),
        and the parameters estimated from ``y``."""
        acquisition = self.acquisition(params).to(x.device)
        y = acquisition(x)
        if self.noise is not None:
            generators = noise_generators(params[NOISE_SEED], y.device)
            y = self.noise.add(y, params, generators)
        y = self.restrict(y, params, acquisition)
        return y, self.estimate(y, params)

    def describe(self) -> str:
        """A short description for error messages."""
        return type(self).__name__
