"""Which library computes a :class:`~deepinv_lab.systems.nufft.NUFFT`, and the interface they share.

Backends (the ``backend`` argument of ``NUFFT`` and ``MultiCoilNUFFT``):

* ``"finufft"``: FINUFFT (Barnett, Magland & af Klinteberg, SISC 2019) on the CPU and its GPU
  twin cuFINUFFT on CUDA (``pip install deepinv-lab[cuda]``);
* ``"torchkbnufft"``: torchkbnufft's Kaiser-Bessel NUFFT, in pure torch, on any device;
* ``"auto"`` (default): FINUFFT where it runs -- the CPU, and CUDA with cuFINUFFT installed --
  and torchkbnufft elsewhere (CUDA without cuFINUFFT, other devices). FINUFFT is 6.5x faster
  than torchkbnufft on the CPU (docs/benchmarks.md, "Non-Cartesian").

The choice is made per device when an operator runs, so a System built on the CPU and moved to
CUDA (``system.to("cuda")``) switches to cuFINUFFT.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Protocol

import torch

from deepinv_lab.errors import UserError

#: The values of the ``backend`` argument.
BACKENDS = ("auto", "finufft", "torchkbnufft")

#: FINUFFT's accuracy floor per precision: in single precision it reaches about 3e-6 relative
#: error whatever it is asked (measured), and warns below 1e-6; in double, about 1e-14.
TOLERANCE_FLOOR = {torch.float32: 1e-6, torch.float64: 1e-14}
#: Tolerances above this are not an approximation of the transform any more.
TOLERANCE_CEILING = 1e-1


class NufftBackend(Protocol):
    """What a NUFFT backend computes, without scaling or density weights.

    ``forward``: ``(B, C, H, W)`` -> ``(B, C, K)``,
    ``y_m = sum_n x_n exp(-i omega_m . (n - N // 2))``; ``adjoint``: its adjoint; both
    differentiable with respect to the data. ``toeplitz_kernel``: the FFT-domain kernel of
    ``F^H W F`` for :func:`~deepinv_lab.systems.nufft.toeplitz.toeplitz_filter`, ``(T, 2H, 2W)``
    for ``T`` trajectories, without gradients.
    """

    def forward(self, x: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor: ...

    def adjoint(self, y: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor: ...

    def toeplitz_kernel(
        self, trajectory: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor: ...


def check_backend(backend: str) -> str:
    """Raise :class:`~deepinv_lab.errors.UserError` unless ``backend`` is in :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise UserError(f"NUFFT: backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


def check_tolerance(tolerance: float, dtype: torch.dtype) -> float:
    """Raise unless ``tolerance`` is within what FINUFFT reaches in ``dtype``'s precision."""
    floor = TOLERANCE_FLOOR[dtype]
    if not (isinstance(tolerance, (int, float)) and floor <= tolerance <= TOLERANCE_CEILING):
        precision = "single" if dtype == torch.float32 else "double"
        raise UserError(
            f"NUFFT: tolerance must be in [{floor:g}, {TOLERANCE_CEILING:g}] for a {dtype} "
            f"trajectory (FINUFFT's reach in {precision} precision); got {tolerance!r}"
        )
    return float(tolerance)


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The library that computes ``backend`` on ``device``: ``"finufft"`` (CPU), ``"cufinufft"``
    (CUDA) or ``"torchkbnufft"``; a :class:`~deepinv_lab.errors.UserError` that says what to
    install when ``backend="finufft"`` is asked for and cannot run."""
    if backend == "torchkbnufft":
        return "torchkbnufft"
    library = {"cpu": "finufft", "cuda": "cufinufft"}.get(device.type)
    if backend == "auto":
        return library if library is not None and installed(library) else "torchkbnufft"
    if library is None:
        raise UserError(
            f"NUFFT: backend 'finufft' runs on CPU and CUDA tensors, not on {device.type}; "
            "use backend='torchkbnufft' or 'auto'"
        )
    if not installed(library):
        how = "pip install finufft" if library == "finufft" else "pip install 'deepinv-lab[cuda]'"
        raise UserError(
            f"NUFFT: backend 'finufft' on {device.type} needs the {library} package, which is not "
            f"installed: {how} (or use backend='torchkbnufft')"
        )
    return library


def create_backend(
    library: str,
    image_size: Sequence[int],
    tolerance: float,
    oversampling: float | None,
    numpoints: int,
) -> NufftBackend:
    """A backend of ``library`` (from :func:`resolve_backend`) for ``(H, W)`` images."""
    if library == "torchkbnufft":
        from deepinv_lab.systems.nufft.torchkbnufft_backend import TorchkbnufftBackend

        return TorchkbnufftBackend(image_size, oversampling or 2.0, numpoints)
    from deepinv_lab.systems.nufft.finufft_backend import FinufftBackend

    return FinufftBackend(image_size, tolerance, oversampling, gpu=library == "cufinufft")
