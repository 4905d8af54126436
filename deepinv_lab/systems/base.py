"""System blocks: forward models ``A`` as ``nn.Module`` s, with an operator algebra.

A :class:`LinearSystem` applies ``A`` in ``forward`` and ``A^H`` in ``adjoint``. From those two the
algebra follows, as in SigPy's ``Linop``:

* ``A.H`` -- the adjoint as a System (``A.H.H`` is ``A`` again),
* ``A.N`` -- the normal operator ``A^H A``,
* ``A @ B`` -- composition ``x -> A(B(x))``,
* ``a * A``, ``A + B``, ``A - B``, ``-A`` -- multiples and sums; ``a`` is a number, a 0-d
  tensor or one factor per sample (a ``(B,)`` tensor). ``A * x`` with an image ``x`` is an error:
  ``A(x)`` applies ``A``,
* ``A.adjointness_error(x)`` -- ``|<Ax, y> - <x, A^H y>|`` relative to ``|<Ax, y>|`` for a random
  ``y``: zero up to rounding for a correct adjoint, 1e-2 for an adjoint 1% off.

Tensors a System owns (masks, coil maps) are buffers, so ``.to(device)`` and DDP pickling move them.
Per-sample parameters have a leading batch dimension, so one System describes a whole batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from numbers import Number
from typing import ClassVar

import torch
from torch import nn

from deepinv_lab.errors import UserError


class System(nn.Module):
    """Any forward model ``y = A(x)``, linear or not (noise, for instance).

    ``system.to(dtype)`` changes the *precision* of every tensor the System owns and keeps its
    kind: with ``torch.float64`` or ``torch.complex128``, real buffers become float64 and complex
    ones complex128 (``nn.Module.to`` would cast complex coil maps to a real dtype and drop their
    imaginary part). ``.double()`` and ``.float()`` do the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def patch(self, region: tuple[slice, ...]) -> System:
        """This System acting on the patch ``region`` of its measurements (one slice per
        spatial dim of ``y``), for patch-wise reconstruction
        (:func:`~deepinv_lab.recons.patches.patch_recon`): the System that maps the part of the
        image seen by those measurements to ``y[..., *region]``. Local Systems override it
        (denoising and downsampling return themselves, inpainting crops its mask); the default
        raises a :class:`~deepinv_lab.errors.UserError`: MRI, compressed sensing and other
        Systems whose every measurement sees the whole image cannot be restricted."""
        raise UserError(
            f"{type(self).__name__} cannot be restricted to patches; patch inference needs a "
            "local System such as denoising, downsampling or inpainting"
        )

    def to(self, *args, **kwargs):
        # nn.Module.to's own argument parser: the one way to read every form of .to()'s arguments
        # (device, dtype, tensor, memory_format) exactly as torch does
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is None:
            return super().to(*args, **kwargs)
        if not (dtype.is_floating_point or dtype.is_complex):
            raise TypeError(
                f"{type(self).__name__}.to() needs a floating or complex dtype, got {dtype}"
            )
        real = real_dtype(dtype)
        complex_ = complex_dtype(real)

        def convert(t: torch.Tensor) -> torch.Tensor:
            if t.is_complex():
                return t.to(device, complex_, non_blocking=non_blocking)
            if t.is_floating_point():
                return t.to(device, real, non_blocking=non_blocking)
            return t.to(device, non_blocking=non_blocking)

        return self._apply(convert)

    def double(self):
        return self.to(torch.float64)

    def float(self):
        return self.to(torch.float32)


class LinearSystem(System):
    """A linear forward model with its adjoint. Subclasses implement ``forward`` and ``adjoint``.

    Every concrete subclass also provides :meth:`example`, a small random instance with a matching
    input, so that the test-suite checks its adjoint the day it is added.
    """

    #: How far ``normal(x)`` may be from ``adjoint(forward(x))``, relative to its norm: 0 for exact
    #: normal operators; approximations (a Toeplitz NUFFT normal) state their accuracy here.
    normal_tolerance: ClassVar[float] = 0.0
    #: Whether the System also accepts real inputs (image-domain operators); MRI ones need complex.
    accepts_real: ClassVar[bool] = False

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
        """``scale * A`` (see :class:`Scaled`); a data tensor raises, ``A(x)`` applies ``A``."""
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
        """Relative adjoint mismatch ``|<Ax, y> - <x, A^H y>| / max(|<Ax, y>|, |<x, A^H y>|)``
        for a random ``y``.

        ``x`` is any valid input; ``y`` is drawn with the shape and dtype of ``A x``.
        """
        ax = self.forward(x)
        y = _randn_like(ax, generator)
        ahy = self.adjoint(y)
        if _shapes(ahy) != _shapes(x):
            raise ValueError(
                f"{type(self).__name__}: adjoint returned shape {_shapes(ahy)} "
                f"but the input had shape {_shapes(x)}"
            )
        # Inner products in double precision, relative to their size: a 1% error in the adjoint
        # reads 1e-2, while the operator's own rounding reads about its dtype's epsilon.
        lhs = torch.vdot(
            flatten_parts(ax).to(torch.complex128), flatten_parts(y).to(torch.complex128)
        )
        rhs = torch.vdot(
            flatten_parts(x).to(torch.complex128), flatten_parts(ahy).to(torch.complex128)
        )
        scale = max(float(lhs.abs()), float(rhs.abs()), 1e-300)
        return float((lhs - rhs).abs()) / scale

    @classmethod
    def example(
        cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64
    ) -> tuple[LinearSystem, torch.Tensor]:
        """A small random instance of this System and a valid input for it."""
        raise NotImplementedError(f"{cls.__name__} does not provide an example()")


def _randn_like(t, generator: torch.Generator | None):
    """Gaussian noise shaped like a tensor or a tuple of tensors (a Stack's output)."""
    if isinstance(t, (tuple, list)):
        return tuple(_randn_like(part, generator) for part in t)
    return torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=generator)


def _shapes(t):
    if isinstance(t, (tuple, list)):
        return tuple(tuple(part.shape) for part in t)
    return tuple(t.shape)


def flatten_parts(t: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """One 1D tensor from a tensor or a tuple of tensors (the outputs of a ``Stack``), in their
    promoted dtype."""
    if isinstance(t, (tuple, list)):
        dtype = functools.reduce(torch.promote_types, [part.dtype for part in t])
        return torch.cat([part.flatten().to(dtype) for part in t])
    return t.flatten()


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of the same precision: complex64 -> float32, complex128 -> float64."""
    return torch.empty((), dtype=dtype).real.dtype


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype of the same precision: float32 -> complex64, float64 -> complex128."""
    if dtype.is_complex:
        return dtype
    return {torch.float16: torch.complex32, torch.float32: torch.complex64}.get(
        dtype, torch.complex128
    )


class Identity(LinearSystem):
    """``I x = x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def patch(self, region: tuple[slice, ...]) -> Identity:
        """The identity on any patch: itself."""
        return self

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
        system, x = _example_operand(batch_size, dtype)
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
        system, x = _example_operand(batch_size, dtype)
        return cls(system), x


class Composition(LinearSystem):
    """``A_1 A_2 ... A_n``: the last System in ``systems`` is applied first, as in the maths."""

    def __init__(self, systems: Sequence[LinearSystem]):
        super().__init__()
        flat: list[LinearSystem] = []
        for system in systems:
            # Flatten plain compositions only; named subclasses keep their identity.
            flat.extend(system.systems if type(system) is Composition else [system])
        self.systems = _system_list(flat, "Composition")

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
        from deepinv_lab.systems.masking import Inpainting, random_pixel_mask

        matrix, x = _example_operand(batch_size, dtype)
        mask = random_pixel_mask((batch_size, 1, *x.shape[-2:]), keep_fraction=0.5)
        return cls([matrix, Inpainting(mask)]), x


class Scaled(LinearSystem):
    """``a A``: every output of ``A`` times ``a``, or sample ``b`` times ``a_b``.

    ``scale`` is a Python number, a 0-d tensor, or a ``(B,)`` tensor of one factor per sample
    (broadcast over the other dimensions of ``A``'s output ``(B, ...)``; a ``(1,)`` tensor serves
    any batch). Anything else raises a :class:`~deepinv_lab.errors.UserError`: ``A * x`` with an
    image ``x`` is a mistake for ``A(x)``.
    """

    def __init__(self, system: LinearSystem, scale: float | torch.Tensor):
        super().__init__()
        scale = torch.as_tensor(scale)
        if scale.ndim > 1:
            raise UserError(
                f"{type(system).__name__} * tensor of shape {tuple(scale.shape)}: '*' scales a "
                "System by a number, a 0-d tensor or one factor per sample (B,); to apply the "
                "System to x, call A(x)"
            )
        self.system = system
        self.register_buffer("scale", scale)

    def _factor(self, out: torch.Tensor) -> torch.Tensor:
        """``scale`` shaped to broadcast against the batch ``out`` ``(B, ...)``."""
        if self.scale.ndim == 0:
            return self.scale
        if self.scale.shape[0] not in (1, out.shape[0]):
            raise ValueError(
                f"Scaled: {self.scale.shape[0]} per-sample factors for an output of shape "
                f"{tuple(out.shape)}; expected one per sample ({out.shape[0]},) or a single one"
            )
        return self.scale.reshape(-1, *([1] * (out.ndim - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.system(x)
        return self._factor(out) * out

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        out = self.system.adjoint(y)
        return self._factor(out).conj() * out

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        system, x = _example_operand(batch_size, dtype)
        factors = torch.tensor([0.5 - 2.0j, -1.5 + 0.25j], dtype=complex_dtype(dtype))
        return cls(system, factors.repeat(batch_size)[:batch_size]), x


class Sum(LinearSystem):
    """``A_1 + ... + A_n`` for Systems with the same input and output shapes."""

    def __init__(self, systems: Sequence[LinearSystem]):
        super().__init__()
        self.systems = _system_list(systems, "Sum")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _sum_outputs([system(x) for system in self.systems], "Sum", "forward")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _sum_outputs([system.adjoint(y) for system in self.systems], "Sum", "adjoint")

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        first, x = _example_operand(batch_size, dtype)
        second, _ = _example_operand(batch_size, dtype)
        return cls([first, 2.0 * second]), x


class Stack(LinearSystem):
    """Vertical stacking ``[A_1; ...; A_n]``: ``x -> (A_1 x, ..., A_n x)``, a tuple of outputs.

    The adjoint takes a tuple ``(y_1, ..., y_n)`` and returns ``sum_i A_i^H y_i``; the normal
    operator is ``sum_i A_i^H A_i`` (each term with its own fast ``normal``). Stacking a System with
    ``sqrt(lam) * Identity()`` turns regularised least squares into plain least squares.
    """

    def __init__(self, systems: Sequence[LinearSystem]):
        super().__init__()
        self.systems = _system_list(systems, "Stack")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(system(x) for system in self.systems)

    def adjoint(self, ys: Sequence[torch.Tensor]) -> torch.Tensor:
        if not isinstance(ys, (tuple, list)) or len(ys) != len(self.systems):
            given = (
                f"{type(ys).__name__} of length {len(ys)}"
                if isinstance(ys, (tuple, list))
                else (f"a {type(ys).__name__}")
            )
            raise ValueError(
                f"Stack.adjoint expects a tuple of {len(self.systems)} tensors, one per stacked "
                f"System, got {given}"
            )
        outputs = [system.adjoint(y) for system, y in zip(self.systems, ys, strict=True)]
        return _sum_outputs(outputs, "Stack", "adjoint")

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return _sum_outputs([system.normal(x) for system in self.systems], "Stack", "normal")

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        system, x = _example_operand(batch_size, dtype)
        return cls([system, 0.5 * Identity()]), x


def _example_operand(batch_size: int, dtype: torch.dtype) -> tuple[LinearSystem, torch.Tensor]:
    """A dense random matrix (:class:`~deepinv_lab.systems.cs.CompressedSensing`), a System with
    nothing special about it, and an input for it: what the algebra's examples are built on."""
    from deepinv_lab.systems.cs import CompressedSensing

    return CompressedSensing.example(batch_size, dtype)


def _system_list(systems: Sequence[LinearSystem], owner: str) -> nn.ModuleList:
    """The Systems of a combination (``owner``) as a ModuleList; there must be at least one."""
    if not systems:
        raise UserError(f"{owner}: systems must hold at least one System, got none")
    return nn.ModuleList(systems)


def _sum_outputs(outputs: list[torch.Tensor], owner: str, what: str) -> torch.Tensor:
    """The sum of the Systems' ``what`` outputs, which must all have one shape."""
    shapes = {tuple(o.shape) for o in outputs}
    if len(shapes) > 1:
        raise ValueError(f"{owner}: the Systems' {what} outputs differ in shape: {sorted(shapes)}")
    return torch.stack(outputs).sum(0)
