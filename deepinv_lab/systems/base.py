"""System blocks: forward models ``A`` as ``nn.Module`` s, with an operator algebra.

A :class:`LinearSystem` applies ``A`` in ``forward`` and ``A^H`` in ``adjoint``. From those two the
algebra follows, as in SigPy's ``Linop``:

* ``A.H`` -- the adjoint as a System (``A.H.H`` is ``A`` again),
* ``A.N`` -- the normal operator ``A^H A``,
* ``A @ B`` -- composition ``x -> A(B(x))``,
* ``a * A``, ``A + B``, ``A - B``, ``-A`` -- scalar multiples and sums,
* ``A.adjointness_error(x)`` -- ``|<Ax, y> - <x, A^H y>|`` relative to ``||Ax|| ||y||`` for a random
  ``y``: zero up to rounding for a correct adjoint.

Tensors a System owns (masks, coil maps) are buffers, so ``.to(device)`` and DDP pickling move them.
Per-sample parameters have a leading batch dimension, so one System describes a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Number

import torch
from torch import nn


class System(nn.Module):
    """Any forward model ``y = A(x)``, linear or not (noise, for instance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")


class LinearSystem(System):
    """A linear forward model with its adjoint. Subclasses implement ``forward`` and ``adjoint``.

    Every concrete subclass also provides :meth:`example`, a small random instance with a matching
    input, so that the test-suite checks its adjoint the day it is added.
    """

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must implement adjoint(y)")

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x``; subclasses with a cheaper normal operator override this."""
        return self.adjoint(self.forward(x))

    @property
    def H(self) -> LinearSystem:  # noqa: N802 - the mathematical name
        """The adjoint ``A^H`` as a System."""
        return Adjoint(self)

    @property
    def N(self) -> LinearSystem:  # noqa: N802 - the mathematical name
        """The normal operator ``A^H A`` as a System."""
        return Normal(self)

    def __matmul__(self, other: LinearSystem) -> LinearSystem:
        if not isinstance(other, LinearSystem):
            return NotImplemented
        return Composition([self, other])

    def __mul__(self, scale: Number | torch.Tensor) -> LinearSystem:
        if isinstance(scale, (Number, torch.Tensor)):
            return Scaled(self, scale)
        return NotImplemented

    __rmul__ = __mul__

    def __add__(self, other: LinearSystem) -> LinearSystem:
        if not isinstance(other, LinearSystem):
            return NotImplemented
        return Sum([self, other])

    def __neg__(self) -> LinearSystem:
        return Scaled(self, -1.0)

    def __sub__(self, other: LinearSystem) -> LinearSystem:
        if not isinstance(other, LinearSystem):
            return NotImplemented
        return Sum([self, Scaled(other, -1.0)])

    @torch.no_grad()
    def adjointness_error(self, x: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """Relative adjoint mismatch ``|<Ax, y> - <x, A^H y>| / (||Ax|| ||y||)`` for a random ``y``.

        ``x`` is any valid input; ``y`` is drawn with the shape and dtype of ``A x``.
        """
        ax = self.forward(x)
        y = _randn_like(ax, generator)
        ahy = self.adjoint(y)
        if ahy.shape != x.shape:
            raise ValueError(
                f"{type(self).__name__}: adjoint returned shape {tuple(ahy.shape)} "
                f"but the input had shape {tuple(x.shape)}"
            )
        lhs = torch.vdot(ax.flatten().to(y.dtype), y.flatten())
        rhs = torch.vdot(x.flatten().to(ahy.dtype), ahy.flatten())
        scale = max(float(ax.norm() * y.norm()), float(x.norm() * ahy.norm()), 1e-30)
        return float((lhs - rhs).abs()) / scale

    @classmethod
    def example(
        cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64
    ) -> tuple[LinearSystem, torch.Tensor]:
        """A small random instance of this System and a valid input for it."""
        raise NotImplementedError(f"{cls.__name__} does not provide an example()")


def _randn_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=generator)


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of the same precision: complex64 -> float32, complex128 -> float64."""
    return torch.empty((), dtype=dtype).real.dtype


class Identity(LinearSystem):
    """``I x = x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        return cls(), torch.randn(batch_size, 1, 6, 5, dtype=dtype)


class Adjoint(LinearSystem):
    """The adjoint view ``A^H`` of a System; ``Adjoint(A).H`` returns ``A`` itself."""

    def __init__(self, system: LinearSystem):
        super().__init__()
        self.system = system

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.system.adjoint(y)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        return self.system.forward(x)

    @property
    def H(self) -> LinearSystem:  # noqa: N802
        return self.system

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        from deepinv_lab.systems.mri import MultiCoilMRI

        system, x = MultiCoilMRI.example(batch_size, dtype)
        return cls(system), system(x)


class Normal(LinearSystem):
    """The normal operator ``A^H A`` of a System (self-adjoint)."""

    def __init__(self, system: LinearSystem):
        super().__init__()
        self.system = system

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.system.normal(x)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        return self.system.normal(x)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        from deepinv_lab.systems.mri import MultiCoilMRI

        system, x = MultiCoilMRI.example(batch_size, dtype)
        return cls(system), x


class Composition(LinearSystem):
    """``A_1 A_2 ... A_n``: the last System in ``systems`` is applied first, as in the maths."""

    def __init__(self, systems: Sequence[LinearSystem]):
        super().__init__()
        flat: list[LinearSystem] = []
        for system in systems:
            # Flatten plain compositions only; subclasses (MultiCoilMRI) keep their identity.
            flat.extend(system.systems if type(system) is Composition else [system])
        if not flat:
            raise ValueError("Composition needs at least one System")
        self.systems = nn.ModuleList(flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for system in reversed(self.systems):
            x = system(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        for system in self.systems:
            y = system.adjoint(y)
        return y

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        from deepinv_lab.systems.mri import FFT2, CoilSensitivity

        coils, x = CoilSensitivity.example(batch_size, dtype)
        return cls([FFT2(), coils]), x


class Scaled(LinearSystem):
    """``a A`` for a scalar ``a`` (a Python number or a 0-d / broadcastable tensor)."""

    def __init__(self, system: LinearSystem, scale: Number | torch.Tensor):
        super().__init__()
        self.system = system
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.system(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.scale.conj() * self.system.adjoint(y)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        from deepinv_lab.systems.mri import MultiCoilMRI

        system, x = MultiCoilMRI.example(batch_size, dtype)
        return cls(system, torch.tensor(0.5 - 2.0j, dtype=dtype)), x


class Sum(LinearSystem):
    """``A_1 + ... + A_n`` for Systems with the same input and output shapes."""

    def __init__(self, systems: Sequence[LinearSystem]):
        super().__init__()
        if not systems:
            raise ValueError("Sum needs at least one System")
        self.systems = nn.ModuleList(systems)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [system(x) for system in self.systems]
        _check_same_shapes(outputs, "forward")
        return torch.stack(outputs).sum(0)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        outputs = [system.adjoint(y) for system in self.systems]
        _check_same_shapes(outputs, "adjoint")
        return torch.stack(outputs).sum(0)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        from deepinv_lab.systems.mri import MultiCoilMRI

        first, x = MultiCoilMRI.example(batch_size, dtype)
        second, _ = MultiCoilMRI.example(batch_size, dtype)
        return cls([first, 2.0 * second]), x


def _check_same_shapes(outputs: list[torch.Tensor], what: str) -> None:
    shapes = {tuple(o.shape) for o in outputs}
    if len(shapes) > 1:
        raise ValueError(
            f"Sum: the summed Systems' {what} outputs differ in shape: {sorted(shapes)}"
        )
