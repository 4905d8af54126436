"""Image-domain Recons: a network applied to an image estimate (the noisy image, the low-resolution
image, a zero-filled reconstruction), and the untrained baselines of those settings."""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional import upsample_bicubic
from deepinv_lab.models.wrappers import check_self_ensemble_mode, self_ensemble
from deepinv_lab.recons.base import Recon, require_image
from deepinv_lab.recons.zero_filled import ZeroFilled
from deepinv_lab.systems.base import System


class NoisyInput(Recon):
    """The denoising baseline: the measurement itself, ``x_hat = y``."""

    def forward(self, y: torch.Tensor, system: System | None = None) -> torch.Tensor:
        return y


class Denoiser(Recon):
    """``x_hat = D(y)``: a denoising network applied to the noisy image (the System, a noise
    block, is not used), e.g. a bias-free CNN, DnCNN or U-Net.

    Args:
        model: the network ``(B, C, H, W) -> (B, C, H, W)``.
        residual: ``x_hat = y + D(y)`` (the network predicts the negative noise). DnCNN and
            ``ResNetDenoiser`` are residual already; leave this off for them.
    """

    def __init__(self, model: nn.Module, residual: bool = False):
        super().__init__()
        self.model = model
        self.residual = residual

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_image(self, system, y)

    def forward(self, y: torch.Tensor, system: System | None = None) -> torch.Tensor:
        out = self.model(y)
        return y + out if self.residual else out


def _check_scale(scale: int | None, owner: str) -> None:
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
        raise UserError(f"{owner}: scale must be an integer >= 1 or null, got {scale!r}")


def _scale_of(system: System | None, scale: int | None, owner: str) -> int:
    """The upsampling factor: ``scale`` if given, else the System's ``factor``."""
    if scale is not None:
        return scale
    factor = getattr(system, "factor", None)
    if not isinstance(factor, int):
        raise UserError(
            f"{owner}: give scale=..., or a System with an integer .factor (Downsampling); "
            f"got {type(system).__name__}"
        )
    return factor


class Interpolation(Recon):
    """The super-resolution baseline: bicubic upsampling of the low-resolution image
    (:func:`~deepinv_lab.functional.upsample_bicubic`, MATLAB ``imresize`` conventions), and
    tricubic upsampling of low-resolution volumes ``(B, C, d, h, w)``.

    Args:
        scale: the factor; ``None`` takes the System's ``factor`` (a
            :class:`~deepinv_lab.systems.downsampling.Downsampling`).
    """

    def __init__(self, scale: int | None = None):
        super().__init__()
        _check_scale(scale, type(self).__name__)
        self.scale = scale

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_image(self, system, y)
        _scale_of(system, self.scale, type(self).__name__)

    def forward(self, y: torch.Tensor, system: System | None = None) -> torch.Tensor:
        scale = _scale_of(system, self.scale, type(self).__name__)
        return upsample_bicubic(y, scale, spatial_dims=y.ndim - 2)


class SuperResolution(Recon):
    """``x_hat = G(y)`` for a network ``G`` that upsamples (SRGAN generator, RCAN, EDSR), or
    ``x_hat = G(bicubic(y))`` (plus the bicubic image with ``residual``) for a same-size network
    (U-Net, DnCNN), as in SRCNN/VDSR.

    Args:
        model: the network.
        upsample_input: upsample ``y`` bicubically before the network.
        residual: add the bicubic image to the network output (needs ``upsample_input`` or a
            network whose output has the high-resolution size).
        scale: the factor; ``None`` takes the System's ``factor``.
        self_ensemble: ``"x8"`` (or ``"x2"``) averages, outside training (validation, test,
            predict), the reconstructions of the 8 flips/rotations of ``y``, each transformed
            back (EDSR/RCAN's geometric self-ensemble, 8x the cost); ``None`` for none. For test
            time only: ``deepinv-lab test ... --model.init_args.recon.init_args.self_ensemble x8``.
    """

    def __init__(
        self,
        model: nn.Module,
        upsample_input: bool = False,
        residual: bool = False,
        scale: int | None = None,
        self_ensemble: str | None = None,
    ):
        super().__init__()
        _check_scale(scale, type(self).__name__)
        if self_ensemble is not None:
            check_self_ensemble_mode(self_ensemble, type(self).__name__, "self_ensemble")
        self.model = model
        self.upsample_input = upsample_input
        self.residual = residual
        self.scale = scale
        self.self_ensemble = self_ensemble

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_image(self, system, y)
        if self.upsample_input or self.residual:
            _scale_of(system, self.scale, type(self).__name__)

    def forward(self, y: torch.Tensor, system: System | None = None) -> torch.Tensor:
        if self.self_ensemble is not None and not self.training:
            return self_ensemble(
                self._reconstruct, y, system, mode=self.self_ensemble, spatial_dims=y.ndim - 2
            )
        return self._reconstruct(y, system)

    def _reconstruct(self, y: torch.Tensor, system: System | None) -> torch.Tensor:
        if not (self.upsample_input or self.residual):
            return self.model(y)
        scale = _scale_of(system, self.scale, type(self).__name__)
        upsampled = upsample_bicubic(y, scale, spatial_dims=y.ndim - 2)
        out = self.model(upsampled if self.upsample_input else y)
        if out.shape != upsampled.shape:
            raise UserError(
                f"SuperResolution: the model's output {tuple(out.shape)} does not have the "
                f"high-resolution shape {tuple(upsampled.shape)} (upsample_input="
                f"{self.upsample_input}, residual={self.residual}); with upsample_input the "
                "model must keep its input's size, with residual alone it must upsample by scale"
            )
        return out + upsampled if self.residual else out


class PostProcessing(Recon):
    """``x_hat = D(x_0)``: a network applied to a classical reconstruction ``x_0``, by default the
    zero-filled image -- the compressive-sensing MRI setting of Klug & Heckel's scaling laws
    (a U-Net on the RSS of the zero-filled coil images).

    Args:
        model: the network on ``x_0``'s channels.
        initial: the Recon giving ``x_0`` (default :class:`ZeroFilled`, RSS combination).
        normalize: standardise each sample's ``x_0`` (mean, std over the image) before the
            network and undo it after, as fastMRI's U-Net data transform does.
        residual: ``x_hat = x_0 + D(x_0)``.
    """

    def __init__(
        self,
        model: nn.Module,
        initial: Recon | None = None,
        normalize: bool = True,
        residual: bool = False,
    ):
        super().__init__()
        self.model = model
        self.initial = initial if initial is not None else ZeroFilled()
        self.normalize = normalize
        self.residual = residual

    def check_system(self, system: System, y: torch.Tensor) -> None:
        self.initial.check_system(system, y)

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:
        x0 = self.initial(y, system)
        if self.normalize:
            # fastMRI's normalize_instance: (x - mean) / (std + eps), per sample
            mean = x0.mean(dim=(1, 2, 3), keepdim=True)
            std = x0.std(dim=(1, 2, 3), keepdim=True) + 1e-11
            out = self.model((x0 - mean) / std) * std + mean
        else:
            out = self.model(x0)
        return x0 + out if self.residual else out
