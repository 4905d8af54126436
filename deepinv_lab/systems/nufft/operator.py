"""Non-Cartesian MRI System blocks.

* :class:`NUFFT`: ``(B, C, H, W)`` images -> ``(B, C, K)`` samples at a trajectory, channel by
  channel (``C = 1`` for single-coil MRI), with optional density compensation and a Toeplitz
  normal operator;
* :class:`MultiCoilNUFFT`: ``A = F S``, the :class:`NUFFT` after
  :class:`~deepinv_lab.systems.mri.CoilSensitivity`, assembled like the Cartesian
  :class:`~deepinv_lab.systems.mri.MultiCoilMRI`.

Trajectories follow :mod:`deepinv_lab.systems.trajectories`: ``(2, K)`` shared by the batch or
``(B, 2, K)`` per sample, rows ``(ky, kx)`` along ``(H, W)``, radians per pixel in ``[-pi, pi)``.
The transforms come from FINUFFT/cuFINUFFT or torchkbnufft (:mod:`.backends`), imported when an
operator first runs, so ``import deepinv_lab.systems`` stays light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import Composition, LinearSystem, real_dtype
from deepinv_lab.systems.mri import CoilSensitivity
from deepinv_lab.systems.nufft.backends import (
    NufftBackend,
    check_backend,
    check_tolerance,
    create_backend,
    resolve_backend,
)
from deepinv_lab.systems.nufft.toeplitz import toeplitz_filter
from deepinv_lab.systems.trajectories import (
    check_image_size,
    check_trajectory,
    radial_density,
    radial_trajectory,
)

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class NUFFT(LinearSystem):
    r"""Non-uniform FFT ``y = W^{1/2} F x`` of each channel at a k-space trajectory.

    Scaling -- SigPy's ``sigpy.nufft`` / ``sigpy.nufft_adjoint`` (centered, orthonormal-like):

    .. math::
        y_{b,c,m} = \sqrt{w_m} \, \frac{1}{\sqrt{H W}} \sum_{h, v}
            x_{b,c,h,v} \, e^{-i (\omega_{m,0} (h - \lfloor H/2 \rfloor)
            + \omega_{m,1} (v - \lfloor W/2 \rfloor))}

    for the trajectory ``omega`` (rows ``ky, kx``) and weights ``w`` (1 without weights). SigPy's
    coordinates are ``coord[m] = (omega_{m,0} H, omega_{m,1} W) / (2 pi)``. On the Cartesian grid
    (:func:`~deepinv_lab.systems.trajectories.cartesian_trajectory`) this is ``fft2c`` of
    :mod:`deepinv_lab.functional`, so ``A^H A = I`` there.

    Backends (:mod:`deepinv_lab.systems.nufft.backends`): ``"auto"`` (default) runs FINUFFT on
    the CPU and cuFINUFFT on CUDA when installed, torchkbnufft otherwise; ``"finufft"`` and
    ``"torchkbnufft"`` force one. The choice is made per device when the operator runs.

    Accuracy: FINUFFT computes each transform to about ``tolerance`` relative to the exact sum
    (default 1e-6; measured 1.5e-6 in double and 3.5e-6 in single precision, FINUFFT's floor
    there); its forward and adjoint are adjoints of each other to rounding. torchkbnufft's
    Kaiser-Bessel interpolation (``numpoints`` neighbours on a grid ``oversampling`` times the
    image) is 6e-4 to 7e-4 from the exact sum (SigPy's defaults: 7e-3).

    Density compensation ``w`` (``(K,)``, or ``(B, K)`` per sample) enters as ``sqrt(w)`` on both
    sides, as in SigPy's ``Sense(weights=...)``: ``A^H A = F^H W F``, so CG on the normal equations
    solves the weighted least-squares problem, and ``A^H y`` of data ``y = A x`` is the
    density-compensated gridding reconstruction.

    Normal operator: with ``toeplitz=True`` (default), ``normal`` (and ``.N``) apply ``F^H W F``
    as a convolution -- zero-pad to ``(2H, 2W)``, FFT, multiply by a kernel, inverse FFT, crop
    (:mod:`deepinv_lab.systems.nufft.toeplitz`) -- with no interpolation. The backend computes the
    kernel with one NUFFT (FINUFFT: a double-precision type 1 onto the ``(2H, 2W)`` grid; else
    torchkbnufft's ``calc_toeplitz_kernel``) from ``trajectory`` and ``weights`` on first use and
    keeps it as a non-persistent buffer; build a new System for a new trajectory. It agrees with
    ``adjoint(forward(x))`` to the NUFFT's own accuracy (``tests/test_nufft.py``).

    Gradients flow through ``forward``, ``adjoint`` and ``normal`` with respect to the image, the
    samples and the weights, on every backend. The trajectory is a buffer; give it
    ``requires_grad=True`` to learn it: both backends differentiate the transforms with respect to
    it (FINUFFT exactly, at the cost of two extra forward transforms in the backward pass). The
    Toeplitz kernel is computed without gradients, so learn a trajectory with ``toeplitz=False``.

    Args:
        trajectory: real ``(2, K)`` or ``(B, 2, K)``; its dtype sets the precision
            (float32 -> complex64 data, float64 -> complex128).
        image_size: ``(H, W)``.
        weights: optional real density compensation, ``(K,)`` or ``(B, K)``.
        toeplitz: use the Toeplitz embedding for ``normal``.
        backend: ``"auto"``, ``"finufft"`` or ``"torchkbnufft"``.
        tolerance: FINUFFT's relative accuracy, in ``[1e-6, 0.1]`` for a float32 trajectory and
            ``[1e-14, 0.1]`` for float64 (single precision is computed to at best 1e-6 after
            ``.to(float32)``); torchkbnufft ignores it.
        oversampling: grid oversampling: torchkbnufft's grid (default 2.0), FINUFFT's
            ``upsampfac`` (2.0 or 1.25; default: FINUFFT chooses).
        numpoints: torchkbnufft's Kaiser-Bessel neighbours per dimension (default 6); FINUFFT
            sets its kernel width from ``tolerance`` instead.

    Shapes: ``forward``: complex ``(B, C, H, W)`` -> ``(B, C, K)``; ``adjoint`` the reverse. A
    per-sample trajectory needs the input's batch to be its ``B``.
    """

    #: The Toeplitz normal matches adjoint(forward) to the NUFFT's accuracy (about 1e-5).
    normal_tolerance: ClassVar[float] = 1e-4

    def __init__(
        self,
        trajectory: torch.Tensor,
        image_size: Sequence[int],
        weights: torch.Tensor | None = None,
        toeplitz: bool = True,
        backend: str = "auto",
        tolerance: float = 1e-6,
        oversampling: float | None = None,
        numpoints: int | None = None,
    ):
        super().__init__()
        check_trajectory(trajectory)
        if trajectory.ndim == 3 and trajectory.shape[0] == 1:
            trajectory = trajectory[0]  # one trajectory for the whole batch
            if weights is not None and weights.ndim == 2 and weights.shape[0] == 1:
                weights = weights[0]
        if trajectory.dtype not in _COMPLEX:
            raise UserError(
                f"NUFFT: expected a float32 or float64 trajectory, got {trajectory.dtype}"
            )
        self.image_size = check_image_size(image_size, "NUFFT")
        self.toeplitz = toeplitz
        self.backend = check_backend(backend)
        self.tolerance = check_tolerance(tolerance, trajectory.dtype)
        self.oversampling = oversampling
        self.numpoints = 6 if numpoints is None else numpoints
        library = resolve_backend(backend, trajectory.device)  # an unusable backend fails here
        if numpoints is not None and library != "torchkbnufft":
            raise UserError(
                "NUFFT: numpoints is torchkbnufft's kernel width; FINUFFT chooses its own from "
                "tolerance. Give backend='torchkbnufft' to set it."
            )
        self.register_buffer("trajectory", trajectory)
        self.register_buffer("weights", self._checked_weights(weights))
        self.register_buffer("toeplitz_kernel", None, persistent=False)
        self._backends: dict[str, NufftBackend] = {}

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, "_backends": {}}  # plans are tied to this process's memory

    def backend_for(self, device: torch.device | None = None) -> NufftBackend:
        """The backend that runs on ``device`` (the trajectory's by default), created once."""
        library = resolve_backend(self.backend, device or self.trajectory.device)
        if library not in self._backends:
            self._backends[library] = create_backend(
                library, self.image_size, self.tolerance, self.oversampling, self.numpoints
            )
        return self._backends[library]

    @property
    def library(self) -> str:
        """The library that computes this operator now: finufft, cufinufft or torchkbnufft."""
        return resolve_backend(self.backend, self.trajectory.device)

    def _checked_weights(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        if weights is None:
            return None
        traj = self.trajectory
        num_samples = traj.shape[-1]
        allowed = [(num_samples,)] + ([(traj.shape[0], num_samples)] if traj.ndim == 3 else [])
        if weights.is_complex() or tuple(weights.shape) not in allowed:
            raise UserError(
                f"NUFFT: expected real weights of shape {' or '.join(map(str, allowed))} for a "
                f"trajectory of shape {tuple(traj.shape)}, got dtype {weights.dtype} with shape "
                f"{tuple(weights.shape)}"
            )
        if bool((weights < 0).any()):
            raise UserError("NUFFT: expected non-negative density compensation weights")
        return weights.to(device=traj.device, dtype=traj.dtype)

    @property
    def num_samples(self) -> int:
        return self.trajectory.shape[-1]

    @property
    def dtype(self) -> torch.dtype:
        """The complex dtype of images and samples."""
        return _COMPLEX[self.trajectory.dtype]

    def _batch_hint(self) -> str:
        return str(self.trajectory.shape[0]) if self.trajectory.ndim == 3 else "B"

    def _check(self, t: torch.Tensor, image: bool) -> None:
        trailing = self.image_size if image else (self.num_samples,)
        batch = self.trajectory.shape[0] if self.trajectory.ndim == 3 else None
        shape_ok = t.ndim == 2 + len(trailing) and tuple(t.shape[2:]) == tuple(trailing)
        if not shape_ok or t.dtype != self.dtype or (batch is not None and t.shape[0] != batch):
            what = "image" if image else "samples"
            layout = ", ".join(str(n) for n in trailing)
            raise ValueError(
                f"NUFFT: expected {what} of shape ({self._batch_hint()}, C, {layout}) and dtype "
                f"{self.dtype} (trajectory {tuple(self.trajectory.shape)}), got shape "
                f"{tuple(t.shape)} and dtype {t.dtype}"
            )

    def _sqrt_weights(self) -> torch.Tensor | None:
        if self.weights is None:
            return None
        root = self.weights.sqrt()
        return root[:, None, :] if root.ndim == 2 else root

    def _scale(self) -> float:
        return 1.0 / math.sqrt(self.image_size[0] * self.image_size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, image=True)
        y = self.backend_for().forward(x, self.trajectory) * self._scale()
        root = self._sqrt_weights()
        return y if root is None else y * root

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self._check(y, image=False)
        root = self._sqrt_weights()
        if root is not None:
            y = y * root
        return self.backend_for().adjoint(y, self.trajectory) * self._scale()

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        if not self.toeplitz:
            return super().normal(x)
        self._check(x, image=True)
        return toeplitz_filter(x, self._kernel())

    def _kernel(self) -> torch.Tensor:
        """``(2H, 2W)`` Toeplitz kernel, or ``(B, 1, 2H, 2W)`` for per-sample trajectories."""
        if self.toeplitz_kernel is None:
            self.toeplitz_kernel = self.compute_toeplitz_kernel()
        return self.toeplitz_kernel

    @torch.no_grad()
    def compute_toeplitz_kernel(self) -> torch.Tensor:
        """The Toeplitz kernel of ``F^H W F`` (with this operator's ``1 / (H W)``), which
        ``normal`` computes once and caches."""
        weights = self.weights
        rows = 1 if self.trajectory.ndim == 2 else self.trajectory.shape[0]
        if weights is not None and weights.ndim == 1:
            weights = weights.expand(rows, -1)
        kernel = self.backend_for().toeplitz_kernel(self.trajectory, weights) * self._scale() ** 2
        return kernel[:, None] if self.trajectory.ndim == 3 else kernel[0]

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        size, spokes, readout = (16, 12), 6, 24
        trajectory = torch.stack(
            [
                radial_trajectory(spokes, readout, first_spoke=spokes * b, dtype=real_dtype(dtype))
                for b in range(batch_size)
            ]
        )
        weights = radial_density(spokes, readout, size, dtype=real_dtype(dtype))
        # The generic suite checks N == A^H A to rounding; the Toeplitz normal agrees to 1e-5
        # only (the NUFFT's accuracy), which tests/test_nufft.py checks.
        system = cls(trajectory, size, weights=weights)
        return system, torch.randn(batch_size, 2, *size, dtype=dtype)


class MultiCoilNUFFT(Composition):
    """Multicoil non-Cartesian MRI ``A = F S``: coil sensitivities, then the :class:`NUFFT`.

    ``normal`` is ``S^H (F^H W F) S`` with the Toeplitz ``F^H W F`` of :class:`NUFFT` when
    ``toeplitz=True`` (default); the scaling is SigPy's (``sigpy.mri.linop.Sense(maps, coord=...,
    weights=w)`` computes the same ``A``).

    Args:
        trajectory: real ``(2, K)`` or ``(B, 2, K)`` (rows ``ky, kx``, radians in ``[-pi, pi)``).
        coil_maps: complex ``(B, coils, H, W)`` sensitivity maps in the trajectory's precision.
        weights, toeplitz, backend, tolerance, oversampling, numpoints: as for :class:`NUFFT`.

    Shapes: ``forward``: ``(B, 1, H, W)`` complex image -> ``(B, coils, K)`` samples;
    ``adjoint``: the reverse (coil-combined, density-weighted gridding).
    """

    #: The Toeplitz normal matches adjoint(forward) to the NUFFT's accuracy (about 1e-5).
    normal_tolerance: ClassVar[float] = 1e-4

    def __init__(
        self,
        trajectory: torch.Tensor,
        coil_maps: torch.Tensor,
        weights: torch.Tensor | None = None,
        toeplitz: bool = True,
        backend: str = "auto",
        tolerance: float = 1e-6,
        oversampling: float | None = None,
        numpoints: int | None = None,
    ):
        coils = CoilSensitivity(coil_maps)
        nufft = NUFFT(
            trajectory,
            coil_maps.shape[-2:],
            weights,
            toeplitz,
            backend=backend,
            tolerance=tolerance,
            oversampling=oversampling,
            numpoints=numpoints,
        )
        if coil_maps.dtype != nufft.dtype:
            raise UserError(
                f"MultiCoilNUFFT: expected coil maps of dtype {nufft.dtype} (trajectory "
                f"{trajectory.dtype}), got {coil_maps.dtype}"
            )
        trajectory = nufft.trajectory
        if trajectory.ndim == 3 and coil_maps.shape[0] not in (1, trajectory.shape[0]):
            raise UserError(
                f"MultiCoilNUFFT: per-sample trajectory of shape {tuple(trajectory.shape)} does "
                f"not fit coil maps of shape {tuple(coil_maps.shape)}; expected the same batch "
                "or maps shared by the batch (batch 1)"
            )
        super().__init__([nufft, coils])

    @property
    def nufft(self) -> NUFFT:
        return self.systems[0]

    @property
    def coil_sensitivity(self) -> CoilSensitivity:
        return self.systems[1]

    @property
    def coil_maps(self) -> torch.Tensor:
        return self.coil_sensitivity.coil_maps

    @property
    def trajectory(self) -> torch.Tensor:
        return self.nufft.trajectory

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        coils = self.coil_sensitivity
        return coils.adjoint(self.nufft.normal(coils(x)))

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        nufft, _ = NUFFT.example(batch_size, dtype)
        maps = torch.randn(batch_size, 3, *nufft.image_size, dtype=dtype)
        system = cls(nufft.trajectory, maps, weights=nufft.weights)
        return system, torch.randn(batch_size, 1, *nufft.image_size, dtype=dtype)
