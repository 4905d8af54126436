"""Sparsity-regularised reconstruction: l1-wavelet compressed sensing solved by FISTA, total
variation solved by PDHG."""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import soft_threshold
from deepinv_lab.optim.cg import check_cg_args
from deepinv_lab.optim.fista import FISTAInfo, fista
from deepinv_lab.optim.pdhg import PDHGInfo, pdhg
from deepinv_lab.recons.base import SolutionRecon
from deepinv_lab.systems.base import LinearSystem
from deepinv_lab.systems.wavelet import Wavelet2D


class L1WaveletRecon(SolutionRecon):
    """``x = argmin_x 1/2 ||A x - y||^2 + lamda ||W x||_1`` by FISTA (Lustig et al., MRM 2007;
    Beck & Teboulle, 2009), ``W`` the orthogonal periodic :class:`~deepinv_lab.systems.Wavelet2D`.

    As ``W`` is orthogonal the proximal step is exact: ``prox(v) = W^H soft(W v, step lamda)``.
    This is the objective, the solver (accelerated proximal gradient, step ``1 / L`` from a
    30-step power iteration, ``tol = 0`` by default) and the weighting of SigPy's
    ``sigpy.mri.app.L1WaveletRecon(y, mps, lamda, weights=mask)``, except its wavelet, which pads
    with zeros (``pywt`` mode ``"zero"``, levels chosen from the image size) where ours wraps
    around: the two minimisers are close, not equal.

    Args:
        lamda: the l1 weight ``>= 0``.
        wavelet, levels: of the :class:`~deepinv_lab.systems.Wavelet2D`; H and W must be
            multiples of ``2 ** levels``.
        max_iter, tol: FISTA stopping rule, per sample: relative change ``<= tol`` (0: run
            ``max_iter`` iterations).
        magnitude: return ``|x|`` rather than the complex ``x``.

    Shapes: ``y`` as the System produces it -> ``(B, 1, H, W)`` for MRI.
    """

    def __init__(
        self,
        lamda: float = 0.01,
        wavelet: str = "db4",
        levels: int = 3,
        max_iter: int = 100,
        tol: float = 0.0,
        magnitude: bool = True,
    ):
        super().__init__()
        if isinstance(lamda, bool) or not isinstance(lamda, (int, float)) or lamda < 0:
            raise UserError(f"L1WaveletRecon: lamda must be a number >= 0, got {lamda!r}")
        check_cg_args(type(self).__name__, tol, max_iter)
        self.lamda, self.max_iter, self.tol, self.magnitude = float(lamda), max_iter, tol, magnitude
        self.wavelet = Wavelet2D(wavelet, levels)
        self.last_info: FISTAInfo | None = None

    def proximal(self, v: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """``W^H soft(W v, step lamda)``: the proximal operator of ``step lamda ||W .||_1``."""
        return self.wavelet.adjoint(soft_threshold(self.wavelet(v), step * self.lamda))

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        x, self.last_info = fista(system, y, self.proximal, max_iter=self.max_iter, tol=self.tol)
        return x

    def diagnostics(self) -> dict[str, float]:
        return {} if self.last_info is None else self.last_info.summary("fista/")


class TVRecon(SolutionRecon):
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
        lamda: the TV weight ``>= 0``.
        max_iter, tol: PDHG stopping rule, per sample: relative change ``<= tol`` (0: run
            ``max_iter`` iterations).
        magnitude: return ``|x|`` rather than the complex ``x``.
        isotropic: the ``l_{1,2}`` TV (``True``) or SigPy's anisotropic ``l_1`` TV.

    Shapes: ``y`` as the System produces it -> ``(B, 1, H, W)`` for MRI.
    """

    def __init__(
        self,
        lamda: float = 0.01,
        max_iter: int = 100,
        tol: float = 0.0,
        magnitude: bool = True,
        isotropic: bool = True,
    ):
        super().__init__()
        if isinstance(lamda, bool) or not isinstance(lamda, (int, float)) or lamda < 0:
            raise UserError(f"TVRecon: lamda must be a number >= 0, got {lamda!r}")
        check_cg_args(type(self).__name__, tol, max_iter)
        self.lamda, self.max_iter, self.tol, self.magnitude = float(lamda), max_iter, tol, magnitude
        self.isotropic = isotropic
        self.last_info: PDHGInfo | None = None

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        x, self.last_info = pdhg(
            system, y, self.lamda, self.max_iter, self.tol, isotropic=self.isotropic
        )
        return x

    def diagnostics(self) -> dict[str, float]:
        return {} if self.last_info is None else self.last_info.summary("pdhg/")
