"""Overlapping-patch inference: apply a function to patches of a 2D image or 3D volume and blend
the outputs into one image.

The spatial dims of ``x`` ``(B, C, *spatial)`` (2 or 3 of them) are tiled by patches of
``patch_size`` whose neighbours overlap by at least ``overlap`` pixels; the last patch of each
dim ends flush with the border, so no patch reaches beyond the image (nothing is padded). Each
patch's output (``patch_size * scale`` pixels per dim: ``scale > 1`` for super-resolution) is
weighted and added to the output, which is finally divided by the summed weights:

* ``"gaussian"`` -- the weight of nnU-Net and MONAI's sliding-window inference, a Gaussian
  centred on the patch with standard deviation ``patch / 8`` (output pixels) in each dim;
* ``"linear"`` -- 1 inside the patch, ramping down linearly over the overlap towards each patch
  edge that lies inside the image (not at the image border).

``margin`` (in input pixels) drops ``margin * scale`` output pixels at every patch edge inside
the image before blending. A network whose output at a pixel depends only on the input within
``margin`` pixels of it (a convolutional network of receptive radius ``<= margin``) then gives
exactly its whole-image output, whatever the blending: every output pixel kept is the whole-image
value, and the weights are normalised. This needs ``overlap >= 2 * margin``.

:func:`sliding_window` batches the patches of several positions into one call;
:func:`sliding_window_regions` calls the function once per position with the region, for
functions that need to know where the patch lies (a Recon and its System restricted to it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

from deepinv_lab.errors import UserError

#: The blending weights :func:`sliding_window` knows.
BLENDINGS = ("gaussian", "linear")

Region = tuple[slice, ...]


def _per_dim(value: int | Sequence[int], ndim: int, name: str, owner: str) -> tuple[int, ...]:
    values = (value,) * ndim if isinstance(value, int) else tuple(value)
    if len(values) != ndim or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise UserError(
            f"{owner}: {name} must be an int or {ndim} ints (one per spatial dim), got {value!r}"
        )
    return values


def check_patching(
    shape: Sequence[int],
    patch_size: int | Sequence[int],
    overlap: int | Sequence[int],
    margin: int | Sequence[int] = 0,
    blending: str = "gaussian",
    owner: str = "sliding_window",
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(patch_size, overlap, margin)`` as one int per spatial dim of ``shape``, after checking
    them against each other and against the input's spatial ``shape`` (a
    :class:`~deepinv_lab.errors.UserError` naming ``owner`` otherwise)."""
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise UserError(
            f"{owner}: expected 2 or 3 spatial dims (B, C, H, W) or (B, C, D, H, W), got "
            f"spatial shape {shape}"
        )
    patch = _per_dim(patch_size, ndim, "patch_size", owner)
    over = _per_dim(overlap, ndim, "overlap", owner)
    edge = _per_dim(margin, ndim, "margin", owner)
    if blending not in BLENDINGS:
        raise UserError(f"{owner}: blending must be one of {BLENDINGS}, got {blending!r}")
    if any(p < 1 for p in patch):
        raise UserError(f"{owner}: patch_size must be >= 1, got {patch}")
    if any(p > n for p, n in zip(patch, shape, strict=True)):
        raise UserError(f"{owner}: patch_size {patch} is larger than the input {shape}")
    if any(o < 0 or o >= p for o, p in zip(over, patch, strict=True)):
        raise UserError(f"{owner}: overlap {over} must be >= 0 and smaller than patch_size {patch}")
    if any(m < 0 or 2 * m > o for m, o in zip(edge, over, strict=True)):
        raise UserError(
            f"{owner}: margin {edge} must be >= 0 and at most half the overlap {over} (the "
            "pixels dropped at the edges of two neighbouring patches must leave them joined)"
        )
    return patch, over, edge


def patch_starts(size: int, patch: int, overlap: int) -> list[int]:
    """Where the patches of one dim start: every ``patch - overlap`` pixels, the last one flush
    with the border (so it may overlap its neighbour by more)."""
    starts = list(range(0, size - patch + 1, patch - overlap))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def patch_regions(
    shape: Sequence[int], patch_size: Sequence[int], overlap: Sequence[int]
) -> list[Region]:
    """The patches tiling spatial ``shape``, as tuples of slices (one per dim), in raster order.
    ``patch_size`` and ``overlap`` give one int per dim (see :func:`check_patching`)."""
    per_dim = [patch_starts(n, p, o) for n, p, o in zip(shape, patch_size, overlap, strict=True)]
    regions = [()]
    for starts, patch in zip(per_dim, patch_size, strict=True):
        regions = [r + (slice(s, s + patch),) for r in regions for s in starts]
    return regions


def _weights_1d(
    length: int, keep: slice, inner: tuple[bool, bool], ramp: int, blending: str
) -> torch.Tensor:
    """Weights of the kept output pixels ``keep`` of one dim of a patch of ``length`` output
    pixels; ``inner`` says whether its low/high edge lies inside the image."""
    if blending == "gaussian":
        centre, sigma = (length - 1) / 2, length / 8
        position = torch.arange(length, dtype=torch.float64)
        return torch.exp(-((position - centre) ** 2) / (2 * sigma**2))[keep]
    kept = keep.stop - keep.start
    weight = torch.ones(kept, dtype=torch.float64)
    rising = torch.arange(1, kept + 1, dtype=torch.float64) / (ramp + 1)
    if inner[0]:
        weight = torch.minimum(weight, rising)
    if inner[1]:
        weight = torch.minimum(weight, rising.flip(0))
    return weight


def sliding_window_regions(
    fn: Callable[[torch.Tensor, Region], torch.Tensor],
    x: torch.Tensor,
    patch_size: int | Sequence[int],
    overlap: int | Sequence[int],
    blending: str = "gaussian",
    scale: int = 1,
    margin: int | Sequence[int] = 0,
) -> torch.Tensor:
    """Blend ``fn(x[..., region], region)`` over the overlapping patches of ``x``, one call per
    patch position (all samples of the batch at once).

    ``fn`` maps a patch ``(B, C, *p)`` and its region (slices over the spatial dims of ``x``)
    to ``(B, C_out, *(p * scale))``. Arguments as :func:`sliding_window`.
    """

    def calls(regions: list[Region]) -> Iterator[tuple[Region, torch.Tensor]]:
        for region in regions:
            yield region, fn(x[(..., *region)], region)

    return _blend(calls, x, patch_size, overlap, blending, scale, margin, "sliding_window")


def sliding_window(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    patch_size: int | Sequence[int],
    overlap: int | Sequence[int],
    blending: str = "gaussian",
    scale: int = 1,
    margin: int | Sequence[int] = 0,
    batch_size: int = 1,
) -> torch.Tensor:
    """``fn`` applied to ``x`` by overlapping patches, the outputs blended into one image.

    Args:
        fn: maps a batch of patches ``(n, C, *p)`` to ``(n, C_out, *(p * scale))``, e.g. a
            network.
        x: ``(B, C, H, W)`` or ``(B, C, D, H, W)``.
        patch_size: the patch's size, one int for every dim or one per spatial dim; at most the
            input's size.
        overlap: the least overlap of neighbouring patches (input pixels), smaller than
            ``patch_size``.
        blending: ``"gaussian"`` (sigma = patch / 8) or ``"linear"`` (ramps over the overlap).
        scale: the output's size per input pixel (the super-resolution factor).
        margin: input pixels whose output is dropped at every patch edge inside the image;
            at most ``overlap / 2``. With ``margin`` >= the receptive radius of a convolutional
            ``fn``, the result is exactly ``fn(x)``.
        batch_size: patch positions per call of ``fn``: each call gets the patches of up to
            ``batch_size`` positions of all ``B`` samples, ``n = batch_size * B``.

    Returns:
        ``(B, C_out, *(spatial * scale))``, the dtype of ``fn``'s output.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"sliding_window: batch_size must be an integer >= 1, got {batch_size!r}")
    samples = x.shape[0]

    def calls(regions: list[Region]) -> Iterator[tuple[Region, torch.Tensor]]:
        for first in range(0, len(regions), batch_size):
            group = regions[first : first + batch_size]
            outputs = fn(torch.cat([x[(..., *region)] for region in group]))
            yield from zip(group, outputs.split(samples), strict=True)

    return _blend(calls, x, patch_size, overlap, blending, scale, margin, "sliding_window")


def _blend(
    calls: Callable[[list[Region]], Iterator[tuple[Region, torch.Tensor]]],
    x: torch.Tensor,
    patch_size: int | Sequence[int],
    overlap: int | Sequence[int],
    blending: str,
    scale: int,
    margin: int | Sequence[int],
    owner: str,
) -> torch.Tensor:
    """Weighted sum of the patch outputs that ``calls`` yields for the regions it is given,
    divided by the summed weights."""
    if x.ndim not in (4, 5):
        raise UserError(
            f"{owner}: expected an input (B, C, H, W) or (B, C, D, H, W), got shape "
            f"{tuple(x.shape)}"
        )
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise UserError(f"{owner}: scale must be an integer >= 1, got {scale!r}")
    shape = tuple(x.shape[2:])
    patch, over, edge = check_patching(shape, patch_size, overlap, margin, blending, owner)
    out_patch = tuple(p * scale for p in patch)
    output = weights = None
    cache: dict[tuple, torch.Tensor] = {}
    for region, result in calls(patch_regions(shape, patch, over)):
        if result.ndim != x.ndim or tuple(result.shape[2:]) != out_patch:
            raise UserError(
                f"{owner}: a patch {tuple(x.shape[:2]) + patch} gave an output of shape "
                f"{tuple(result.shape)}; expected (B, C_out, *{out_patch}) (patch_size x scale "
                f"{scale})"
            )
        if output is None:
            out_shape = (x.shape[0], result.shape[1], *(n * scale for n in shape))
            output = result.new_zeros(out_shape)
            weights = torch.zeros(out_shape[2:], dtype=result.real.dtype, device=result.device)
        keeps, targets, inner = [], [], []
        for s, n, p, m in zip(region, shape, out_patch, edge, strict=True):
            low, high = s.start > 0, s.stop < n
            drop = m * scale
            keep = slice(drop if low else 0, p - drop if high else p)
            keeps.append(keep)
            targets.append(slice(s.start * scale + keep.start, s.start * scale + keep.stop))
            inner.append((low, high))
        key = (tuple((k.start, k.stop) for k in keeps), tuple(inner))
        weight = cache.get(key)
        if weight is None:
            ramps = [max(1, (o - 2 * m) * scale) for o, m in zip(over, edge, strict=True)]
            factors = [
                _weights_1d(p, k, i, r, blending)
                for p, k, i, r in zip(out_patch, keeps, inner, ramps, strict=True)
            ]
            weight = math.prod(
                f.reshape([-1 if d == j else 1 for j in range(len(factors))])
                for d, f in enumerate(factors)
            )
            weight = weight.to(dtype=weights.dtype, device=weights.device)
            cache[key] = weight
        output[(..., *targets)] += weight * result[(..., *keeps)]
        weights[tuple(targets)] += weight
    return output / weights
