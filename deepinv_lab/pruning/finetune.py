"""Fine-tuning of (pruned) model-based Recons: supervised, self-supervised and distilled.

After structured pruning (:mod:`deepinv_lab.pruning.structured`, ``deepinv-lab prune``) a Recon
loses accuracy; a short fine-tuning recovers most of it. Park et al. (2024) compare three ways,
which :class:`FineTuneModule` combines as a weighted sum ``L = sum_s w_s L_s``:

* ``supervised``: ``L = loss(R(y, A), x)`` against the ground truth ``x``;
* ``measurement`` (self-supervised, no ground truth): SSDU's measurement-consistency loss
  (Yaman et al. 2020). The sampled set ``Omega`` of each mask is split at random into ``Theta``,
  which the Recon sees, and ``Lambda``, held out; the loss compares the measurements that the
  reconstruction from ``Theta`` predicts on ``Lambda`` with the held-out measurements,
  ``L = ssdu(Lambda A R(Theta y, A_Theta), Lambda y)`` (:func:`ssdu_loss`). Without the split,
  ``||A x_hat - y||`` is met by any ``x_hat`` that copies the measured data;
* ``distillation``: ``L = loss(R(y, A), R_teacher(y, A))``, the pruned student matching the
  output of the unpruned teacher (output distillation as in Hinton, Vinyals & Dean 2015, for
  regression), no ground truth either.

References:
    C. Park, S. Shoushtari, W. Gan, U. S. Kamilov, "Efficient model-based deep learning via
    network pruning and fine-tuning", 2024 (arXiv:2311.02003).
    B. Yaman, S. A. H. Hosseini, S. Moeller, J. Ellermann, K. Ugurbil, M. Akcakaya,
    "Self-supervised learning of physics-guided reconstruction neural networks without fully
    sampled reference data", Magn. Reson. Med. 84(6), 2020 (SSDU).
    G. Hinton, O. Vinyals, J. Dean, "Distilling the knowledge in a neural network", 2015.
"""

from __future__ import annotations

import copy

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from deepinv_lab.checkpoints import load_recon_weights
from deepinv_lab.errors import UserError
from deepinv_lab.models.sensitivity import acs_window
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System
from deepinv_lab.systems.mri import KSpaceMask, MultiCoilFourier, MultiCoilMRI, SingleCoilMRI
from deepinv_lab.training.module import ReconModule
from deepinv_lab.training.schedulers import StepShorthand

STRATEGIES = ("supervised", "measurement", "distillation")


def split_mask(
    mask: torch.Tensor,
    holdout: float = 0.4,
    generator: torch.Generator | None = None,
    *,
    num_low_frequencies: int | torch.Tensor | None = None,
    center_block: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSDU split of a sampling mask ``Omega`` into disjoint ``Theta`` and ``Lambda``.

    ``Theta`` (given to the network) and ``Lambda`` (held out for the loss) are disjoint and
    ``Theta + Lambda = mask`` exactly (also for weighted masks: the split only chooses which
    locations go where). Per sample, ``round(holdout * |Omega|)`` sampled locations (at least
    one, at most all unprotected ones) are drawn uniformly at random into ``Lambda``, as in SSDU
    with ``rho = holdout`` (SSDU draws from a Gaussian density; uniform here). The k-space centre
    is never held out, so the network always has its calibration data:

    * column masks ``(B, 1, 1, W)``: the ACS columns, the union of
      :func:`~deepinv_lab.models.sensitivity.acs_window` derived from the mask (what VarNet's
      sensitivity network uses, so its ACS stays the same on ``Theta``) and, when given, the
      ``num_low_frequencies`` window;
    * 2D masks ``(B, 1, H, W)``: the central ``center_block x center_block`` block (rows and
      columns ``n // 2 - center_block // 2`` onwards), SSDU's 4 x 4 by default.

    Args:
        mask: real sampling mask, nonzero where sampled, ``(B, 1, 1, W)`` or ``(B, 1, H, W)``.
            Each of the ``B`` samples is split independently (expand a shared ``(1, ...)`` mask
            to the batch first for per-sample splits).
        holdout: the fraction of sampled locations held out, in ``(0, 1)``.
        generator: random generator (on the CPU or the mask's device) for reproducible splits.
        num_low_frequencies: ACS width of column masks, an int or ``(B,)``; ignored for 2D masks.
        center_block: side of the protected centre of 2D masks.

    Returns:
        ``(theta, lam)``, each shaped and typed like ``mask`` (with ``B`` samples when a
        shared ``(1, ...)`` mask comes with ``B`` ACS widths).
    """
    if not 0 < holdout < 1:
        raise UserError(f"holdout must be in (0, 1) (the held-out fraction), got {holdout}")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.is_complex():
        raise ValueError(
            "split_mask expects a real mask of shape (B, 1, 1, W) or (B, 1, H, W), got dtype "
            f"{mask.dtype} with shape {tuple(mask.shape)}"
        )
    _, _, height, width = mask.shape
    if height == 1:  # column mask
        protected = acs_window(width, mask)
        if num_low_frequencies is not None:
            protected = protected | acs_window(width, mask, num_low_frequencies)
    else:
        protected = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
        rows = slice(max(height // 2 - center_block // 2, 0), height // 2 + (center_block + 1) // 2)
        cols = slice(max(width // 2 - center_block // 2, 0), width // 2 + (center_block + 1) // 2)
        protected[..., rows, cols] = True
    # a shared (1, ...) mask with per-sample ACS widths (B,) is split per sample
    mask, protected = torch.broadcast_tensors(mask, protected)
    batch = mask.shape[0]
    sampled = mask != 0
    candidates = (sampled & ~protected).reshape(batch, -1)
    available = candidates.sum(dim=1)
    wanted = torch.round(holdout * sampled.reshape(batch, -1).sum(dim=1).to(torch.float64))
    count = torch.minimum(wanted.to(torch.long).clamp(min=1), available)
    device = generator.device if generator is not None else mask.device
    scores = torch.rand(candidates.shape, generator=generator, device=device).to(mask.device)
    scores = torch.where(candidates, scores, torch.full_like(scores, 2.0))  # candidates first
    ranks = scores.argsort(dim=1).argsort(dim=1)
    held = (ranks < count[:, None]).reshape(mask.shape)
    lam = torch.where(held, mask, torch.zeros_like(mask))
    return mask - lam, lam


def with_mask(system: System, mask: torch.Tensor) -> System:
    """The MRI System ``system`` with the sampling mask ``mask`` instead of its own.

    Supported: :class:`~deepinv_lab.systems.mri.MultiCoilMRI` (its coil maps kept),
    :class:`~deepinv_lab.systems.mri.MultiCoilFourier`,
    :class:`~deepinv_lab.systems.mri.SingleCoilMRI` and
    :class:`~deepinv_lab.systems.mri.KSpaceMask`; any other System raises a ValueError.
    """
    _check_maskable(system)
    if type(system) is MultiCoilMRI:
        return MultiCoilMRI(system.coil_maps, mask)
    return type(system)(mask)


_MASKABLE = (MultiCoilMRI, MultiCoilFourier, SingleCoilMRI, KSpaceMask)


def _check_maskable(system: System) -> None:
    """A UserError unless :func:`with_mask` can give ``system`` another mask."""
    kind = type(system)
    if kind in _MASKABLE:
        return
    if isinstance(getattr(system, "mask", None), torch.Tensor):
        raise UserError(
            f"measurement-consistency fine-tuning splits the System's sampling mask; it cannot "
            f"rebuild a {kind.__name__} with another mask (supported: "
            f"{', '.join(k.__name__ for k in _MASKABLE)})"
        )
    raise UserError(
        "measurement-consistency fine-tuning splits the System's sampling mask; "
        f"{kind.__name__} has none"
    )


def ssdu_loss(estimate: torch.Tensor, y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """SSDU's normalised l1-l2 loss on the held-out locations ``Lambda``, averaged over the batch:

    ``||Lambda (est - y)||_2 / ||Lambda y||_2 + ||Lambda (est - y)||_1 / ||Lambda y||_1``

    per sample, on magnitudes of complex entries (``|.|`` of each k-space value).

    Args:
        estimate: predicted measurements ``(B, ...)``, e.g.
            :meth:`~deepinv_lab.recons.base.Recon.measurement_estimate`.
        y: the measurements, shaped like ``estimate``.
        lam: the held-out mask ``Lambda``, broadcastable against ``y``
            (:func:`split_mask`).
    """
    if estimate.shape != y.shape:
        raise ValueError(
            f"ssdu_loss: the estimate {tuple(estimate.shape)} and the measurements "
            f"{tuple(y.shape)} differ in shape"
        )
    residual = (lam * (estimate - y)).abs().flatten(1)
    reference = (lam * y).abs().flatten(1)
    tiny = torch.finfo(residual.dtype).tiny
    l2 = residual.norm(dim=1) / reference.norm(dim=1).clamp(min=tiny)
    l1 = residual.sum(dim=1) / reference.sum(dim=1).clamp(min=tiny)
    return (l2 + l1).mean()


class FineTuneModule(ReconModule):
    """A :class:`~deepinv_lab.training.module.ReconModule` whose training loss is a weighted sum
    of fine-tuning strategies (Park et al. 2024), e.g. after ``deepinv-lab prune``.

    ``L = w_sup L_sup + w_mc L_mc + w_kd L_kd`` with, for measurements ``y`` of the System ``A``
    with sampling mask ``Omega``, the Recon ``R`` being trained and ``loss`` the module's loss:

    * ``supervised``: ``L_sup = loss(R(y, A), x)``, ``x`` the batch's ``target``;
    * ``measurement``: ``L_mc = ssdu_loss(A R(Theta y, A_Theta), y, Lambda)``
      (:func:`ssdu_loss`, SSDU, Yaman et al. 2020), with ``Omega = Theta + Lambda`` split anew at
      random every step (:func:`split_mask`, ``holdout`` = ``|Lambda| / |Omega|``, the k-space
      centre kept in ``Theta``) and ``A_Theta`` the System with mask ``Theta``
      (:func:`with_mask`); ``A R(...)`` is the Recon's
      :meth:`~deepinv_lab.recons.base.Recon.measurement_estimate` observed through ``A``. Needs
      no ground truth; the Recon must provide ``measurement_estimate`` (VarNet, DEQ, MoDL,
      UnrolledProximalGradient) and the System a sampling mask (MRI Systems);
    * ``distillation``: ``L_kd = loss(R(y, A), R_T(y, A))`` with ``R_T`` the teacher: the same
      Recon with the weights (and architecture) of the checkpoint ``teacher``, e.g. the unpruned
      network, frozen. Needs no ground truth (the batch's ``max_value``, if it has none the
      teacher's per-sample maximum, is the SSIM/PSNR data range).

    Validation and testing are :class:`ReconModule`'s: full measurements against the ground
    truth.

    Args:
        recon, loss, optimizer, lr_scheduler, baseline, init_from: as :class:`ReconModule`;
            ``init_from`` is typically the pruned checkpoint written by ``deepinv-lab prune``.
        strategies: ``{name: weight}`` with names ``"supervised"``, ``"measurement"``,
            ``"distillation"``, weights ``>= 0``, at least one ``> 0``; strategies with weight
            0 are not computed. Default ``{"supervised": 1.0}``.
        teacher: the checkpoint of the teacher Recon, needed by ``distillation`` (and loaded
            only then, at the start of ``fit``). The teacher is not a submodule: it is neither
            trained nor saved in this module's checkpoints.
        holdout: the fraction of sampled k-space locations held out for ``measurement``.

    Logged: ``train/<strategy>`` for each strategy used and ``train/loss``, their weighted sum;
    the rest as :class:`ReconModule`.

    Config example (fine-tuning a pruned VarNet from its measurements and its teacher)::

        "model": {
          "class_path": "deepinv_lab.pruning.finetune.FineTuneModule",
          "init_args": {
            "recon": {"class_path": "deepinv_lab.recons.VarNet", "init_args": {...}},
            "init_from": "pruned.ckpt",
            "teacher": "logs/varnet/version_0/checkpoints/last.ckpt",
            "strategies": {"measurement": 1.0, "distillation": 0.5},
            "holdout": 0.4,
            "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-4}}
          }
        }
    """

    def __init__(
        self,
        recon: Recon,
        loss: str | nn.Module = "ssim",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | StepShorthand | None = None,
        baseline: Recon | None = None,
        init_from: str | None = None,
        strategies: dict[str, float] | None = None,
        teacher: str | None = None,
        holdout: float = 0.4,
    ):
        super().__init__(recon, loss, optimizer, lr_scheduler, baseline, init_from)
        self.strategy_weights = _check_strategies(strategies, teacher)
        if not 0 < holdout < 1:
            raise UserError(f"holdout must be in (0, 1) (the held-out fraction), got {holdout}")
        self.teacher = teacher
        self.holdout = holdout
        # not a submodule: neither optimized nor saved in checkpoints (set in setup)
        object.__setattr__(self, "_teacher_recon", None)

    @property
    def teacher_recon(self) -> Recon | None:
        """The frozen teacher Recon (after ``setup("fit")``, when ``distillation`` is used)."""
        return self._teacher_recon

    def setup(self, stage: str) -> None:
        # the teacher is copied before super().setup, which may resize self.recon to the pruned
        # architecture of init_from; load_recon_weights gives it the teacher's own architecture
        if (
            stage == "fit"
            and "distillation" in self.strategy_weights
            and self._teacher_recon is None
        ):
            teacher = copy.deepcopy(self.recon)
            load_recon_weights(teacher, self.teacher, "teacher")
            teacher.eval()
            teacher.requires_grad_(False)
            object.__setattr__(self, "_teacher_recon", teacher)
        super().setup(stage)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        losses: dict[str, torch.Tensor] = {}
        output = None
        if "supervised" in self.strategy_weights:
            if "target" not in batch:
                raise UserError(
                    "training: the batches have no 'target', which the 'supervised' fine-tuning "
                    "strategy needs; 'measurement' and 'distillation' need none"
                )
            output = self._reconstruct(batch)
            losses["supervised"] = self.loss_fn(output, batch["target"], batch["max_value"])
        if "distillation" in self.strategy_weights:
            output = self._reconstruct(batch) if output is None else output
            losses["distillation"] = self._distillation_loss(batch, output)
        if "measurement" in self.strategy_weights:
            losses["measurement"] = self._measurement_loss(batch)
        batch_size = batch["y"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        loss = sum(self.strategy_weights[name] * value for name, value in losses.items())
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self._train_batch_size = batch_size
        if not loss.requires_grad:  # nothing to train: fit only evaluates
            self._log_diagnostics("train", batch_size)
            return None
        return loss

    def _distillation_loss(self, batch: dict, output: torch.Tensor) -> torch.Tensor:
        teacher = self._teacher_recon
        if teacher is None:
            raise RuntimeError(
                "distillation: the teacher is loaded by setup('fit'); call it before training"
            )
        teacher.to(output.device)
        with torch.no_grad():
            reference = self._reconstruct(batch, teacher)
        max_value = batch.get("max_value")
        if max_value is None:
            max_value = reference.flatten(1).amax(dim=1)
        return self.loss_fn(output, reference, max_value)

    def _measurement_loss(self, batch: dict) -> torch.Tensor:
        y, system = batch["y"], batch["system"]
        _check_maskable(system)
        mask = system.mask
        if mask.shape[0] != y.shape[0]:  # one mask shared by the batch: split each sample anew
            mask = mask.expand(y.shape[0], *mask.shape[1:])
        theta, lam = split_mask(
            mask, self.holdout, num_low_frequencies=batch.get("num_low_frequencies")
        )
        estimate = self.recon.measurement_estimate(y * theta, with_mask(system, theta), system)
        return ssdu_loss(estimate, y, lam)


def _check_strategies(strategies: dict[str, float] | None, teacher: str | None) -> dict:
    """The strategies with a positive weight; UserErrors for bad names, weights or teacher."""
    strategies = {"supervised": 1.0} if strategies is None else dict(strategies)
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise UserError(
            f"unknown fine-tuning strategy {', '.join(map(repr, unknown))} in strategies; "
            f"valid: {', '.join(STRATEGIES)}"
        )
    negative = {name: w for name, w in strategies.items() if not w >= 0}
    if negative:
        raise UserError(f"strategies: weights must be >= 0, got {negative}")
    used = {name: float(w) for name, w in strategies.items() if w > 0}
    if not used:
        raise UserError(
            f"strategies: at least one weight must be > 0, got {strategies} "
            f"(valid: {', '.join(STRATEGIES)})"
        )
    if "distillation" in used and teacher is None:
        raise UserError(
            "strategies: 'distillation' needs a teacher checkpoint (teacher: path to the "
            "unpruned model's checkpoint)"
        )
    return used
