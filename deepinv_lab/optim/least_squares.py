"""Regularised linear least squares by conjugate gradient on the normal equations.

``x = argmin_x ||A x - y||^2 + damping ||x||^2`` solves ``(A^H A + damping I) x = A^H y``: with
``damping = 0`` and ``x0 = 0`` CG returns the minimum-norm least-squares solution, the
pseudo-inverse ``A^+ y`` (CG started at 0 stays in the range of ``A^H``).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import torch

from deepinv_lab.optim.cg import CGInfo, conjugate_gradient
from deepinv_lab.optim.convergence import OnFailure


class NormalOperator(Protocol):
    """What :func:`least_squares` needs of a forward model: ``adjoint`` and ``normal``.

    Any :class:`~deepinv_lab.systems.LinearSystem` qualifies, as does any object with these two
    methods; the optimization block knows no concrete System class.
    """

    def adjoint(self, y: Any) -> torch.Tensor: ...

    def normal(self, x: torch.Tensor) -> torch.Tensor: ...


def least_squares(
    system: NormalOperator,
    y: Any,
    damping: float | torch.Tensor = 0.0,
    x0: torch.Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    backward: Literal["autograd", "implicit"] = "autograd",
    on_failure: OnFailure = "warn",
) -> tuple[torch.Tensor, CGInfo]:
    """Solve ``(A^H A + damping I) x = A^H y`` by :func:`~deepinv_lab.optim.cg.conjugate_gradient`.

    Args:
        system: the forward model ``A``, an object with ``adjoint(y)`` and ``normal(x)``
            (``A^H A``, e.g. a System's fast normal operator), acting per sample of a batch.
        y: measurements, ``(B, ...)`` (for a stacked System, the tuple its ``adjoint`` takes).
        damping: Tikhonov weight ``>= 0``: a number, a 0-d tensor or one value per sample
            ``(B,)``. 0 gives the pseudo-inverse (from ``x0 = None``).
        x0: initial guess shaped like ``A^H y`` (zeros when ``None``).
        tol, max_iter: CG stopping rule, per sample: ``||r|| / ||A^H y|| <= tol``.
        backward, on_failure: as in :func:`~deepinv_lab.optim.cg.conjugate_gradient`.

    Returns:
        ``(x, info)``: ``x`` shaped like ``A^H y`` (e.g. ``(B, 1, H, W)`` for MRI) and the
        :class:`~deepinv_lab.optim.cg.CGInfo` of the solve.
    """
    rhs = system.adjoint(y)
    return conjugate_gradient(
        system.normal,
        rhs,
        x0=x0,
        tol=tol,
        max_iter=max_iter,
        damping=damping,
        backward=backward,
        on_failure=on_failure,
    )
