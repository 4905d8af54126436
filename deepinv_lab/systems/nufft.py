"""Non-Cartesian MRI System blocks on torchkbnufft's Kaiser-Bessel NUFFT.

* :class:`NUFFT`: ``(B, C, H, W)`` images -> ``(B, C, K)`` samples at a trajectory, channel by
  channel (``C = 1`` for single-coil MRI), with optional density compensation and a Toeplitz
  normal operator;
* :class:`MultiCoilNUFFT`: ``A = F S``, the :class:`NUFFT` after
  :class:`~deepinv_lab.systems.mri.CoilSensitivity`, assembled like the Cartesian
  :class:`~deepinv_lab.systems.mri.MultiCoilMRI`.

Trajectories follow :mod:`deepinv_lab.systems.trajectories`: ``(2, K)`` shared by the batch or
``(B, 2, K)`` per sample, rows ``(ky, kx)`` along ``(H, W)``, radians per pixel in ``[-pi, pi)``.
torchkbnufft is imported when an operator is built, so ``import deepinv_lab.systems`` stays light.
"""

from __future__ import annotations

import atexit
import math
import time
from collections.abc import Sequence
from types import ModuleType
from typing import ClassVar

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import Composition, LinearSystem, real_dtype
from deepinv_lab.systems.mri import CoilSensitivity
from deepinv_lab.systems.trajectories import (
    check_image_size,
    check_trajectory,
    oversampled_grid_size,
    radial_density,
    radial_trajectory,
)

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_EXIT_HOOK: list[bool] = []


def import_torchkbnufft() -> ModuleType:
    """Import torchkbnufft, and once per process register an exit hook that releases the GIL for
    10 ms.

    Why: torchkbnufft's CPU interpolation runs in ``torch.jit.fork`` tasks whose thread-pool
    threads release their tensors after the result is delivered, which takes the GIL. When the
    interpreter starts shutting down right after such a call, the thread finds the runtime
    finalising and aborts the process ("terminate called without an active exception", exit
    code 134, in most runs of a short script with torch 2.13 / Python 3.11). Handing over the GIL
    once at exit lets the threads finish first.
    """
    import torchkbnufft

    if not _EXIT_HOOK:
        atexit.register(time.sleep, 0.01)
        _EXIT_HOOK.append(True)
    return torchkbnufft


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
    :mod:`deepinv_lab.functional`, so ``A^H A = I`` there. torchkbnufft computes the sum without
    normalisation (``norm=None``); its ``norm="ortho"`` divides by the square root of the
    *oversampled* grid size instead, a factor ``oversampling`` (2 by default, in 2D) smaller.

    Accuracy: the Kaiser-Bessel interpolation (``numpoints`` neighbours on a grid ``oversampling``
    times the image, tables of 1024 points per neighbour) is 6e-4 to 7e-4 from the exact sum,
    relative (SigPy's defaults: 7e-3); forward and adjoint are adjoints of each other to rounding.

    Density compensation ``w`` (``(K,)``, or ``(B, K)`` per sample) enters as ``sqrt(w)`` on both
    sides, as in SigPy's ``Sense(weights=...)``: ``A^H A = F^H W F``, so CG on the normal equations
    solves the weighted least-squares problem, and ``A^H y`` of data ``y = A x`` is the
    density-compensated gridding reconstruction.

    Normal operator: with ``toeplitz=True`` (default), ``normal`` (and ``.N``) apply ``F^H W F``
    as a convolution -- zero-pad to ``(2H, 2W)``, FFT, multiply by a kernel from torchkbnufft's
    ``calc_toeplitz_kernel``, inverse FFT, crop -- with no interpolation. It differs from
    ``adjoint(forward(x))`` by less than 5e-5 relative (``tests/test_nufft.py``), far below the
    NUFFT's own error, at a fraction of its cost (docs/benchmarks.md, "Non-Cartesian"). The
    kernel is computed from ``trajectory`` and ``weights`` on first use and kept as a
    non-persistent buffer; build a new System for a new trajectory.

    CPU performance: torchkbnufft interpolates in ``torch.jit.fork`` tasks that each start an
    OpenMP team; libgomp's default spin-waiting then starves the other threads, and the adjoint
    takes many times longer (docs/benchmarks.md, "Non-Cartesian"). Export
    ``OMP_WAIT_POLICY=PASSIVE`` before Python starts.

    Args:
        trajectory: real ``(2, K)`` or ``(B, 2, K)``; its dtype sets the precision
            (float32 -> complex64 data, float64 -> complex128).
        image_size: ``(H, W)``.
        weights: optional real density compensation, ``(K,)`` or ``(B, K)``.
        toeplitz: use the Toeplitz embedding for ``normal``.
        oversampling: grid oversampling of the NUFFT.
        numpoints: Kaiser-Bessel neighbours per dimension.

    Shapes: ``forward``: complex ``(B, C, H, W)`` -> ``(B, C, K)``; ``adjoint`` the reverse. A
    per-sample trajectory needs the input's batch to be its ``B``.
    """

    #: The Toeplitz normal matches adjoint(forward) to about 1e-5 (torchkbnufft's kernel tables).
    normal_tolerance: ClassVar[float] = 1e-4

    def __init__(
        self,
        trajectory: torch.Tensor,
        image_size: Sequence[int],
        weights: torch.Tensor | None = None,
        toeplitz: bool = True,
        oversampling: float = 2.0,
        numpoints: int = 6,
    ):
        super().__init__()
        tkbn = import_torchkbnufft()

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
        self.numpoints = numpoints
        self.grid_size = oversampled_grid_size(self.image_size, oversampling, "NUFFT")
        self.register_buffer("trajectory", trajectory)
        self.register_buffer("weights", self._checked_weights(weights))
        self.register_buffer("toeplitz_kernel", None, persistent=False)
        options = dict(
            im_size=self.image_size,
            grid_size=self.grid_size,
            numpoints=numpoints,
            dtype=trajectory.dtype,
            device=trajectory.device,
        )
        self.kb_forward = tkbn.KbNufft(**options)
        self.kb_adjoint = tkbn.KbNufftAdjoint(**options)

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
        y = self.kb_forward(x, self.trajectory) * self._scale()
        root = self._sqrt_weights()
        return y if root is None else y * root

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self._check(y, image=False)
        root = self._sqrt_weights()
        if root is not None:
            y = y * root
        return self.kb_adjoint(y, self.trajectory) * self._scale()

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        if not self.toeplitz:
            return super().normal(x)
        self._check(x, image=True)
        from torchkbnufft.functional import fft_filter

        return fft_filter(x, self._kernel(), norm=None)

    def _kernel(self) -> torch.Tensor:
        """``(2H, 2W)`` Toeplitz kernel, or ``(B, 1, 2H, 2W)`` for per-sample trajectories."""
        if self.toeplitz_kernel is None:
            self.toeplitz_kernel = self.compute_toeplitz_kernel()
        return self.toeplitz_kernel

    @torch.no_grad()
    def compute_toeplitz_kernel(self) -> torch.Tensor:
        """The Toeplitz kernel of ``F^H W F``, which ``normal`` computes once and caches."""
        tkbn = import_torchkbnufft()

        trajectories = self.trajectory if self.trajectory.ndim == 3 else self.trajectory[None]
        weights = self.weights
        if weights is not None and weights.ndim == 1:
            weights = weights.expand(trajectories.shape[0], -1)
        kernels = []
        for index, omega in enumerate(trajectories):
            kernels.append(
                tkbn.calc_toeplitz_kernel(
                    omega,
                    self.image_size,
                    weights=None if weights is None else weights[index][None],
                    grid_size=self.grid_size,
                    numpoints=self.numpoints,
                )
            )
        # The kernel reproduces torchkbnufft's unnormalised A^H A; our A carries 1 / sqrt(H W).
        kernel = torch.stack(kernels) * self._scale() ** 2
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
        weights, toeplitz, oversampling, numpoints: as for :class:`NUFFT`.

    Shapes: ``forward``: ``(B, 1, H, W)`` complex image -> ``(B, coils, K)`` samples;
    ``adjoint``: the reverse (coil-combined, density-weighted gridding).
    """

    #: The Toeplitz normal matches adjoint(forward) to about 1e-5 (torchkbnufft's kernel tables).
    normal_tolerance: ClassVar[float] = 1e-4

    def __init__(
        self,
        trajectory: torch.Tensor,
        coil_maps: torch.Tensor,
        weights: torch.Tensor | None = None,
        toeplitz: bool = True,
        oversampling: float = 2.0,
        numpoints: int = 6,
    ):
        coils = CoilSensitivity(coil_maps)
        nufft = NUFFT(trajectory, coil_maps.shape[-2:], weights, toeplitz, oversampling, numpoints)
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
