"""GANModule: two-phase adversarial training of a super-resolution Recon (SRGAN, EDSRGAN).

Phase 1 (the first ``pretrain_epochs`` epochs) trains the generator ``G`` (the Recon) alone on the
pixel loss, SRGAN's SRResNet pre-training. Phase 2 alternates, on every batch, a step of the
discriminator ``D`` and a step of ``G`` (Ledig et al., CVPR 2017; Wang et al., WRR 2019):

* discriminator: ``l_D = BCE(D(x), 1) + BCE(D(sg[G(y)]), 0)``, ``sg`` = stop-gradient (the
  generated images are detached, so no gradient reaches ``G``); only ``D``'s optimizer steps.
* generator: ``l_G = w_pix l_pix(G(y), x) + w_perc l_perc(G(y), x) + w_adv BCE(D(G(y)), 1)``
  (the non-saturating adversarial loss ``-log sigmoid(D(G(y)))``); ``D``'s parameters do not
  require gradients during this step, so only ``G`` receives gradients and only ``G``'s
  optimizer steps.

``BCE(l, t)`` is the mean binary cross-entropy with logits ``l`` (``BCEWithLogitsLoss``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from deepinv_lab.batch import require_target
from deepinv_lab.checkpoints import load_recon_weights
from deepinv_lab.errors import UserError
from deepinv_lab.recons.base import Recon
from deepinv_lab.training.module import ReconModule, built_from_config
from deepinv_lab.training.schedulers import StepShorthand


def _adversarial_bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """``BCEWithLogits(logits, 1 if real else 0)``, the mean over all logits (any shape)."""
    labels = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, labels)


class GANModule(ReconModule):
    """Trains a Recon (the generator ``G``) adversarially against a discriminator ``D``.

    Validation, test and predict are :class:`~deepinv_lab.training.module.ReconModule`'s
    unchanged (per-volume SSIM/PSNR/NMSE, the baselines as ``val/<name>_*``, the image grids);
    ``val/loss`` is the pixel loss. Training uses manual optimisation with two optimizers
    (``G``'s first), in two phases (see the module docstring for the losses):

    * epochs ``0 .. pretrain_epochs - 1`` (phase 1): ``G`` steps on ``l_pix`` alone (weight 1);
      ``D`` is not called and its weights and batch-norm statistics do not change.
    * from epoch ``pretrain_epochs`` on (phase 2): per batch, one ``D`` step on ``l_D`` with the
      generated images detached, then one ``G`` step on ``l_G``. ``D`` is evaluated after its
      own update in the ``G`` step (the usual alternating scheme).

    Gradients are cleared before each backward pass and after each step, and the other network's
    parameters are switched off with ``toggle_optimizer``, so neither step can apply gradients of
    the other.

    Args:
        recon: the generator, e.g. ``SuperResolution(SRGANGenerator(...))``; its output is
            center-cropped to the target size as in ReconModule.
        discriminator: ``D``, mapping high-resolution images ``(B, C, H, W)`` to logits ``(B, 1)``
            or ``(B,)`` (any shape: the BCE averages all logits, so patch discriminators work),
            e.g. ``SRGANDiscriminator(input_size=H)``.
        pixel_loss: ``"l1"``, ``"mse"``, ``"ssim"`` or an ``nn.Module`` called as
            ``loss(pred, target, max_value)`` (:func:`~deepinv_lab.training.losses.make_loss`).
        perceptual_loss: ``l_perc``, called as ``perceptual_loss(pred, target)`` -> scalar (e.g.
            :class:`~deepinv_lab.training.perceptual.VGGPerceptualLoss`); ``None`` for none.
        adversarial_weight: ``w_adv`` (SRGAN: ``1e-3``).
        perceptual_weight: ``w_perc``. ``VGGPerceptualLoss`` already rescales the VGG features by
            SRGAN's 1/12.75, so SRGAN's ``l_VGG + 1e-3 l_adv`` is ``perceptual_weight=1``; the
            ``0.006`` of some implementations is the same ``1/12.75^2`` for unscaled features.
        pixel_weight: ``w_pix`` in phase 2 (phase 1 always uses weight 1). SRGAN-VGG54 has no
            pixel term in phase 2 (``0``); EDSRGAN keeps it.
        pretrain_epochs: number of phase-1 epochs; ``0`` starts adversarial training at once
            (typically with ``generator_checkpoint``).
        optimizer: ``G``'s optimizer factory, called with its trainable parameters.
        discriminator_optimizer: ``D``'s optimizer factory.
        lr_scheduler: as in ReconModule (a factory or ``[factor, every_n_epochs]``), applied to
            each optimizer separately and stepped at the end of every epoch in which that
            optimizer trained: ``G``'s every epoch, ``D``'s only in phase 2 (its schedule starts
            with adversarial training).
        baseline: as in ReconModule: the untrained reference Recon (``Interpolation()`` for
            bicubic) logged as ``val/baseline_*``, or a mapping name -> Recon, each logged as
            ``val/<name>_*``.
        generator_checkpoint: path of a checkpoint (a ReconModule or GANModule ``.ckpt`` whose
            ``state_dict`` holds ``recon.*``, or a plain state dict of the Recon) whose weights
            initialise ``G``, e.g. the phase-1 run; the error names the file and the keys or
            shapes that do not fit. (Resuming with ``ckpt_path`` then overrides these weights.)
        gradient_clip_val: clip each network's gradients before its step (the manual-optimisation
            replacement of ``Trainer(gradient_clip_val=...)``, which Lightning rejects for manual
            optimisation); ``None`` for no clipping.
        gradient_clip_algorithm: ``"norm"`` (total 2-norm of each network's gradients) or
            ``"value"``.

    Logged per training step: ``train/phase``, ``train/pixel``, ``train/g_loss`` (``l_G``; in
    phase 1 the pixel loss), and in phase 2 ``train/perceptual`` (when given),
    ``train/adversarial`` (``BCE(D(G(y)), 1)``, unweighted), ``train/d_loss`` (``l_D``),
    ``train/d_real`` and ``train/d_fake`` (mean ``sigmoid(D)`` on real and generated images in the
    ``D`` step). ``g_loss`` and ``d_loss`` are on the progress bar.

    Notes: Lightning counts every optimizer step in ``trainer.global_step``, so a phase-2 batch
    advances it by 2 (``max_steps`` and ``every_n_train_steps`` checkpoints count optimizer
    steps; the logs' step axis counts batches). ``Trainer(accumulate_grad_batches)`` is not
    supported in manual optimisation. Both optimizers' and schedulers' states are saved in
    checkpoints and restored on resume.

    Shapes: as ReconModule: ``y`` ``(B, C, h, w)``, ``target`` ``(B, C, H, W)``, ``max_value``
    ``(B,)``.
    """

    def __init__(
        self,
        recon: Recon,
        discriminator: nn.Module,
        pixel_loss: str | nn.Module = "l1",
        perceptual_loss: nn.Module | None = None,
        adversarial_weight: float = 1e-3,
        perceptual_weight: float = 1.0,
        pixel_weight: float = 1.0,
        pretrain_epochs: int = 0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | StepShorthand | None = None,
        baseline: Recon | dict[str, Recon] | None = None,
        generator_checkpoint: str | None = None,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: Literal["norm", "value"] = "norm",
    ):
        for name, value in (
            ("adversarial_weight", adversarial_weight),
            ("perceptual_weight", perceptual_weight),
            ("pixel_weight", pixel_weight),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"GANModule: {name} must be a number >= 0, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"GANModule: {name} must be finite and >= 0, got {value!r}")
        if isinstance(pretrain_epochs, bool) or not isinstance(pretrain_epochs, int):
            raise UserError(
                f"GANModule: pretrain_epochs must be an integer >= 0, got {pretrain_epochs!r}"
            )
        if pretrain_epochs < 0:
            raise UserError(f"GANModule: pretrain_epochs must be >= 0, got {pretrain_epochs}")
        if gradient_clip_val is not None and not (
            isinstance(gradient_clip_val, (int, float)) and gradient_clip_val > 0
        ):
            raise UserError(
                f"GANModule: gradient_clip_val must be > 0 or null, got {gradient_clip_val!r}"
            )
        if gradient_clip_algorithm not in ("norm", "value"):
            raise UserError(
                "GANModule: gradient_clip_algorithm must be 'norm' or 'value', got "
                f"{gradient_clip_algorithm!r}"
            )
        if not isinstance(discriminator, nn.Module):
            raise UserError(
                f"GANModule: discriminator must be an nn.Module, got {type(discriminator).__name__}"
            )
        if perceptual_loss is not None and not callable(perceptual_loss):
            raise UserError("GANModule: perceptual_loss must be callable as loss(pred, target)")
        # ReconModule.__init__ is called explicitly, not through super(): Lightning's
        # save_hyperparameters walks up the __init__ frames that define __class__ (those calling
        # super()), so this frame's modules (discriminator, perceptual_loss) are not collected,
        # copied and warned about; the plain hyperparameters are saved below.
        ReconModule.__init__(
            self,
            recon=recon,
            loss=pixel_loss,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            baseline=baseline,
        )
        if not built_from_config():  # from a config, ReconModule saved the whole config
            self.save_hyperparameters(
                {
                    "pixel_loss": pixel_loss if isinstance(pixel_loss, str) else None,
                    "adversarial_weight": adversarial_weight,
                    "perceptual_weight": perceptual_weight,
                    "pixel_weight": pixel_weight,
                    "pretrain_epochs": pretrain_epochs,
                    "generator_checkpoint": generator_checkpoint,
                    "gradient_clip_val": gradient_clip_val,
                    "gradient_clip_algorithm": gradient_clip_algorithm,
                },
                logger=False,
            )
        self.automatic_optimization = False
        self.discriminator = discriminator
        self.perceptual_loss = perceptual_loss
        self.adversarial_weight = float(adversarial_weight)
        self.perceptual_weight = float(perceptual_weight)
        self.pixel_weight = float(pixel_weight)
        self.pretrain_epochs = pretrain_epochs
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        if generator_checkpoint is not None:
            load_recon_weights(self.recon, generator_checkpoint, "GANModule generator_checkpoint")

    @property
    def phase(self) -> int:
        """1 (generator pre-training) before epoch ``pretrain_epochs``, 2 (adversarial) after."""
        return 1 if self.current_epoch < self.pretrain_epochs else 2

    def _optimizer_step(self, optimizer, loss: torch.Tensor) -> None:
        """Backward ``loss`` into ``optimizer``'s parameters only, clip, step, clear."""
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val is not None:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.gradient_clip_val,
                gradient_clip_algorithm=self.gradient_clip_algorithm,
            )
        optimizer.step()
        optimizer.zero_grad()  # no gradient outlives its step (nor leaks into the other's)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        require_target(batch, "training")
        opt_g, opt_d = self.optimizers()
        target, max_value = batch["target"], batch["max_value"]
        batch_size = target.shape[0]
        self._train_batch_size = batch_size
        phase = self.phase
        self.log("train/phase", float(phase), batch_size=batch_size)

        if phase == 1:
            self.toggle_optimizer(opt_g)
            output = self.reconstruct(batch)
            pixel = self.loss_fn(output, target, max_value)
            self._optimizer_step(opt_g, pixel)
            self.untoggle_optimizer(opt_g)
            self.log("train/pixel", pixel.detach(), batch_size=batch_size)
            self.log("train/g_loss", pixel.detach(), prog_bar=True, batch_size=batch_size)
            return None

        output = self.reconstruct(batch)  # G(y), kept with its graph for the G step

        # (a) discriminator: l_D = BCE(D(x), 1) + BCE(D(sg[G(y)]), 0)
        self.toggle_optimizer(opt_d)
        d_real = self.discriminator(target)
        d_fake = self.discriminator(output.detach())
        d_loss = _adversarial_bce(d_real, real=True) + _adversarial_bce(d_fake, real=False)
        self._optimizer_step(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)

        # (b) generator: l_G = w_pix l_pix + w_perc l_perc + w_adv BCE(D(G(y)), 1)
        self.toggle_optimizer(opt_g)
        pixel = self.loss_fn(output, target, max_value)
        adversarial = _adversarial_bce(self.discriminator(output), real=True)
        g_loss = self.pixel_weight * pixel + self.adversarial_weight * adversarial
        if self.perceptual_loss is not None:
            perceptual = self.perceptual_loss(output, target)
            g_loss = g_loss + self.perceptual_weight * perceptual
            self.log("train/perceptual", perceptual.detach(), batch_size=batch_size)
        self._optimizer_step(opt_g, g_loss)
        self.untoggle_optimizer(opt_g)

        self.log("train/pixel", pixel.detach(), batch_size=batch_size)
        self.log("train/adversarial", adversarial.detach(), batch_size=batch_size)
        self.log("train/g_loss", g_loss.detach(), prog_bar=True, batch_size=batch_size)
        self.log("train/d_loss", d_loss.detach(), prog_bar=True, batch_size=batch_size)
        self.log("train/d_real", torch.sigmoid(d_real.detach()).mean(), batch_size=batch_size)
        self.log("train/d_fake", torch.sigmoid(d_fake.detach()).mean(), batch_size=batch_size)
        return None

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        scheduler_g, scheduler_d = schedulers
        scheduler_g.step()
        if self.phase == 2:  # D trained this epoch
            scheduler_d.step()

    def configure_optimizers(self):
        groups = {}
        for name, network in (("recon", self.recon), ("discriminator", self.discriminator)):
            groups[name] = [p for p in network.parameters() if p.requires_grad]
            if not groups[name]:
                raise UserError(f"GANModule: the {name} has no trainable parameters")
        opt_g = self.optimizer_factory(groups["recon"])
        opt_d = self.discriminator_optimizer_factory(groups["discriminator"])
        if self.scheduler_factory is None:
            return [opt_g, opt_d]
        schedulers = [
            {"scheduler": self.scheduler_factory(optimizer), "name": f"lr-{name}"}
            for name, optimizer in (("generator", opt_g), ("discriminator", opt_d))
        ]
        return [opt_g, opt_d], schedulers
