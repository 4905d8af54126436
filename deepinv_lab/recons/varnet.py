"""E2E-VarNet: learned sensitivity maps and unrolled k-space cascades.

A. Sriram et al., "End-to-end variational networks for accelerated MRI reconstruction",
MICCAI 2020. Module names follow ``fastmri.models.VarNet`` (``sens_net``, ``cascades``), so a
fastMRI checkpoint loads with ``load_state_dict(..., strict=True)`` and gives the same images.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.models import NormUnet, SensitivityModel
from deepinv_lab.optim import VarNetCascade
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System
from deepinv_lab.systems.mri import FFT2, CoilSensitivity, MaskedComposition


class VarNet(Recon):
    """End-to-end variational network for multicoil Cartesian MRI.

    1. ``S = sens_net(y, mask, num_low_frequencies)``: coil maps from the ACS columns
       (:class:`SensitivityModel`); the ACS width is the System's ``num_low_frequencies`` (the
       datasets give the acquisition's), derived from the mask as fastMRI does when it has none.
    2. ``k_0 = y``; ``k_{t+1} = cascade_t(k_t)`` with
       ``k - dc_weight M (k - y) - F S U_t((F S)^H k)`` (:class:`VarNetCascade`, ``U_t`` a
       :class:`NormUnet`).
    3. ``x_hat = RSS_coils(|F^H k_T|)``.

    Args:
        num_cascades: number of cascades ``T``.
        sens_chans: channels of the sensitivity NormUnet's first stage.
        sens_num_pool_layers: down-/up-sampling stages of the sensitivity NormUnet (fastMRI's
            ``sens_pools``).
        chans: channels of each cascade's NormUnet first stage.
        num_pool_layers: down-/up-sampling stages of each cascade's NormUnet (fastMRI's
            ``pools``).
        mask_center: estimate the maps from the ACS columns only.
        checkpoint_cascades: recompute each cascade's activations in the backward pass
            (``torch.utils.checkpoint``) to save memory; outputs and gradients are unchanged.

    The defaults are fastMRI's (29,936,966 parameters).
    Shapes: ``y`` ``(B, coils, H, W)`` complex masked k-space -> ``(B, 1, H, W)`` real magnitude.
    """

    def __init__(
        self,
        num_cascades: int = 12,
        sens_chans: int = 8,
        sens_num_pool_layers: int = 4,
        chans: int = 18,
        num_pool_layers: int = 4,
        mask_center: bool = True,
        checkpoint_cascades: bool = False,
    ):
        super().__init__()
        self.sens_net = SensitivityModel(
            chans=sens_chans, num_pool_layers=sens_num_pool_layers, mask_center=mask_center
        )
        self.cascades = nn.ModuleList(
            [VarNetCascade(NormUnet(chans, num_pool_layers)) for _ in range(num_cascades)]
        )
        self.checkpoint_cascades = checkpoint_cascades

    def kspace(self, y: torch.Tensor, system: System) -> torch.Tensor:
        """The final cascade's k-space ``k_T`` ``(B, coils, H, W)`` complex: every location,
        sampled or not (``forward`` is ``RSS_coils(|F^H k_T|)``). Arguments as :meth:`forward`.
        """
        mask = _sampling_mask(y, system)
        coil_maps = self.sens_net(y, mask, getattr(system, "num_low_frequencies", None))
        coils = FFT2() @ CoilSensitivity(coil_maps)
        kspace = y
        for cascade in self.cascades:
            if self.checkpoint_cascades and torch.is_grad_enabled():
                kspace = checkpoint(
                    cascade, kspace, y, mask, coils, coils.adjoint, use_reentrant=False
                )
            else:
                kspace = cascade(kspace, y, mask, coils, coils.adjoint)
        return kspace

    def check_system(self, system: System, y: torch.Tensor) -> None:
        if not isinstance(system, MaskedComposition) or not y.is_complex() or y.ndim != 4:
            raise UserError(
                f"VarNet needs Cartesian multicoil k-space (B, coils, H, W) with a sampling "
                f"mask (MultiCoilMRI, MultiCoilFourier, SingleCoilMRI), and the data's System "
                f"is {type(system).__name__} with measurements of shape {tuple(y.shape)}; use "
                "a model-based Recon (MoDL, DEQ, UnrolledProximalGradient) for other Systems"
            )

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:
        """Reconstruct ``(B, 1, H, W)`` magnitude images.

        Args:
            y: masked k-space ``(B, coils, H, W)`` complex.
            system: the System that produced ``y``; its ``.mask`` (real, broadcastable against
                ``y``, e.g. ``(B, 1, 1, W)``) and, when it has one, its
                ``.num_low_frequencies`` (the ACS width, ``(B,)``) are used, as a
                :class:`~deepinv_lab.systems.mri.MultiCoilFourier`,
                :class:`~deepinv_lab.systems.mri.MultiCoilMRI` or
                :class:`~deepinv_lab.systems.mri.KSpaceMask` carries them. Without an ACS width
                it is derived from the mask (:func:`~deepinv_lab.models.sensitivity.acs_window`).
                Coil maps, if the System has any, are not used: VarNet estimates its own.
        """
        return rss(ifft2c(self.kspace(y, system)), dim=1, keepdim=True)

    def measurement_estimate(
        self, y: torch.Tensor, system: System, observe: System | None = None
    ) -> torch.Tensor:
        """``M' k_T``: the final :meth:`kspace` of ``(y, system)`` under the sampling mask
        ``M'`` of ``observe`` (default ``system``), i.e. the masked multicoil k-space that VarNet
        predicts; see :meth:`Recon.measurement_estimate`. VarNet has no complex image to apply a
        System to, so only ``observe.mask`` is used (its coil maps, if any, are not).
        """
        kspace = self.kspace(y, system)
        return kspace * _sampling_mask(kspace, system if observe is None else observe)


def _sampling_mask(y: torch.Tensor, system: System) -> torch.Tensor:
    """The System's mask, checked against the k-space ``y``."""
    if not y.is_complex() or y.ndim != 4:
        raise ValueError(
            "VarNet expects complex masked k-space y of shape (B, coils, H, W), got dtype "
            f"{y.dtype} with shape {tuple(y.shape)}"
        )
    mask = getattr(system, "mask", None)
    if not isinstance(mask, torch.Tensor):
        raise ValueError(
            f"VarNet needs a System with a tensor .mask (e.g. MultiCoilMRI, KSpaceMask), "
            f"got {type(system).__name__}"
        )
    try:
        fits = mask.ndim == 4 and torch.broadcast_shapes(mask.shape, y.shape) == y.shape
    except RuntimeError:
        fits = False
    if not fits or mask.is_complex():
        raise ValueError(
            f"VarNet: mask of shape {tuple(mask.shape)} (dtype {mask.dtype}) does not fit "
            f"k-space y of shape {tuple(y.shape)}; expected a real mask broadcastable against "
            "it, e.g. (B, 1, 1, W)"
        )
    return mask
