"""Noise blocks: non-linear, random Systems applied after the linear forward model.

Conventions shared by every block here:

* **Gaussian noise** of level ``sigma`` has ``E|n|^2 = sigma^2`` per entry. Real data get real
  noise ``n ~ N(0, sigma^2)``; complex data get circular complex noise whose real and imaginary
  parts are i.i.d. ``N(0, sigma^2 / 2)``. With the orthonormal FFT, ``sigma`` in k-space is the
  same ``sigma`` in the image domain.
* **Per-sample parameters**: a parameter (``sigma``, ``snr_db``, ``gain``) is a float, a 1-D tensor
  of length ``B`` (one value per sample, whatever the data's number of dimensions), or a tensor
  broadcastable against the data, e.g. ``(B, 1, 1, 1)``.
* **Reproducibility**: every ``forward`` takes an optional ``torch.Generator`` (on the data's
  device); the same generator state gives the same noise.
"""

from __future__ import annotations

import math

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import System


def _as_parameter(value: float | torch.Tensor, name: str, owner: str) -> torch.Tensor:
    """A float64 tensor holding ``value``; float64 so that float64 data see no float32 rounding."""
    tensor = torch.as_tensor(value).detach().clone().to(torch.float64)
    if tensor.is_complex() or not torch.isfinite(tensor).all():
        raise UserError(f"{owner}: {name} must be real and finite, got {value}")
    return tensor


def _per_sample(param: torch.Tensor, y: torch.Tensor, name: str, owner: str) -> torch.Tensor:
    """``param`` shaped to broadcast against ``y`` (1-D: one per sample), in ``y``'s real dtype."""
    given_shape = tuple(param.shape)
    if param.ndim == 1 and y.ndim > 1:
        param = param.reshape(-1, *([1] * (y.ndim - 1)))
    try:
        fits = torch.broadcast_shapes(param.shape, y.shape) == y.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{owner}: {name} of shape {given_shape} does not broadcast against data of "
            f"shape {tuple(y.shape)}; expected a float, a 1-D tensor of length {y.shape[0]} "
            "or a tensor broadcastable against the data"
        )
    return param.to(device=y.device, dtype=y.real.dtype)


def _check_floating(y: torch.Tensor, owner: str) -> None:
    if not (y.is_floating_point() or y.is_complex()):
        raise TypeError(f"{owner} expects floating-point or complex data, got {y.dtype}")


def _check_patchable(level: torch.Tensor | None, name: str, owner: str) -> None:
    """Noise is pixel-wise, so a System of it acts on a patch as on the whole image, unless its
    level varies over the image (a level map would need cropping)."""
    if level is not None and level.ndim > 1 and any(size > 1 for size in level.shape[2:]):
        raise UserError(
            f"{owner}: a {name} of shape {tuple(level.shape)} varies over the image; patch "
            "inference needs a scalar or per-sample level"
        )


def _add_gaussian_noise(
    y: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """``y + sigma * n`` with ``E|n|^2 = 1``: ``torch.randn`` on a complex dtype already draws
    each part with variance 1/2."""
    noise = torch.randn(y.shape, dtype=y.dtype, device=y.device, generator=generator)
    return y + sigma * noise


class GaussianNoise(System):
    """``y + n`` with ``n`` Gaussian of standard deviation ``sigma`` (``E|n|^2 = sigma^2``).

    Real data get real noise ``N(0, sigma^2)``; complex data get circular complex noise, real and
    imaginary parts i.i.d. ``N(0, sigma^2 / 2)``.

    Args:
        sigma: noise level >= 0: a float, a ``(B,)`` tensor (per sample) or a tensor broadcastable
            against the data.

    Shapes: any ``y`` (images ``(B, C, H, W)``, volumes ``(B, C, X, Y, Z)``, k-space); the
    output has the shape and dtype of ``y``.
    """

    def __init__(self, sigma: float | torch.Tensor):
        super().__init__()
        self.register_buffer("sigma", _as_parameter(sigma, "sigma", type(self).__name__))
        if (self.sigma < 0).any():
            raise UserError(f"{type(self).__name__}: sigma must be >= 0, got {sigma}")

    def noise_sigma(self, y: torch.Tensor) -> torch.Tensor:
        """The noise level applied to ``y``, broadcastable against ``y``."""
        return _per_sample(self.sigma, y, "sigma", type(self).__name__)

    def forward(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_floating(y, type(self).__name__)
        return _add_gaussian_noise(y, self.noise_sigma(y), generator)

    def patch(self, region: tuple[slice, ...]) -> GaussianNoise:
        """The noise on a patch (images or volumes): this System (noise is pixel-wise)."""
        _check_patchable(self.sigma, "sigma", type(self).__name__)
        return self


class ComplexGaussianNoise(GaussianNoise):
    """``y + n`` for complex ``y``, with circular complex Gaussian ``n``: real and imaginary parts
    i.i.d. ``N(0, sigma^2 / 2)``, so that ``E|n|^2 = sigma^2``.

    The level is given either as ``sigma`` or as a target signal-to-noise ratio ``snr_db``, defined
    per sample ``b`` from the root-mean-square of that sample's entries::

        rms_b   = sqrt(mean(|y_b|^2))                  (mean over all non-batch entries)
        SNR_b   = 10 log10(rms_b^2 / E|n|^2) = 20 log10(rms_b / sigma_b)
        sigma_b = rms_b * 10^(-snr_db / 20)

    so the expected noise power is ``snr_db`` decibels below the signal's mean power. An all-zero
    sample gets no noise.

    Args:
        sigma: noise level >= 0 (a float, a ``(B,)`` tensor or a tensor broadcastable against
            ``y``).
        snr_db: target SNR in decibels (a float or a ``(B,)`` tensor), instead of ``sigma``.

    Shapes: any complex ``y`` with a leading batch dimension; the output has its shape and dtype.
    """

    def __init__(
        self,
        sigma: float | torch.Tensor | None = None,
        *,
        snr_db: float | torch.Tensor | None = None,
    ):
        if (sigma is None) == (snr_db is None):
            raise UserError(
                "ComplexGaussianNoise: give exactly one of sigma and snr_db, "
                f"got sigma={sigma} and snr_db={snr_db}"
            )
        super().__init__(0.0 if sigma is None else sigma)
        if snr_db is None:
            self.register_buffer("snr_db", None)
        else:
            self.sigma = None  # the level follows the signal; see noise_sigma()
            self.register_buffer("snr_db", _as_parameter(snr_db, "snr_db", type(self).__name__))

    def noise_sigma(self, y: torch.Tensor) -> torch.Tensor:
        """The noise level applied to ``y``, broadcastable against ``y``: ``sigma``, or the
        per-sample ``rms_b * 10^(-snr_db / 20)`` of shape ``(B, 1, ..., 1)``."""
        if self.snr_db is None:
            return super().noise_sigma(y)
        if y.ndim < 2:
            raise ValueError(
                "ComplexGaussianNoise: snr_db needs data with a leading batch dimension, "
                f"got shape {tuple(y.shape)}"
            )
        dims = tuple(range(1, y.ndim))
        rms = y.abs().square().mean(dim=dims, keepdim=True).sqrt()
        snr_db = _per_sample(self.snr_db, y, "snr_db", type(self).__name__)
        return rms * 10.0 ** (-snr_db / 20.0)

    def forward(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not y.is_complex():
            raise TypeError(f"ComplexGaussianNoise expects complex data, got {y.dtype}")
        return _add_gaussian_noise(y, self.noise_sigma(y), generator)

    def patch(self, region: tuple[slice, ...]) -> ComplexGaussianNoise:
        """This System, for a ``sigma``; an ``snr_db`` level follows the whole sample's power,
        which a patch does not see, and raises a :class:`~deepinv_lab.errors.UserError`."""
        if self.snr_db is not None:
            raise UserError(
                "ComplexGaussianNoise: a level given as snr_db depends on the whole sample; "
                "patch inference needs sigma"
            )
        return super().patch(region)


class RandomSigmaGaussianNoise(System):
    """Gaussian noise with a level drawn per sample, ``sigma_b ~ U[sigma_min, sigma_max]``, for
    training blind denoisers. The noise convention is :class:`GaussianNoise`'s.

    A training loop gets the drawn levels in either of two ways: ``forward(y, return_sigma=True)``
    returns ``(noisy, sigma)``, and after every call ``last_sigma`` holds the ``(B,)`` levels of
    the latest draw (a non-persistent buffer, on the data's device).

    Args:
        sigma_min, sigma_max: the range of the noise level, ``0 <= sigma_min <= sigma_max``.

    Shapes: ``y`` of shape ``(B, ...)`` -> noisy ``y`` of the same shape and dtype; ``sigma``
    ``(B,)`` in ``y``'s real dtype.
    """

    def __init__(self, sigma_min: float, sigma_max: float):
        super().__init__()
        if not 0 <= sigma_min <= sigma_max:
            raise UserError(
                "RandomSigmaGaussianNoise: expected 0 <= sigma_min <= sigma_max, got "
                f"sigma_min={sigma_min}, sigma_max={sigma_max}"
            )
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.register_buffer("last_sigma", None, persistent=False)

    def sample_sigma(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """``batch_size`` levels drawn uniformly from ``[sigma_min, sigma_max]``, shape ``(B,)``."""
        u = torch.rand(batch_size, generator=generator, device=device, dtype=dtype)
        return self.sigma_min + (self.sigma_max - self.sigma_min) * u

    def forward(
        self,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        return_sigma: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        _check_floating(y, type(self).__name__)
        if y.ndim < 1:
            raise ValueError("RandomSigmaGaussianNoise needs data with a leading batch dimension")
        sigma = self.sample_sigma(y.shape[0], generator, y.device, y.real.dtype)
        self.last_sigma = sigma
        noisy = _add_gaussian_noise(y, sigma.reshape(-1, *([1] * (y.ndim - 1))), generator)
        return (noisy, sigma) if return_sigma else noisy

    def patch(self, region: tuple[slice, ...]) -> RandomSigmaGaussianNoise:
        """The noise on a patch: this System (noise is pixel-wise)."""
        return self


class PoissonNoise(System):
    """Photon-counting noise ``y = Poisson(gain * x) / gain``, so ``E[y] = x`` and
    ``Var[y] = x / gain``: a larger ``gain`` (more photons per unit intensity) is less noisy.

    Args:
        gain: photons per unit of intensity, > 0: a float, a ``(B,)`` tensor (per sample) or a
            tensor broadcastable against ``x``.

    Shapes: real, non-negative ``x`` of any shape -> ``y`` of the same shape and dtype.
    """

    def __init__(self, gain: float | torch.Tensor):
        super().__init__()
        self.register_buffer("gain", _as_parameter(gain, "gain", type(self).__name__))
        if (self.gain <= 0).any():
            raise UserError(f"PoissonNoise: gain must be > 0, got {gain}")

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(f"PoissonNoise expects real floating-point intensities, got {x.dtype}")
        minimum = float(x.min()) if x.numel() else 0.0
        if minimum < 0 or math.isnan(minimum):
            raise ValueError(
                f"PoissonNoise expects non-negative intensities x >= 0, got a minimum of {minimum}"
            )
        gain = _per_sample(self.gain, x, "gain", type(self).__name__)
        return torch.poisson(x * gain, generator=generator) / gain

    def patch(self, region: tuple[slice, ...]) -> PoissonNoise:
        """The noise on a patch (images or volumes): this System (noise is pixel-wise)."""
        _check_patchable(self.gain, "gain", type(self).__name__)
        return self
