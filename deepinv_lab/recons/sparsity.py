"""Sparsity-regularised reconstruction: l1-wavelet compressed sensing solved by FISTA, total
variation solved by PDHG."""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import soft_threshold
from deepinv_lab.optim.cg import check_cg_args
from deepinv_lab.optim.data_consistency import positive_weight
from deepinv_lab.optim.fista import FISTAInfo, fista
from deepinv_lab.optim.pdhg import PDHGInfo, check_weight, pdhg
from deepinv_lab.recons.base import SolutionRecon, require_linear
from deepinv_lab.systems.base import LinearSystem, System
from deepinv_lab.systems.wavelet import Wavelet2D


class SparsityRecon(SolutionRecon):
    """What the sparsity Recons share: the weight ``lamda`` of the regulariser, fixed or learned,
    the stopping rule and the diagnostics ``{solver}/lamda``, ``{solver}/objective`` and the
    solve's iterations and relative change.

    ``learn_lamda=True`` stores ``log lamda`` as a trainable parameter (``lamda > 0``; a fixed
    ``lamda`` may be 0), so that ``fit`` calibrates the one weight on the training data. The
    gradient flows by autograd through every iteration of the solver: the activations of all
    ``max_iter`` iterations are kept, memory ``O(max_iter)`` images (and their wavelet
    coefficients or gradients) per sample -- fine for small images and iteration counts.
    """

    #: the prefix of the diagnostics, the solver's name
    solver: str
    last_info: FISTAInfo | PDHGInfo | None

    def __init__(self, lamda: float, learn_lamda: bool, max_iter: int, tol: float, magnitude: bool):
        super().__init__()
        owner = type(self).__name__
        check_weight(owner, lamda)
        check_cg_args(owner, tol, max_iter)
        if learn_lamda:
            if not lamda > 0:
                raise UserError(
                    f"{owner}: lamda must be > 0 with learn_lamda=True (it is learned as "
                    f"log lamda), got {lamda!r}"
                )
            self.log_lamda = positive_weight(lamda, True, "lamda", owner)
            self.fixed_lamda = None
        else:
            # A fixed lamda stays an exact float (and may be 0): no parameter to train or save.
            self.register_parameter("log_lamda", None)
            self.fixed_lamda = float(lamda)
        self.max_iter, self.tol, self.magnitude = max_iter, tol, magnitude
        self.last_info = None

    @property
    def lamda(self) -> float | torch.Tensor:
        """``lamda``: the float given, or (learned) a positive 0-d tensor carrying the gradient."""
        return self.log_lamda.exp() if self.fixed_lamda is None else self.fixed_lamda

    def diagnostics(self) -> dict[str, float]:
        lamda = self.lamda
        out = {f"{self.solver}/lamda": float(lamda.detach() if torch.is_tensor(lamda) else lamda)}
        if self.last_info is not None:
            out.update(self.last_info.summary(f"{self.solver}/"))
        return out


class L1WaveletRecon(SparsityRecon):
    """``x = argmin_x 1/2 ||A x - y||^2 + lamda ||W x||_1`` by FISTA (Lustig et al., MRM 2007;
    Beck & Teboulle, 2009), ``W`` the orthogonal periodic :class:`~deepinv_lab.systems.Wavelet2D`.

    As ``W`` is orthogonal the proximal step is exact: ``prox(v) = W^H soft(W v, step lamda)``.
    This is the objective, the solver (accelerated proximal gradient, step ``1 / L`` from a
    30-step power iteration, ``tol = 0`` by default) and the weighting of SigPy's
    ``sigpy.mri.app.L1WaveletRecon(y, mps, lamda, weights=mask)``, except its wavelet, which pads
    with zeros (``pywt`` mode ``"zero"``, levels chosen from the image size) where ours wraps
    around: the two minimisers are close, not equal.

    Args:
        lamda: the l1 weight ``>= 0`` (``> 0`` when learned).
        learn_lamda: train ``lamda`` (stored as ``log lamda``; see :class:`SparsityRecon`: the
            gradient is backpropagated through the ``max_iter`` iterations).
        wavelet, levels: of the :class:`~deepinv_lab.systems.Wavelet2D`; H and W must be
            multiples of ``2 ** levels``.
        max_iter, tol: FISTA stopping rule, per sample: relative change ``<= tol`` (0: run
            ``max_iter`` iterations).
        magnitude: return ``|x|`` rather than the complex ``x``.

    Diagnostics: ``fista/lamda``, ``fista/objective`` (batch mean), ``fista/iterations``,
    ``fista/relative_residual``.

    Shapes: ``y`` as the System produces it -> ``(B, 1, H, W)`` for MRI.
    """

    solver = "fista"

    def __init__(
        self,
        lamda: float = 0.01,
        learn_lamda: bool = False,
        wavelet: str = "db4",
        levels: int = 3,
        max_iter: int = 100,
        tol: float = 0.0,
        magnitude: bool = True,
    ):
        super().__init__(lamda, learn_lamda, max_iter, tol, magnitude)
        self.wavelet = Wavelet2D(wavelet, levels)

    def proximal(self, v: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """``W^H soft(W v, step lamda)``: the proximal operator of ``step lamda ||W .||_1``."""
        return self.wavelet.adjoint(soft_threshold(self.wavelet(v), step * self.lamda))

    def regularizer(self, x: torch.Tensor) -> torch.Tensor:
        """``lamda ||W x||_1`` per sample ``(B,)``."""
        return self.lamda * self.wavelet(x).abs().flatten(1).sum(dim=1)

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        x, self.last_info = fista(
            system,
            y,
            self.proximal,
            max_iter=self.max_iter,
            tol=self.tol,
            regularizer=self.regularizer,
        )
        return x

    def check_system(self, system: System, y: torch.Tensor) -> None:
        """A linear System whose images the wavelet can transform (H, W multiples of
        ``2 ** levels``)."""
        require_linear(self, system)
        self.wavelet.check_shape(tuple(system.adjoint(y).shape))


class TVRecon(SparsityRecon):
    """``x = argmin_x 1/2 ||A x - y||^2 + lamda ||G x||`` by PDHG (Chambolle & Pock, 2011), ``G``
    the circular :func:`~deepinv_lab.functional.gradient.finite_difference` (Rudin, Osher &
    Fatemi, 1992; Block et al., MRM 2007 for multicoil MRI).

    ``||.||`` is the isotropic ``l_{1,2}`` norm by default. With ``isotropic=False`` (the
    anisotropic ``l_1`` norm) this is SigPy's ``sigpy.mri.app.TotalVariationRecon(y, mps, lamda,
    weights=mask)``: the same objective, splitting (PDHG on ``[A; G]``), steps (``sigma = 1``,
    ``tau = 1 / L`` from a 30-step power iteration) and ``tol = 0`` default. The power iterations
    start from different random vectors, so ``tau`` differs by ~1% and the iterates by ~1e-3;
    given the same ``tau`` they agree to round-off.

    Args:
        lamda: the TV weight ``>= 0`` (``> 0`` when learned).
        learn_lamda: train ``lamda`` (stored as ``log lamda``; see :class:`SparsityRecon`: the
            gradient is backpropagated through the ``max_iter`` iterations).
        max_iter, tol: PDHG stopping rule, per sample: relative change ``<= tol`` (0: run
            ``max_iter`` iterations).
        magnitude: return ``|x|`` rather than the complex ``x``.
        isotropic: the ``l_{1,2}`` TV (``True``) or SigPy's anisotropic ``l_1`` TV.

    Diagnostics: ``pdhg/lamda``, ``pdhg/objective`` (batch mean), ``pdhg/iterations``,
    ``pdhg/relative_residual``.

    Shapes: ``y`` as the System produces it -> ``(B, 1, H, W)`` for MRI.
    """

    solver = "pdhg"

    def __init__(
        self,
        lamda: float = 0.01,
        learn_lamda: bool = False,
        max_iter: int = 100,
        tol: float = 0.0,
        magnitude: bool = True,
        isotropic: bool = True,
    ):
        super().__init__(lamda, learn_lamda, max_iter, tol, magnitude)
        self.isotropic = isotropic

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        x, self.last_info = pdhg(
            system, y, self.lamda, self.max_iter, self.tol, isotropic=self.isotropic
        )
        return x
