"""Image-domain masking (inpainting): ``A x = mask * x`` with a real 0/1 mask per sample.

:func:`random_pixel_mask` and :func:`box_mask` build the usual masks; pass them to
:class:`Inpainting`.
"""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem, real_dtype


class Inpainting(LinearSystem):
    """``A x = mask * x``: keeps the observed pixels, zeroes the missing ones.

    Self-adjoint (``A^H = A``) and, for a 0/1 mask, idempotent (``A^H A = A``). Real and complex
    images alike; the mask stays real.

    Args:
        mask: real 0/1 tensor ``(B, 1, H, W)`` (the same mask for every channel) or
            ``(B, C, H, W)``; ``B = 1`` shares one mask across the batch. Bool masks are accepted.

    Shapes: ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """

    accepts_real = True

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        if mask.ndim != 4 or mask.is_complex():
            raise UserError(
                "Inpainting expects a real mask of shape (B, 1 or C, H, W), got dtype "
                f"{mask.dtype} with shape {tuple(mask.shape)}"
            )
        if mask.dtype == torch.bool or not mask.is_floating_point():
            mask = mask.to(torch.float32)
        if not ((mask == 0) | (mask == 1)).all():
            raise UserError("Inpainting: mask must be a 0/1 mask, got values other than 0 and 1")
        self.register_buffer("mask", mask)

    def with_mask(self, mask: torch.Tensor) -> Inpainting:
        """The same System observing another set of pixels (self-supervised splits)."""
        return type(self)(mask)

    def patch(self, region: tuple[slice, ...]) -> Inpainting:
        """Inpainting of the patch ``region`` (slices over ``(H, W)``): the mask cropped to it."""
        if len(region) != self.mask.ndim - 2:
            raise UserError(
                f"Inpainting.patch: expected one slice per spatial dim of the mask "
                f"{tuple(self.mask.shape)}, got {len(region)}"
            )
        return type(self)(self.mask[(..., *region)])

    def _mask_for(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.mask
        if (
            x.ndim != 4
            or x.shape[-2:] != mask.shape[-2:]
            or mask.shape[1] not in (1, x.shape[1])
            or mask.shape[0] not in (1, x.shape[0])
        ):
            raise ValueError(
                f"Inpainting: image of shape {tuple(x.shape)} does not fit the mask of shape "
                f"{tuple(mask.shape)}; expected (B, C, {mask.shape[-2]}, {mask.shape[-1]}) images "
                "whose batch and channels equal the mask's where the mask's are not 1"
            )
        # The mask takes the data's precision, so float64 data are not rounded and float32 data
        # are not promoted.
        return mask.to(real_dtype(x.dtype) if x.is_complex() else x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mask_for(x) * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.forward(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        mask = random_pixel_mask((batch_size, 1, 8, 7), keep_fraction=0.5)
        return cls(mask), torch.randn(batch_size, 3, 8, 7, dtype=dtype)


def random_pixel_mask(
    shape: tuple[int, ...],
    keep_fraction: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A 0/1 float32 mask keeping exactly ``round(keep_fraction * n)`` entries of each sample,
    chosen uniformly at random, where ``n`` is the number of entries per sample.

    Args:
        shape: ``(B, 1, H, W)`` (the same pixels in every channel) or ``(B, C, H, W)``.
        keep_fraction: fraction of entries kept (observed), in ``[0, 1]``.
        generator: a CPU ``torch.Generator`` for reproducible masks.
    """
    if not 0 <= keep_fraction <= 1:
        raise UserError(f"random_pixel_mask: keep_fraction must be in [0, 1], got {keep_fraction}")
    shape = tuple(shape)
    if len(shape) < 2:
        raise UserError(f"random_pixel_mask: expected a shape (B, ...), got {shape}")
    batch, per_sample = shape[0], 1
    for size in shape[1:]:
        per_sample *= size
    keep = round(keep_fraction * per_sample)
    # The ranks of i.i.d. uniforms are a uniform random permutation of each sample's entries.
    ranks = torch.rand(batch, per_sample, generator=generator).argsort(dim=1).argsort(dim=1)
    return (ranks < keep).to(torch.float32).reshape(shape)


def box_mask(
    shape: tuple[int, int, int, int],
    box_size: int | tuple[int, int],
    generator: torch.Generator | None = None,
    position: tuple[int, int] | None = None,
) -> torch.Tensor:
    """A 0/1 float32 mask that hides one ``box_size`` rectangle (zeros) per sample, ones elsewhere.

    Args:
        shape: ``(B, C, H, W)``; ``C = 1`` for one mask shared by all channels.
        box_size: ``(height, width)`` of the hidden box, or one int for a square.
        generator: a CPU ``torch.Generator`` for the random box positions.
        position: ``(top, left)`` corner of the box for every sample; ``None`` draws one corner per
            sample uniformly among those that keep the box inside the image.
    """
    shape = tuple(shape)
    if len(shape) != 4:
        raise UserError(f"box_mask: expected a shape (B, C, H, W), got {shape}")
    batch, _, height, width = shape
    box_h, box_w = (box_size, box_size) if isinstance(box_size, int) else tuple(box_size)
    if not (0 < box_h <= height and 0 < box_w <= width):
        raise UserError(
            f"box_mask: box of size {(box_h, box_w)} does not fit images of size "
            f"{(height, width)}; expected 0 < box size <= image size"
        )
    if position is None:
        tops = torch.randint(0, height - box_h + 1, (batch,), generator=generator)
        lefts = torch.randint(0, width - box_w + 1, (batch,), generator=generator)
    else:
        top, left = position
        if not (0 <= top <= height - box_h and 0 <= left <= width - box_w):
            raise UserError(
                f"box_mask: a box of size {(box_h, box_w)} at (top, left) = {(top, left)} leaves "
                f"images of size {(height, width)}; expected 0 <= top <= {height - box_h} and "
                f"0 <= left <= {width - box_w}"
            )
        tops, lefts = torch.full((batch,), top), torch.full((batch,), left)
    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    inside = (
        (rows >= tops.view(-1, 1, 1))
        & (rows < tops.view(-1, 1, 1) + box_h)
        & (cols >= lefts.view(-1, 1, 1))
        & (cols < lefts.view(-1, 1, 1) + box_w)
    )
    return (~inside).to(torch.float32).unsqueeze(1).expand(shape).contiguous()
