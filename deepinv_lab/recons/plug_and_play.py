"""Plug-and-play priors: a denoiser, trained once for denoising, used as the prior of any linear
inverse problem. PnP-HQS with DPIR's noise-level schedule, PnP-ADMM, and RED."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.optim.convergence import OnFailure, check_on_failure
from deepinv_lab.optim.red import REDInfo, red_gradient
from deepinv_lab.optim.splitting import SplittingInfo, admm
from deepinv_lab.recons.base import SolutionRecon, require_linear
from deepinv_lab.recons.trained import accepts_noise_level
from deepinv_lab.systems.base import LinearSystem, System


def _positive(value: float, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"{owner}: {name} must be a number > 0, got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def _positive_int(value: int, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return value


def _non_negative_int(value: int, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{owner}: {name} must be an integer >= 0, got {value!r}")
    return value


def input_channels(model: nn.Module) -> int | None:
    """The channels ``model`` takes: those of its first 2D or 3D convolution (None if it has
    none)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            return module.in_channels
    return None


def denoise(
    denoiser: nn.Module, x: torch.Tensor, sigma: torch.Tensor, pad: int = 0
) -> torch.Tensor:
    """``D(x)`` at noise level ``sigma`` ``(B,)``, for any image ``x`` ``(B, C, H, W)``.

    ``pad``: the image is extended by ``pad`` pixels on each side by reflection before the
    denoiser and cropped back after, so that the network's zero padding does not darken the
    borders (at most ``H - 1``, ``W - 1``).

    A complex image is denoised as two real images, its real and imaginary parts (folded into
    the batch: one forward); the channels of an image are denoised one by one when the network
    takes one channel and the image has more. ``sigma`` reaches the network when its ``forward``
    takes a ``sigma`` argument (see :func:`~deepinv_lab.recons.trained.accepts_noise_level`).
    """
    if pad > 0:
        rows, cols = min(pad, x.shape[-2] - 1), min(pad, x.shape[-1] - 1)
        if x.is_complex():  # reflect padding of complex tensors: each part alone
            padded = torch.complex(*(_reflect(part, rows, cols) for part in (x.real, x.imag)))
        else:
            padded = _reflect(x, rows, cols)
        out = denoise(denoiser, padded, sigma)
        return out[..., rows : out.shape[-2] - rows, cols : out.shape[-1] - cols]
    if x.is_complex():
        parts = denoise(denoiser, torch.cat([x.real, x.imag]), torch.cat([sigma, sigma]))
        real, imag = parts.chunk(2)
        return torch.complex(real, imag)
    batch, channels = x.shape[:2]
    if channels > 1 and input_channels(denoiser) == 1:
        folded = x.reshape(batch * channels, 1, *x.shape[2:])
        out = denoise(denoiser, folded, sigma.repeat_interleave(channels))
        return out.reshape(x.shape)
    if accepts_noise_level(denoiser):
        return denoiser(x, sigma=sigma)
    return denoiser(x)


def _reflect(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (cols, cols, rows, rows), mode="reflect")


def check_denoiser_channels(owner: str, denoiser: nn.Module, image: torch.Tensor) -> None:
    """A UserError when the denoiser's input channels fit neither one channel of ``image`` nor
    all of them (a complex image counts its real and imaginary parts separately)."""
    channels = input_channels(denoiser)
    if channels is not None and channels not in (1, image.shape[1]):
        parts = (
            ", complex: real and imaginary parts are denoised apart" if image.is_complex() else ""
        )
        raise UserError(
            f"{owner}: the denoiser takes {channels} channels and the images are "
            f"{tuple(image.shape)} ({image.shape[1]} channel(s){parts}); use a denoiser "
            "trained on 1 channel or on as many as the images have"
        )


class _DenoiserPrior(SolutionRecon):
    """What PnP and RED share: the denoiser, the measurement noise level, output and checks."""

    denoiser: nn.Module
    magnitude: bool

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_linear(self, system)
        check_denoiser_channels(type(self).__name__, self.denoiser, system.adjoint(y))

    pad: int

    def _denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        levels = torch.as_tensor(sigma, dtype=x.real.dtype, device=x.device)
        return denoise(self.denoiser, x, levels.expand(x.shape[0]), self.pad)


class PlugAndPlay(_DenoiserPrior):
    """Plug-and-play reconstruction: ``x = argmin 1/2 ||A x - y||^2 + g(x)`` by variable
    splitting, with the proximal step of ``g`` replaced by a denoiser (Venkatakrishnan, Bouman &
    Wohlberg 2013).

    ``method="hqs"`` is DPIR (Zhang et al., "Plug-and-play image restoration with deep denoiser
    prior", TPAMI 2021): half-quadratic splitting with the denoiser's noise level decreasing
    log-uniformly from ``sigma_max`` to ``sigma_min`` over the iterations, and the penalty
    ``rho_k = lamda sigma_n^2 / sigma_k^2`` (``sigma_n`` the measurements' noise level,
    ``noise_level``), DPIR's own coupling. ``method="admm"`` is PnP-ADMM (Chan, Wang & Elgendy
    2017) with the same schedule, its dual rescaled as ``rho`` grows. See
    :func:`~deepinv_lab.optim.splitting.admm`; the x-steps are CG solves on
    ``A^H A + rho_k I``, so any linear System works.

    Args:
        denoiser: the prior: a :class:`~deepinv_lab.recons.TrainedDenoiser` (a ``fit``
            checkpoint of a denoising config, frozen) or any network ``(B, C, H, W) -> same``
            (then its weights are trainable: unrolled PnP). It is told ``sigma_k`` when its
            ``forward`` takes ``sigma``. Complex images are denoised as real and imaginary
            parts, multi-channel images channel by channel for a 1-channel denoiser.
        method: ``"hqs"`` (DPIR) or ``"admm"``.
        num_iterations: ``K`` (DPIR: 8 for deblurring, 24-40 for super-resolution).
        noise_level: ``sigma_n > 0``, the standard deviation of the measurement noise, in the
            units of ``y`` (after :class:`~deepinv_lab.recons.Normalized`, if it wraps this).
        lamda: DPIR's ``lambda`` (0.23), the prior's weight.
        sigma_max: the first noise level (DPIR: 49/255, for images in [0, 1]).
        sigma_min: the last (default ``max(noise_level, 0.6/255)``, DPIR's).
        cg_max_iter, cg_tol: each x-step's CG budget.
        pad: reflection padding of the images the denoiser sees, in pixels (see
            :func:`denoise`): without it the network's zero padding spoils the borders (on the
            ``pnp_inpainting.json`` crops: 24.0 dB without, 28.7 dB with 8 or more).
        output: ``"denoised"``, the last denoiser output ``z_K`` (DPIR's), or
            ``"data_consistent"``, the last x-step ``x_K``.
        magnitude: return ``|x|`` for complex images.

    Returns ``z_K`` or ``x_K`` (``output``). Diagnostics: ``pnp/iterations``,
    ``pnp/relative_residual`` (last ``||z_k - z_{k-1}|| / ||z_k||``), ``pnp/primal_residual``
    (``||x_K - z_K|| / ||z_K||``), ``pnp/cg_iterations``.

    Shapes: ``y`` as the System produces it -> the System's image shape.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        method: Literal["hqs", "admm"] = "hqs",
        num_iterations: int = 8,
        noise_level: float = 0.01,
        lamda: float = 0.23,
        sigma_max: float = 49 / 255,
        sigma_min: float | None = None,
        cg_max_iter: int = 20,
        cg_tol: float = 1e-6,
        pad: int = 16,
        output: Literal["denoised", "data_consistent"] = "data_consistent",
        magnitude: bool = True,
    ):
        super().__init__()
        owner = type(self).__name__
        if output not in ("denoised", "data_consistent"):
            raise UserError(
                f"{owner}: output must be 'denoised' or 'data_consistent', got {output!r}"
            )
        if method not in ("hqs", "admm"):
            raise UserError(f"{owner}: method must be 'hqs' or 'admm', got {method!r}")
        self.num_iterations = _positive_int(num_iterations, "num_iterations", owner)
        self.noise_level = _positive(noise_level, "noise_level", owner)
        self.lamda = _positive(lamda, "lamda", owner)
        self.sigma_max = _positive(sigma_max, "sigma_max", owner)
        if sigma_min is None:
            sigma_min = min(max(self.noise_level, 0.6 / 255), self.sigma_max)
        self.sigma_min = _positive(sigma_min, "sigma_min", owner)
        if self.sigma_min > self.sigma_max:
            raise UserError(
                f"{owner}: sigma_min ({self.sigma_min}) must be at most sigma_max "
                f"({self.sigma_max})"
            )
        _positive_int(cg_max_iter, "cg_max_iter", owner)
        self.pad, self.output = _non_negative_int(pad, "pad", owner), output
        self.denoiser, self.method = denoiser, method
        self.cg_max_iter, self.cg_tol, self.magnitude = cg_max_iter, cg_tol, magnitude
        self.last_info: SplittingInfo | None = None

    def noise_levels(self) -> torch.Tensor:
        """``sigma_k``, ``k = 1..K``: log-uniform from ``sigma_max`` to ``sigma_min``."""
        return torch.logspace(
            math.log10(self.sigma_max),
            math.log10(self.sigma_min),
            self.num_iterations,
            dtype=torch.float64,
        )

    def penalties(self) -> torch.Tensor:
        """``rho_k = lamda sigma_n^2 / sigma_k^2``."""
        return self.lamda * self.noise_level**2 / self.noise_levels() ** 2

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        coupling = self.lamda * self.noise_level**2

        def prox(v: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
            # step = 1 / rho_k, so the denoiser's level is sigma_k = sqrt(lamda sigma_n^2 step)
            return self._denoise(v, (coupling * step.flatten(1)[:, 0]).sqrt())

        x, z, self.last_info = admm(
            system,
            y,
            prox,
            self.penalties(),
            dual=self.method == "admm",
            cg_tol=self.cg_tol,
            cg_max_iter=self.cg_max_iter,
        )
        return z if self.output == "denoised" else x

    def diagnostics(self) -> dict[str, float]:
        return {} if self.last_info is None else self.last_info.summary("pnp/")


class RED(_DenoiserPrior):
    """Regularisation by denoising (Romano, Elad & Milanfar, 2017):
    ``x = argmin 1/2 ||A x - y||^2 + rho/2 x^T (x - D(x))`` with a fixed denoiser level
    ``sigma`` and ``rho = lamda sigma_n^2 / sigma^2`` (the coupling of :class:`PlugAndPlay`, so
    that ``lamda`` means the same in both).

    Args:
        denoiser: as :class:`PlugAndPlay`'s.
        form: ``"fixed_point"`` (``x_k = (A^H A + rho I)^{-1} (A^H y + rho D(x_{k-1}))``, one CG
            solve per iteration) or ``"gradient"`` (descent with step ``1 / (L + rho)``), see
            :mod:`deepinv_lab.optim.red`.
        sigma: the denoiser's noise level (images in [0, 1]: e.g. 5/255 to 15/255).
        noise_level: ``sigma_n > 0`` of the measurements, in the units of ``y``.
        lamda: the prior's weight.
        num_iterations, tol: iterations at most; a sample stops once its relative change is at
            most ``tol`` (0: all of them; a missed ``tol > 0`` warns as every solver does).
        cg_max_iter, cg_tol: the fixed-point form's CG budget per iteration.
        pad: reflection padding of the denoiser's images, as :class:`PlugAndPlay`'s.
        magnitude: return ``|x|`` for complex images.

    Returns the last ``x``. Diagnostics ``red/iterations``, ``red/relative_residual`` and, for
    the fixed-point form, ``red/cg_iterations``, ``red/primal_residual``
    (``||x_K - D(x_{K-1})|| / ||D(x_{K-1})||``).
    """

    def __init__(
        self,
        denoiser: nn.Module,
        form: Literal["fixed_point", "gradient"] = "fixed_point",
        sigma: float = 10 / 255,
        noise_level: float = 0.01,
        lamda: float = 0.23,
        num_iterations: int = 30,
        tol: float = 0.0,
        cg_max_iter: int = 20,
        cg_tol: float = 1e-6,
        pad: int = 16,
        magnitude: bool = True,
        on_failure: OnFailure = "warn",
    ):
        super().__init__()
        owner = type(self).__name__
        if form not in ("fixed_point", "gradient"):
            raise UserError(f"{owner}: form must be 'fixed_point' or 'gradient', got {form!r}")
        check_on_failure(on_failure, owner)
        self.sigma = _positive(sigma, "sigma", owner)
        self.noise_level = _positive(noise_level, "noise_level", owner)
        self.lamda = _positive(lamda, "lamda", owner)
        self.num_iterations = _positive_int(num_iterations, "num_iterations", owner)
        _positive_int(cg_max_iter, "cg_max_iter", owner)
        self.pad = _non_negative_int(pad, "pad", owner)
        self.denoiser, self.form, self.tol = denoiser, form, tol
        self.cg_max_iter, self.cg_tol, self.magnitude = cg_max_iter, cg_tol, magnitude
        self.on_failure = on_failure
        self.last_info: SplittingInfo | REDInfo | None = None

    @property
    def weight(self) -> float:
        """``rho = lamda sigma_n^2 / sigma^2``."""
        return self.lamda * self.noise_level**2 / self.sigma**2

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        if self.form == "gradient":
            x, self.last_info = red_gradient(
                system,
                y,
                lambda v: self._denoise(v, self.sigma),
                self.weight,
                max_iter=self.num_iterations,
                tol=self.tol,
                on_failure=self.on_failure,
            )
            return x
        x, _, self.last_info = admm(
            system,
            y,
            lambda v, step: self._denoise(v, self.sigma),
            [self.weight] * self.num_iterations,
            dual=False,
            tol=self.tol,
            cg_tol=self.cg_tol,
            cg_max_iter=self.cg_max_iter,
            on_failure=self.on_failure,
        )
        return x

    def diagnostics(self) -> dict[str, float]:
        return {} if self.last_info is None else self.last_info.summary("red/")
