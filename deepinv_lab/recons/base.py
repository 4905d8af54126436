"""The Recon base class: ``forward(y, system) -> x_hat``, the signature of every reconstruction.

A Recon is a plain ``nn.Module`` (no Lightning), built from System, Model and Optimization blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem, System


class Recon(nn.Module):
    """A reconstruction ``x_hat = R(y, A)`` from measurements ``y`` and their System ``A``.

    Subclasses implement ``forward(y, system)``. MRI Recons return magnitude images
    ``(B, 1, H, W)``. Recons that can say which measurements their reconstruction predicts also
    implement :meth:`measurement_estimate` (needed by self-supervised training,
    :class:`~deepinv_lab.training.objectives.SSDU`).
    """

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement forward(y, system)")

    def check_system(self, system: System, y: torch.Tensor) -> None:
        """Raise a :class:`~deepinv_lab.errors.UserError` when this Recon cannot reconstruct
        measurements ``y`` of ``system`` (one example batch of the data, checked when a run
        starts; e.g. non-Cartesian k-space given to a Recon that needs a Cartesian mask). The
        base class accepts anything."""

    def diagnostics(self) -> dict[str, float]:
        """Numbers describing the last forward (and backward) pass, e.g. solver iteration counts
        and residuals, which the training module logs under ``train/`` and ``val/``; empty by
        default. Keys are ``<block>/<quantity>`` (``cg/iterations``, ``deq/relative_residual``,
        ``gradient_step/step_size``; the vocabulary of docs/conventions.md)."""
        return {}

    def measurement_estimate(
        self, y: torch.Tensor, system: System, observe: System | None = None
    ) -> torch.Tensor:
        """``A x_hat``: the measurements that the reconstruction from ``(y, system)`` predicts,
        in the space of ``y``.

        ``x_hat`` is reconstructed from ``y`` and ``system``; ``observe`` (default: ``system``)
        is the System ``A`` that maps it to measurements. Self-supervised training reconstructs
        from part of the measurements and observes with another System, e.g. the full sampling
        mask (SSDU, :func:`~deepinv_lab.training.self_supervised.ssdu_loss`).

        Not ``system(forward(y, system))``: ``forward`` of MRI Recons returns magnitudes, which
        the System cannot map back to k-space. Recons with a complex solution (DEQ, the unrolled
        Recons) or a k-space estimate (VarNet) override this; the base class raises a UserError.
        """
        raise UserError(
            f"{type(self).__name__} does not provide measurement_estimate; "
            "measurement-consistency fine-tuning needs it"
        )


def require_linear(recon: Recon, system: System) -> None:
    """A UserError unless ``system`` is a :class:`~deepinv_lab.systems.base.LinearSystem`
    (model-based Recons need ``A``, ``A^H`` and ``A^H A``)."""
    if not isinstance(system, LinearSystem):
        raise UserError(
            f"{type(recon).__name__} needs a linear System with an adjoint (A, A^H, A^H A), and "
            f"the data's System is {type(system).__name__}; use a denoising Recon (Denoiser) "
            "for denoising data"
        )


def require_image(recon: Recon, system: System, y: torch.Tensor) -> None:
    """A UserError unless ``y`` is a real image batch ``(B, C, H, W)`` or volume batch
    ``(B, C, D, H, W)`` (image-domain Recons)."""
    if y.is_complex() or y.ndim not in (4, 5):
        raise UserError(
            f"{type(recon).__name__} works on real image measurements (B, C, H, W) or volumes "
            f"(B, C, D, H, W), and the "
            f"data's System {type(system).__name__} gives {'complex ' if y.is_complex() else ''}"
            f"measurements of shape {tuple(y.shape)}; use a model-based Recon (MoDL, DEQ, "
            "UnrolledProximalGradient) or PostProcessing"
        )


def image_output(x: torch.Tensor, magnitude: bool) -> torch.Tensor:
    """``|x|`` for a complex ``x`` when ``magnitude`` (MRI Recons return magnitude images)."""
    return x.abs() if magnitude and x.is_complex() else x


class SolutionRecon(Recon):
    """A Recon whose estimate ``x`` lives in the System's input space (complex for MRI):
    subclasses implement ``solution(y, system)``; :meth:`forward` returns it as an image
    (``|x|`` with ``magnitude``) and :meth:`measurement_estimate` maps it to measurements.
    DEQ and the unrolled Recons (MoDL, unrolled proximal gradient) are such Recons."""

    magnitude: bool

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:
        return image_output(self.solution(y, system), self.magnitude)

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_linear(self, system)

    def measurement_estimate(
        self, y: torch.Tensor, system: System, observe: System | None = None
    ) -> torch.Tensor:
        """``A x`` with ``A`` = ``observe`` (default ``system``) and ``x`` the complex
        ``solution(y, system)``; see :meth:`Recon.measurement_estimate`."""
        return (system if observe is None else observe)(self.solution(y, system))
