"""The torchkbnufft backend of :class:`~deepinv_lab.systems.nufft.NUFFT`: a Kaiser-Bessel NUFFT in
pure torch, on any device, differentiable with respect to the data and the trajectory.

Accuracy: ``numpoints`` neighbours on a grid ``oversampling`` times the image, tables of 1024
points per neighbour: 6e-4 to 7e-4 from the exact sum, relative; forward and adjoint are adjoints
of each other to rounding.

CPU performance: torchkbnufft interpolates in ``torch.jit.fork`` tasks that each start an OpenMP
team; libgomp's default spin-waiting then starves the other threads, and the adjoint takes many
times longer (docs/benchmarks.md, "Non-Cartesian"). Export ``OMP_WAIT_POLICY=PASSIVE`` before
Python starts.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Sequence
from types import ModuleType

import torch

from deepinv_lab.systems.trajectories import oversampled_grid_size

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


class TorchkbnufftBackend:
    """torchkbnufft's ``KbNufft`` / ``KbNufftAdjoint`` (``norm=None``) and its Toeplitz kernel,
    built once per device and precision."""

    def __init__(self, image_size: Sequence[int], oversampling: float, numpoints: int):
        self.image_size = tuple(image_size)
        self.grid_size = oversampled_grid_size(self.image_size, oversampling, "NUFFT")
        self.numpoints = numpoints
        self._operators: dict[tuple[torch.device, torch.dtype], tuple] = {}

    def _pair(self, trajectory: torch.Tensor) -> tuple:
        key = (trajectory.device, trajectory.dtype)
        if key not in self._operators:
            tkbn = import_torchkbnufft()
            options = dict(
                im_size=self.image_size,
                grid_size=self.grid_size,
                numpoints=self.numpoints,
                dtype=trajectory.dtype,
                device=trajectory.device,
            )
            self._operators[key] = (tkbn.KbNufft(**options), tkbn.KbNufftAdjoint(**options))
        return self._operators[key]

    def forward(self, x: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
        return self._pair(trajectory)[0](x, trajectory)

    def adjoint(self, y: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
        return self._pair(trajectory)[1](y, trajectory)

    @torch.no_grad()
    def toeplitz_kernel(self, trajectory: torch.Tensor, weights: torch.Tensor | None):
        tkbn = import_torchkbnufft()
        trajectories = trajectory if trajectory.ndim == 3 else trajectory[None]
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
        # torchkbnufft's fft_filter inverts its FFT without the 1 / (2H * 2W) (norm="forward");
        # toeplitz_filter's inverse FFT divides by it, so the kernel carries it back.
        height, width = self.image_size
        return torch.stack(kernels) * (4 * height * width)
