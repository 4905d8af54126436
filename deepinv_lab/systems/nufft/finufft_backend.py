"""The FINUFFT backend of :class:`~deepinv_lab.systems.nufft.NUFFT`: FINUFFT on the CPU,
cuFINUFFT on CUDA.

The forward NUFFT is FINUFFT's type 2 (uniform -> non-uniform, sign -1) with centered modes
(``modeord=0``: mode ``n - N // 2`` at index ``n``, our ``fft2c`` convention); the adjoint is its
exact adjoint, a type 1 with sign +1. Points are ``(ky, kx)`` radians along ``(H, W)``, which is
FINUFFT's ``(x, y)`` for a C-ordered ``(H, W)`` array.

Plans. A plan (``makeplan`` + ``setpts``: FFTW set-up and the sort of the points) is kept per
trajectory row and number of transforms, and reused while the trajectory tensor is the same
object at the same version; ``.to()`` or an in-place change of the trajectory makes new ones.
Planning a 205,824-point radial trajectory for 8 coils at 256^2 takes about 2 ms on this machine,
5 % of a transform (docs/benchmarks.md, "Non-Cartesian"). A shared ``(2, K)`` trajectory runs
``B * C`` transforms in one call; per-sample trajectories run ``C`` transforms per sample.

Threads. FINUFFT runs ``torch.get_num_threads()`` OpenMP threads, so it follows
``torch.set_num_threads`` and runs one thread per DataLoader worker. Like torch's own OpenMP pool
(measured with torch 2.13), a multithreaded call in a process ``fork``-ed from one that already
ran a multithreaded call hangs in libgomp; one thread per forked process, as DataLoader workers
have, is safe (``tests/test_nufft_backends.py``).

Gradients. Both transforms are linear, so the gradient with respect to the data of one is the
other applied to the incoming gradient. The gradient with respect to the trajectory is exact too:
``d y_m / d omega_{m,d} = F(-i k_d x)_m`` for the forward, with ``k_d`` the mode index along axis
``d``, which costs two more forward NUFFTs and is computed only when the trajectory requires a
gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from deepinv_lab.systems.nufft.toeplitz import kernel_from_offsets

_NUMPY_COMPLEX = {torch.complex64: "complex64", torch.complex128: "complex128"}
#: Accuracy of the Toeplitz kernel, computed once in double precision.
KERNEL_TOLERANCE = 1e-12


def _import(library: str):
    if library == "cufinufft":
        import cufinufft

        return cufinufft
    import finufft

    return finufft


class _PlanPair:
    """Forward (type 2) and adjoint (type 1) transforms of ``n_trans`` images at one trajectory
    row ``points`` (``(2, K)``), on the points' device."""

    def __init__(
        self,
        library: str,
        points: torch.Tensor,
        image_size: tuple[int, int],
        n_trans: int,
        tolerance: float,
        options: dict[str, Any],
    ):
        self.library = library
        self.image_size = image_size
        self.num_points = points.shape[-1]
        dtype = _NUMPY_COMPLEX[_complex(points.dtype)]
        module = _import(library)
        self.points = [points[0].detach().contiguous(), points[1].detach().contiguous()]
        if library == "finufft":
            self.points = [p.numpy() for p in self.points]
            self.plan = module.Plan(2, image_size, n_trans, eps=tolerance, dtype=dtype, **options)
            self.plan.setpts(*self.points)
            self.adjoint_plan = None
        else:
            self.plan = module.Plan(2, image_size, n_trans, eps=tolerance, dtype=dtype, **options)
            self.adjoint_plan = module.Plan(
                1, image_size, n_trans, eps=tolerance, dtype=dtype, **options
            )
            self.plan.setpts(*self.points)
            self.adjoint_plan.setpts(*self.points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, H, W)`` -> ``(n, K)``."""
        x = x.detach().resolve_conj().contiguous()
        out = torch.empty(x.shape[0], self.num_points, dtype=x.dtype, device=x.device)
        if self.library == "finufft":
            self.plan.execute(x.numpy(), out=out.numpy())
        else:
            self.plan.execute(x, out=out)
        return out

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(n, K)`` -> ``(n, H, W)``."""
        y = y.detach().resolve_conj().contiguous()
        out = torch.empty(y.shape[0], *self.image_size, dtype=y.dtype, device=y.device)
        if self.library == "finufft":
            self.plan.execute_adjoint(y.numpy(), out=out.numpy())
        else:
            self.adjoint_plan.execute(y, out=out)
        return out


def _complex(real: torch.dtype) -> torch.dtype:
    return torch.complex64 if real == torch.float32 else torch.complex128


class FinufftBackend:
    """FINUFFT (``gpu=False``) or cuFINUFFT (``gpu=True``) transforms with cached plans.

    Args:
        image_size: ``(H, W)``.
        tolerance: FINUFFT's ``eps``, the relative accuracy asked of each transform; in single
            precision values below 1e-6 are raised to 1e-6, FINUFFT's floor there.
        oversampling: FINUFFT's ``upsampfac`` (2.0 or 1.25); ``None`` lets FINUFFT choose
            (cuFINUFFT: 2.0).
        gpu: cuFINUFFT on CUDA tensors instead of FINUFFT on CPU tensors.
    """

    def __init__(
        self,
        image_size: Sequence[int],
        tolerance: float,
        oversampling: float | None = None,
        gpu: bool = False,
    ):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.tolerance = tolerance
        self.oversampling = oversampling
        self.library = "cufinufft" if gpu else "finufft"
        self._plans: dict[tuple, _PlanPair] = {}
        self._planned_for: tuple[torch.Tensor, int] | None = None

    # -- plans ---------------------------------------------------------------------------------
    def _options(self, device: torch.device) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.oversampling is not None:
            options["upsampfac"] = float(self.oversampling)
        if self.library == "finufft":
            options["nthreads"] = torch.get_num_threads()
        elif device.type == "cuda":  # cuFINUFFT runs on torch's device and stream
            index = device.index if device.index is not None else torch.cuda.current_device()
            options["gpu_device_id"] = index
            options["gpu_stream"] = torch.cuda.current_stream(device).cuda_stream
        return options

    def _tolerance(self, dtype: torch.dtype) -> float:
        return max(self.tolerance, 1e-6) if dtype == torch.float32 else self.tolerance

    def plans(self, trajectory: torch.Tensor, n_trans: int) -> list[_PlanPair]:
        """One plan pair per trajectory row, for ``n_trans`` transforms each; cached."""
        planned = self._planned_for
        # inference tensors (validate/test/predict) have no version counter and cannot change
        version = -1 if trajectory.is_inference() else trajectory._version
        if planned is None or planned[0] is not trajectory or planned[1] != version:
            self._plans.clear()
            self._planned_for = (trajectory, version)
        options = self._options(trajectory.device)
        rows = trajectory if trajectory.ndim == 3 else trajectory[None]
        pairs = []
        for index, points in enumerate(rows):
            key = (index, n_trans, tuple(sorted(options.items())))
            if key not in self._plans:
                self._plans[key] = _PlanPair(
                    self.library,
                    points,
                    self.image_size,
                    n_trans,
                    self._tolerance(trajectory.dtype),
                    options,
                )
            pairs.append(self._plans[key])
        return pairs

    # -- transforms ----------------------------------------------------------------------------
    def apply(self, direction: str, data: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
        """The transform ``direction`` (``"forward"`` or ``"adjoint"``) without autograd."""
        batch, channels = data.shape[:2]
        if trajectory.ndim == 2:  # one trajectory: every image of the batch in one call
            pair = self.plans(trajectory, batch * channels)[0]
            flat = data.reshape(batch * channels, *data.shape[2:])
            out = pair.forward(flat) if direction == "forward" else pair.adjoint(flat)
            return out.reshape(batch, channels, *out.shape[1:])
        pairs = self.plans(trajectory, channels)
        outputs = [
            pair.forward(sample) if direction == "forward" else pair.adjoint(sample)
            for pair, sample in zip(pairs, data, strict=True)
        ]
        return torch.stack(outputs)

    def forward(self, x: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
        return _Transform.apply(x, trajectory, self, "forward")

    def adjoint(self, y: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
        return _Transform.apply(y, trajectory, self, "adjoint")

    def mode_indices(self, axis: int, like: torch.Tensor) -> torch.Tensor:
        """``n - N // 2`` along image axis ``axis`` (0: height, 1: width), broadcastable to
        ``(..., H, W)``, in ``like``'s real precision and device."""
        size = self.image_size[axis]
        real = torch.float32 if like.dtype == torch.complex64 else torch.float64
        modes = torch.arange(size, dtype=real, device=like.device) - size // 2
        return modes[:, None] if axis == 0 else modes

    @torch.no_grad()
    def toeplitz_kernel(
        self, trajectory: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """``(T, 2H, 2W)`` FFT-domain kernels from one double-precision type-1 NUFFT per row."""
        height, width = self.image_size
        module = _import(self.library)
        options = self._options(trajectory.device)
        rows = (trajectory if trajectory.ndim == 3 else trajectory[None]).double()
        kernels = []
        for index, points in enumerate(rows):
            points = [points[0].contiguous(), points[1].contiguous()]
            strengths = torch.ones(points[0].shape, dtype=torch.complex128, device=rows.device)
            if weights is not None:
                strengths = strengths * weights[index].double()
            plan = module.Plan(
                1, (2 * height, 2 * width), 1, eps=KERNEL_TOLERANCE, dtype="complex128", **options
            )
            offsets = torch.empty(2 * height, 2 * width, dtype=torch.complex128, device=rows.device)
            if self.library == "finufft":
                plan.setpts(*(p.numpy() for p in points))
                plan.execute(strengths.numpy(), out=offsets.numpy())
            else:
                plan.setpts(*points)
                plan.execute(strengths, out=offsets)
            kernels.append(kernel_from_offsets(offsets))
        return torch.stack(kernels).to(_complex(trajectory.dtype))


class _Transform(torch.autograd.Function):
    """One FINUFFT transform as an autograd node; its backward is the other transform (and, for
    the trajectory, two forward transforms of the mode-weighted data)."""

    @staticmethod
    def forward(ctx, data, trajectory, backend: FinufftBackend, direction: str):
        ctx.backend, ctx.direction = backend, direction
        ctx.save_for_backward(data, trajectory)
        return backend.apply(direction, data, trajectory)

    @staticmethod
    def backward(ctx, grad):
        data, trajectory = ctx.saved_tensors
        backend, direction = ctx.backend, ctx.direction
        other = "adjoint" if direction == "forward" else "forward"
        grad_data = grad_trajectory = None
        if ctx.needs_input_grad[0]:
            grad_data = _Transform.apply(grad, trajectory, backend, other)
        if ctx.needs_input_grad[1]:
            # forward y = F x:  dL/domega_d = Re(conj(g) * F(-i k_d x));
            # adjoint x = F^H y: dL/domega_d = Re(y * conj(F(-i k_d G))), G the image gradient.
            image, samples = (data, grad) if direction == "forward" else (grad, data)
            rows = []
            for axis in (0, 1):
                weighted = -1j * backend.mode_indices(axis, image) * image
                derivative = _Transform.apply(weighted, trajectory, backend, "forward")
                if direction == "forward":
                    product = (samples.conj() * derivative).real
                else:
                    product = (samples * derivative.conj()).real
                per_sample = product.sum(dim=1)  # (B, K): sum over channels
                rows.append(per_sample if trajectory.ndim == 3 else per_sample.sum(dim=0))
            grad_trajectory = torch.stack(rows, dim=-2)
        return grad_data, grad_trajectory, None, None
