"""Training objectives: what ``fit`` minimises, as weighted terms any ReconModule can combine.

By default a :class:`~deepinv_lab.training.module.ReconModule` trains its Recon ``R`` on
``loss(R(y, A), x)`` against the ground truth ``x``. Its ``objectives`` replace that by a
weighted sum ``L = sum_i w_i L_i`` of:

* :class:`Supervised`: ``L = loss(R(y, A), x)``, the default;
* :class:`SSDU` (self-supervised, no ground truth): SSDU's measurement-consistency loss
  (Yaman et al. 2020, :mod:`deepinv_lab.training.self_supervised`):
  ``L = ssdu(Lambda A R(Theta y, A_Theta), Lambda y)`` on random splits ``Omega = Theta + Lambda``
  of the sampling mask;
* :class:`Distillation` (no ground truth either): ``L = loss(R(y, A), R_T(y, A))``, matching
  the output of a frozen teacher loaded from a checkpoint (output distillation as in Hinton,
  Vinyals & Dean 2015, for regression), e.g. the unpruned network after ``deepinv-lab prune``.

Config example (SSDU from scratch, no ground truth used for training)::

    "model": {
      "class_path": "deepinv_lab.training.module.ReconModule",
      "init_args": {
        "recon": {"class_path": "deepinv_lab.recons.VarNet", "init_args": {...}},
        "objectives": [
          {"class_path": "deepinv_lab.training.objectives.SSDU",
           "init_args": {"holdout": 0.4, "granularity": "points"}}
        ]
      }
    }

References:
    B. Yaman et al., "Self-supervised learning of physics-guided reconstruction neural networks
    without fully sampled reference data", Magn. Reson. Med. 84(6), 2020 (SSDU).
    G. Hinton, O. Vinyals, J. Dean, "Distilling the knowledge in a neural network", 2015.
    C. Park, S. Shoushtari, W. Gan, U. S. Kamilov, "Efficient model-based deep learning via
    network pruning and fine-tuning", 2024 (the three combined after pruning).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar

import torch

from deepinv_lab.batch import Batch
from deepinv_lab.checkpoints import load_recon_weights
from deepinv_lab.errors import UserError
from deepinv_lab.training.self_supervised import (
    Granularity,
    Selection,
    check_split_options,
    split_mask,
    ssdu_loss,
)

if TYPE_CHECKING:
    from deepinv_lab.training.module import ReconModule


class Objective:
    """One weighted term of the training loss.

    Subclasses set :attr:`name` (logged as ``train/<name>``) and implement :meth:`__call__`.
    An objective is not an ``nn.Module``: what it holds (a teacher) is neither trained nor
    saved in the module's checkpoints.

    Args:
        weight: the term's weight ``w >= 0`` in ``L = sum_i w_i L_i``.
    """

    name: ClassVar[str]
    #: whether the term needs the batch's ``target``
    needs_target: ClassVar[bool] = False
    #: whether the term compares ``module.reconstruct(batch)``, which the module then computes
    #: once for all terms and passes as ``output``
    uses_output: ClassVar[bool] = False

    def __init__(self, weight: float = 1.0):
        if not weight >= 0:
            raise UserError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def setup(self, module: ReconModule) -> None:
        """Called by the module's ``setup("fit")`` before its own (a teacher copies the Recon
        before ``init_from`` may resize it to a pruned architecture)."""

    def __call__(
        self, module: ReconModule, batch: Batch, output: torch.Tensor | None
    ) -> torch.Tensor:
        """The term's value; ``output`` is ``module.reconstruct(batch)`` for terms that
        :attr:`uses_output`, else ``None``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"


class Supervised(Objective):
    """``loss(R(y, A), x)``: the module's ``loss`` against the batch's ``target``."""

    name = "supervised"
    needs_target = True
    uses_output = True

    def __call__(self, module, batch, output):
        return module.loss_fn(output, batch["target"], batch["max_value"])


class SSDU(Objective):
    """SSDU's measurement-consistency loss, from undersampled measurements alone.

    Every training step splits each sample's sampling mask ``Omega`` anew into ``Theta`` and
    ``Lambda`` (:func:`~deepinv_lab.training.self_supervised.split_mask`), reconstructs from
    ``Theta y`` with the System rebuilt on ``Theta`` (its ``with_mask``) and compares the
    measurements the reconstruction predicts on ``Lambda``
    (:meth:`~deepinv_lab.recons.base.Recon.measurement_estimate`) with the held-out ones
    (:func:`~deepinv_lab.training.self_supervised.ssdu_loss`). Needs a Recon with
    ``measurement_estimate`` (VarNet, DEQ, MoDL, unrolled proximal gradient) and a System with a
    sampling mask and ``with_mask`` (the Cartesian MRI Systems, inpainting).

    Args:
        weight: as :class:`Objective`.
        holdout: ``rho = |Lambda| / |Omega|``, in ``(0, 1)``.
        splits: the number of independent splits per step, averaged (multi-mask SSDU, Yaman et
            al., ISBI 2021); each costs one reconstruction.
        selection: ``"uniform"`` or SSDU's ``"gaussian"`` selection of held-out locations.
        granularity: ``"points"`` (SSDU) or ``"columns"``: what a column mask holds out.
        theta_weight: weight of the same normalised loss on ``Theta``, the measurements the
            Recon saw: ``L = ssdu(Lambda) + theta_weight * ssdu(Theta)``. SSDU has 0: its
            networks end in a conjugate-gradient data-consistency step on ``Theta`` that keeps
            them there. A Recon whose output on the measured locations is free (VarNet's soft
            data consistency, whose regulariser term also writes there) drifts from ``y`` with
            0: VarNet trained from scratch on the built-in data reaches 27.25 dB with 1 and
            14.13 dB with 0, its k-space on the measured locations 1.9x too strong
            (docs/training.md). Hence the default 1.
    """

    name = "ssdu"

    def __init__(
        self,
        weight: float = 1.0,
        holdout: float = 0.4,
        splits: int = 1,
        selection: Selection = "uniform",
        granularity: Granularity = "points",
        theta_weight: float = 1.0,
    ):
        super().__init__(weight)
        check_split_options(holdout, selection, granularity, "SSDU")
        if splits < 1:
            raise UserError(f"SSDU: splits must be >= 1, got {splits}")
        if not theta_weight >= 0:
            raise UserError(f"SSDU: theta_weight must be >= 0, got {theta_weight}")
        self.holdout, self.splits, self.theta_weight = holdout, splits, float(theta_weight)
        self.selection, self.granularity = selection, granularity

    def __call__(self, module, batch, output):
        y, system = batch["y"], batch["system"]
        mask = getattr(system, "mask", None)
        if not isinstance(mask, torch.Tensor):
            raise UserError(
                f"SSDU splits the System's sampling mask; {type(system).__name__} has none"
            )
        if not hasattr(system, "with_mask"):
            raise UserError(
                f"SSDU splits the System's sampling mask; {type(system).__name__} has no "
                "with_mask(mask) to rebuild itself with another"
            )
        if mask.shape[0] != y.shape[0]:  # one mask shared by the batch: split each sample anew
            mask = mask.expand(y.shape[0], *mask.shape[1:])
        total = 0.0
        for _ in range(self.splits):
            theta, lam = split_mask(
                mask,
                self.holdout,
                num_low_frequencies=getattr(system, "num_low_frequencies", None),
                selection=self.selection,
                granularity=self.granularity,
                height=y.shape[-2],
            )
            estimate = module.recon.measurement_estimate(y * theta, system.with_mask(theta), system)
            total = total + ssdu_loss(estimate, y, lam)
            if self.theta_weight:
                total = total + self.theta_weight * ssdu_loss(estimate, y, theta)
        return total / self.splits

    def __repr__(self) -> str:
        return (
            f"SSDU(weight={self.weight}, holdout={self.holdout}, splits={self.splits}, "
            f"selection={self.selection!r}, granularity={self.granularity!r}, "
            f"theta_weight={self.theta_weight})"
        )


class Distillation(Objective):
    """``loss(R(y, A), R_T(y, A))``: the Recon matches a frozen teacher's output.

    The teacher is the module's Recon with the weights (and architecture, pruned or not) of the
    checkpoint ``teacher``, e.g. the unpruned network; it is loaded at the start of ``fit``,
    never trained and not saved in the module's checkpoints. The batch's ``max_value`` (if it
    has none, the teacher's per-sample maximum) is the SSIM/PSNR data range.

    Args:
        teacher: a checkpoint of ``fit`` (or ``prune``) holding the teacher's weights.
        weight: as :class:`Objective`.
    """

    name = "distillation"
    uses_output = True

    def __init__(self, teacher: str, weight: float = 1.0):
        super().__init__(weight)
        self.teacher = teacher
        self.teacher_recon: torch.nn.Module | None = None

    def setup(self, module):
        if self.teacher_recon is None:
            recon = copy.deepcopy(module.recon)
            load_recon_weights(recon, self.teacher, "teacher")
            recon.eval()
            recon.requires_grad_(False)
            self.teacher_recon = recon

    def __call__(self, module, batch, output):
        if self.teacher_recon is None:
            raise RuntimeError("Distillation: the teacher is loaded by the module's setup('fit')")
        self.teacher_recon.to(output.device)
        with torch.no_grad():
            reference = module.reconstruct(batch, self.teacher_recon)
        max_value = batch.get("max_value")
        if max_value is None:
            max_value = reference.flatten(1).amax(dim=1)
        return module.loss_fn(output, reference, max_value)

    def __repr__(self) -> str:
        return f"Distillation(teacher={self.teacher!r}, weight={self.weight})"


def check_objectives(objectives: list[Objective] | None) -> list[Objective] | None:
    """The objectives with a positive weight; UserErrors for an empty or all-zero list and
    for two terms of one name (their logs would collide)."""
    if objectives is None:
        return None
    objectives = list(objectives)
    for objective in objectives:
        if not isinstance(objective, Objective):
            raise UserError(
                f"objectives: expected deepinv_lab.training.objectives.Objective blocks, got "
                f"{type(objective).__name__}"
            )
    names = [o.name for o in objectives]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"objectives: {', '.join(repeated)} given more than once")
    used = [o for o in objectives if o.weight > 0]
    if not used:
        raise UserError(f"objectives: at least one weight must be > 0, got {objectives or 'none'}")
    return used


#: the objectives by name (``deepinv-lab prune --prune.finetune ssdu,distillation``)
OBJECTIVES: dict[str, type[Objective]] = {
    kind.name: kind for kind in (Supervised, SSDU, Distillation)
}
