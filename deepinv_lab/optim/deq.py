"""Deep equilibrium (DEQ) Optimization block: the output is a fixed point ``x* = f(x*)``.

S. Bai, J. Z. Kolter, V. Koltun, "Deep equilibrium models", NeurIPS 2019; D. Gilton, G. Ongie,
R. Willett, "Deep equilibrium architectures for inverse problems in imaging", IEEE TCI 2021;
S. W. Fung et al., "JFB: Jacobian-free backpropagation for implicit networks", AAAI 2022.

:class:`DeepEquilibrium` takes the iteration map ``f`` as a callable, typically a closure such as
one proximal-gradient step ``x -> D(x - eta A^H(A x - y))`` over a System ``A``, measurements
``y`` and a learned denoiser ``D``. It holds no parameters: the parameters live in whatever ``f``
closes over, and gradients reach them (and ``y``, coil maps, step sizes) through one
differentiable application of ``f`` at the fixed point.

**Forward.** ``x*`` is found from ``x0`` without a graph by
:func:`~deepinv_lab.optim.fixed_point.solve_fixed_point`. With gradients disabled (validation,
inference) ``x*`` is returned. With gradients enabled, ``z = f(x_in)`` is recorded with
``x_in = x*.detach().requires_grad_()`` and returned; ``z = x*`` up to the solver tolerance.
No gradient reaches ``x0`` (the fixed point does not depend on it).

**Backward, implicit** (``backward="implicit"``). At a fixed point ``x* = f(x*, theta)`` the
implicit function theorem gives ``dL/dtheta = (df/dtheta)^T u`` with ``u`` solving the adjoint
fixed point ``u = J^T u + g`` (``J = df/dx`` at ``x*``, ``g = dL/dz``). A hook on ``z`` replaces
the incoming ``g`` by ``u``, found by the backward solver with vector-Jacobian products
``torch.autograd.grad(z, x_in, u, retain_graph=True)`` through the one recorded application of
``f``; autograd then carries ``u`` through that application to the parameters. Memory is one
application of ``f`` whatever the number of forward or backward iterations. For complex tensors
PyTorch's (conjugate Wirtinger) gradients are the gradients of the real and imaginary parts as
real variables, and ``autograd.grad`` applies the transpose of the real Jacobian, so
``u = vjp(u) + g`` is the right adjoint equation there too. It has a solution (and the solvers
find it) when ``f`` is contractive at ``x*``, as it must be for the forward iteration.

**Backward, JFB** (``backward="jfb"``). ``z``'s ordinary gradient: ``u`` is replaced by ``g``,
i.e. the Neumann series of ``(I - J^T)^{-1}`` is cut after its first term. Cheaper (no backward
solve) and a descent direction under contractivity, but not the exact gradient.

**Diagnostics.** ``last_info`` and ``last_backward_info`` hold the
:class:`~deepinv_lab.optim.fixed_point.FixedPointInfo` of the last forward solve and of the last
implicit backward solve; :meth:`DeepEquilibrium.diagnostics` summarises them as ``deq/iterations``
(mean over the batch), ``deq/relative_residual`` (worst sample), ``deq/backward_iterations`` and
``deq/backward_relative_residual``, the keys of a CG block's diagnostics under another prefix. A
Recon built on this block returns them from its own ``diagnostics()`` so that the training module
logs them. The forward entries describe the last forward call, the backward entries the last
backward pass (so, read in a training step before ``backward``, those of the previous step).

Second-order gradients (``create_graph=True`` through the implicit backward) are not supported:
the adjoint solve runs without a graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.optim.convergence import OnFailure, check_on_failure
from deepinv_lab.optim.fixed_point import (
    SOLVERS,
    FixedPointInfo,
    check_fixed_point_args,
    solve_fixed_point,
)

BACKWARDS = ("implicit", "jfb")


class DeepEquilibrium(nn.Module):
    """Fixed point ``x* = f(x*)`` with an implicit (or Jacobian-free) gradient.

    See the module docstring for the maths. Holds no parameters and no buffers.

    Args:
        solver: forward fixed-point solver, ``"anderson"`` or ``"picard"``.
        tol: relative-residual tolerance of the forward solve (see
            :mod:`~deepinv_lab.optim.fixed_point`).
        max_iter: forward iterations at most.
        backward: ``"implicit"`` (implicit function theorem, exact at the fixed point) or
            ``"jfb"`` (Jacobian-free backpropagation).
        backward_solver, backward_tol, backward_max_iter: the same for the adjoint fixed point of
            the implicit backward; ``None`` takes the forward value.
        relaxation: ``beta`` in ``(0, 1]`` of both solves.
        anderson_memory: past iterates combined by Anderson acceleration.
        on_failure: ``"warn"``, ``"raise"`` or ``"ignore"`` for a solve (forward or backward)
            that misses its tolerance, see :mod:`~deepinv_lab.optim.convergence`; messages name
            the solve, e.g. ``"DeepEquilibrium backward (anderson)"``.

    Shapes: ``forward(f, x0)``: ``x0`` is ``(B, ...)``, real or complex (complex images
    ``(B, 1, H, W)`` in MRI); ``f`` maps that shape and dtype to itself, sample by sample; the
    output has the same shape and dtype.
    """

    def __init__(
        self,
        solver: str = "anderson",
        tol: float = 1e-3,
        max_iter: int = 50,
        backward: str = "implicit",
        backward_solver: str | None = None,
        backward_tol: float | None = None,
        backward_max_iter: int | None = None,
        relaxation: float = 1.0,
        anderson_memory: int = 5,
        on_failure: OnFailure = "warn",
    ):
        super().__init__()
        name = type(self).__name__
        if solver not in SOLVERS:
            raise UserError(f"{name}: solver must be one of {SOLVERS}, got {solver!r}")
        if backward not in BACKWARDS:
            raise UserError(f"{name}: backward must be one of {BACKWARDS}, got {backward!r}")
        backward_solver = solver if backward_solver is None else backward_solver
        if backward_solver not in SOLVERS:
            raise UserError(
                f"{name}: backward_solver must be one of {SOLVERS} or None, got {backward_solver!r}"
            )
        backward_tol = tol if backward_tol is None else backward_tol
        backward_max_iter = max_iter if backward_max_iter is None else backward_max_iter
        check_on_failure(on_failure, name)
        check_fixed_point_args(
            name, tol, max_iter, relaxation, anderson_memory, names={"memory": "anderson_memory"}
        )
        check_fixed_point_args(
            name,
            backward_tol,
            backward_max_iter,
            relaxation,
            names={"tol": "backward_tol", "max_iter": "backward_max_iter"},
        )
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.backward = backward
        self.backward_solver = backward_solver
        self.backward_tol = backward_tol
        self.backward_max_iter = backward_max_iter
        self.relaxation = relaxation
        self.anderson_memory = anderson_memory
        self.on_failure = on_failure
        self.last_info: FixedPointInfo | None = None
        self.last_backward_info: FixedPointInfo | None = None

    def extra_repr(self) -> str:
        return (
            f"solver={self.solver!r}, tol={self.tol:g}, max_iter={self.max_iter}, "
            f"backward={self.backward!r}"
        )

    def diagnostics(self, prefix: str = "deq/") -> dict[str, float]:
        """The latest forward and backward solves (:meth:`FixedPointInfo.summary`)."""
        out: dict[str, float] = {}
        if self.last_info is not None:
            out.update(self.last_info.summary(prefix))
        if self.last_backward_info is not None:
            out.update(self.last_backward_info.summary(f"{prefix}backward_"))
        return out

    def _solve(
        self, f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, backward: bool
    ) -> tuple[torch.Tensor, FixedPointInfo]:
        solver = self.backward_solver if backward else self.solver
        x, info = solve_fixed_point(
            f,
            x0,
            solver=solver,
            tol=self.backward_tol if backward else self.tol,
            max_iter=self.backward_max_iter if backward else self.max_iter,
            relaxation=self.relaxation,
            memory=self.anderson_memory,
            on_failure=self.on_failure,
            name=f"{type(self).__name__} {'backward' if backward else 'forward'} ({solver})",
        )
        return x, info

    def forward(self, f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor) -> torch.Tensor:
        """The fixed point of ``f`` reached from ``x0``.

        Args:
            f: the iteration map ``(B, ...) -> (B, ...)`` (same shape and dtype), acting on each
                sample separately and contractive near the fixed point.
            x0: initial iterate ``(B, ...)``, real or complex (e.g. the zero-filled image).

        Returns:
            ``x*`` ``(B, ...)``; with gradients enabled, ``f(x*)`` recorded by autograd, whose
            backward is the implicit (or JFB) gradient.
        """
        with torch.no_grad():
            x_star, self.last_info = self._solve(f, x0.detach(), backward=False)
        if not torch.is_grad_enabled():
            return x_star
        x_in = x_star.detach().requires_grad_()
        z = f(x_in)
        if self.backward == "jfb" or not z.requires_grad:
            return z

        def implicit_gradient(grad: torch.Tensor | None) -> torch.Tensor | None:
            if grad is None:  # an undefined gradient stays undefined (zero)
                return None

            def adjoint_map(u: torch.Tensor) -> torch.Tensor:
                (vjp,) = torch.autograd.grad(z, x_in, u, retain_graph=True, allow_unused=True)
                return grad if vjp is None else vjp + grad

            u, self.last_backward_info = self._solve(adjoint_map, grad, backward=True)
            return u

        # The hook goes on a view of z, not on z: the vector-Jacobian products start at z, and a
        # hook on z itself would fire again inside them.
        out = z.view_as(z)
        out.register_hook(implicit_gradient)
        return out
