"""Learned coil-sensitivity estimation from the fully sampled k-space center (the ACS lines).

The estimator of E2E-VarNet (Sriram et al., "End-to-end variational networks for accelerated MRI
reconstruction", MICCAI 2020), with fastMRI's parameter names so its state dicts load unchanged.
"""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.models.base import Model
from deepinv_lab.models.unet import NormUnet


def acs_window(
    width: int,
    mask: torch.Tensor | None = None,
    num_low_frequencies: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean ``(N, 1, 1, width)`` window over the ``num_low_frequencies`` central k-space columns.

    The window starts at column ``(width - n + 1) // 2``, the convention of fastMRI's masks.
    ``num_low_frequencies`` is an int, a per-sample tensor ``(N,)`` or ``None``; ``None`` or 0
    (for a whole batch or per sample) means "derive it from ``mask``" as fastMRI 0.3.0's
    ``SensitivityModel.get_pad_and_num_low_freqs`` does: from the first row of the mask
    ``(B, 1, 1, width)``, count the contiguous sampled columns left of ``width // 2`` and from
    ``width // 2`` rightwards, and keep twice the smaller count (an odd ACS block loses one column),
    or one column if that is 0. A side with no unsampled column counts as 0, so a fully sampled
    mask keeps only the central column -- fastMRI's behaviour, kept for parity.
    """
    device = mask.device if mask is not None else None
    given = None
    if num_low_frequencies is not None:
        given = torch.as_tensor(num_low_frequencies, device=device).to(torch.long).reshape(-1)
        if (given < 0).any() or (given > width).any():
            raise ValueError(
                f"num_low_frequencies must lie in [0, {width}] (the k-space width), "
                f"got {num_low_frequencies}"
            )
    if given is None or (given == 0).any():
        if mask is None or mask.ndim != 4 or mask.shape[-1] != width:
            raise ValueError(
                "deriving num_low_frequencies needs a column mask of shape (B, 1, 1, "
                f"{width}), got {None if mask is None else tuple(mask.shape)}; "
                "pass num_low_frequencies instead"
            )
        columns = (mask[:, 0, 0, :] != 0).to(torch.int8)
        center = width // 2
        # argmin returns the first unsampled column (or 0 when there is none, as in fastMRI).
        left = torch.argmin(columns[:, :center].flip(1), dim=1)
        right = torch.argmin(columns[:, center:], dim=1)
        derived = (2 * torch.minimum(left, right)).clamp(min=1)
        num_low = derived if given is None else torch.where(given == 0, derived, given)
    else:
        num_low = given
    start = (width - num_low + 1) // 2
    columns_idx = torch.arange(width, device=num_low.device)
    window = (columns_idx >= start[:, None]) & (columns_idx < (start + num_low)[:, None])
    return window[:, None, None, :]


class SensitivityModel(Model):
    """Coil sensitivity maps estimated from the ACS region of masked multicoil k-space.

    ``S = U(F^H (W y)) / RSS_coils(U(F^H (W y)))``: the k-space ``y`` is restricted to its
    fully sampled central columns by the window ``W`` (:func:`acs_window`, when ``mask_center``),
    each coil image is refined by the same :class:`NormUnet` ``U``, and the maps are normalised
    to unit root-sum-of-squares over coils at every pixel.

    Args:
        chans: channels of the NormUnet's first stage.
        num_pool_layers: NormUnet down-/up-sampling stages (fastMRI's ``num_pools``).
        in_chans, out_chans: real channels of the NormUnet; each coil image is one complex channel,
            so both are 2 (kept for fastMRI's signature).
        drop_prob: dropout probability.
        mask_center: keep only the ACS columns before estimating the maps.

    Shapes: ``masked_kspace`` ``(B, coils, H, W)`` complex, ``mask`` real ``(B, 1, 1, W)``
    (or ``(1, 1, 1, W)``) -> maps ``(B, coils, H, W)`` complex.
    """

    def __init__(
        self,
        chans: int,
        num_pool_layers: int,
        in_chans: int = 2,
        out_chans: int = 2,
        drop_prob: float = 0.0,
        mask_center: bool = True,
    ):
        super().__init__()
        if in_chans != 2 or out_chans != 2:
            raise UserError(
                "SensitivityModel: each coil image is one complex channel, so in_chans and "
                f"out_chans must be 2, got in_chans={in_chans}, out_chans={out_chans}"
            )
        self.mask_center = mask_center
        self.norm_unet = NormUnet(
            chans, num_pool_layers, in_chans=in_chans, out_chans=out_chans, drop_prob=drop_prob
        )

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor | None = None,
        num_low_frequencies: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Maps ``(B, coils, H, W)`` complex from masked k-space ``(B, coils, H, W)`` complex.

        ``mask`` and ``num_low_frequencies`` locate the ACS columns (see :func:`acs_window`);
        with ``mask_center=False`` neither is needed.
        """
        self.check_2d(masked_kspace)
        if not masked_kspace.is_complex() or masked_kspace.ndim != 4:
            raise ValueError(
                "SensitivityModel expects complex k-space of shape (B, coils, H, W), got dtype "
                f"{masked_kspace.dtype} with shape {tuple(masked_kspace.shape)}"
            )
        batch, coils, height, width = masked_kspace.shape
        if self.mask_center:
            window = acs_window(width, mask, num_low_frequencies)
            if window.shape[0] not in (1, batch):
                raise ValueError(
                    f"SensitivityModel: {window.shape[0]} ACS windows (from mask of shape "
                    f"{None if mask is None else tuple(mask.shape)} and num_low_frequencies="
                    f"{num_low_frequencies}) for k-space of shape {tuple(masked_kspace.shape)}"
                )
            masked_kspace = torch.where(window.to(masked_kspace.device), masked_kspace, 0)
        coil_images = ifft2c(masked_kspace)
        # Every coil image goes through the same network as a separate batch item.
        maps = self.norm_unet(coil_images.reshape(batch * coils, 1, height, width))
        maps = maps.reshape(batch, coils, height, width)
        return maps / rss(maps, dim=1, keepdim=True)

    @classmethod
    def example(cls) -> tuple[SensitivityModel, torch.Tensor]:
        """A small estimator (no center masking, so no mask is needed) on 3-coil k-space."""
        model = cls(chans=4, num_pool_layers=2, mask_center=False)
        return model, torch.randn(2, 3, 16, 12, dtype=torch.complex64)
