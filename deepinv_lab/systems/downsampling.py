"""Downsampling (the super-resolution forward model): anti-alias filter, then decimation.

``A x = D (h * x)`` where ``h`` is a separable low-pass filter applied with **circular** padding
and ``D`` keeps every ``factor``-th pixel in each direction. Images ``(B, C, H, W)`` and volumes
``(B, C, D, H, W)`` alike: the number of spatial dimensions is the input's ``ndim - 2`` (2 or
3), and the same 1-D filter runs along each spatial axis. Circular padding makes ``A`` an exact
linear map whose transpose is as cheap as ``A`` itself: ``A^H y = h^T * U y``, zero-upsampling
``U`` followed by the flipped filter, wrapped around the borders (DeepInverse's ``Downsampling``
makes the same choice). The price: pixels within ``2 * factor`` of a border (bicubic) see the
opposite border.

Output pixel ``i`` of a ``"box"`` or ``"bicubic"`` filter is centred on the input block
``[factor * i, factor * i + factor)``, i.e. at input coordinate ``u = factor * (i + 0.5) - 0.5``,
the alignment of MATLAB's ``imresize``, PIL and ``torch.nn.functional.interpolate(...,
align_corners=False)``. Filters (1-D taps, applied along each spatial axis in turn):

* ``"box"``: the block mean, ``y_i = mean(x[factor * i : factor * (i + 1)])``.
* ``"bicubic"``: Keys' cubic kernel with ``a = -0.5`` stretched by the factor, weights
  ``w(n) = cubic((n - u) / factor)`` normalised to sum 1 -- MATLAB's ``imresize(x, 1/factor,
  'bicubic')`` with antialiasing (and PIL's / torch's ``antialias=True`` bicubic). Away from the
  borders the output equals theirs; at the borders they truncate or mirror where we wrap.
* ``"none"``: plain decimation, ``y_i = x[factor * i]`` (no filter, aliasing kept).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from deepinv_lab.errors import UserError
from deepinv_lab.functional.complex import apply_to_real_parts
from deepinv_lab.functional.resize import keys_cubic
from deepinv_lab.systems.base import LinearSystem

FILTERS = ("bicubic", "box", "none")


def downsampling_taps(filter: str, factor: int) -> tuple[torch.Tensor, int]:
    """The 1-D anti-alias filter of :class:`Downsampling` as ``(taps, start)`` (float64 taps):
    ``y_i = sum_t taps[t] * x[(factor * i + start + t) mod N]``."""
    if filter == "none":
        return torch.ones(1, dtype=torch.float64), 0
    if filter == "box":
        return torch.full((factor,), 1.0 / factor, dtype=torch.float64), 0
    if filter == "bicubic":
        centre = (factor - 1) / 2  # input coordinate of output pixel 0
        first = math.floor(centre - 2 * factor) + 1
        offsets = torch.arange(first, math.ceil(centre + 2 * factor), dtype=torch.float64)
        taps = keys_cubic((offsets - centre) / factor)
        nonzero = torch.nonzero(taps).flatten()  # factor 1 gives zero end taps
        lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
        return taps[lo:hi] / taps[lo:hi].sum(), first + lo
    raise UserError(f"Downsampling: filter must be one of {FILTERS}, got {filter!r}")


class Downsampling(LinearSystem):
    """``A x = D (h * x)``: separable anti-alias filter ``h`` (circular padding), then keeping every
    ``factor``-th pixel. See the module docstring for the filters and their alignment.

    ``A^H`` is the exact transpose: zero-upsampling followed by the flipped filter
    (``conv_transpose``), with the circular wrap folded back.

    Args:
        factor: integer downsampling factor (>= 1); every spatial size must be a multiple of it.
        filter: ``"bicubic"`` (MATLAB ``imresize`` antialiasing kernel), ``"box"`` (block mean) or
            ``"none"`` (plain decimation).

    Shapes: ``(B, C, H, W)`` real or complex -> ``(B, C, H / factor, W / factor)``, and volumes
    ``(B, C, D, H, W)`` -> ``(B, C, D / factor, H / factor, W / factor)`` (separable: block
    means for ``box``, tricubic for ``bicubic``); the number of spatial dimensions is inferred
    from the input's ``ndim`` (4: image, 5: volume). Complex inputs are filtered part by part
    with the real filter.
    """

    accepts_real = True

    def __init__(self, factor: int, filter: Literal["bicubic", "box", "none"] = "bicubic"):
        super().__init__()
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise UserError(f"Downsampling: factor must be an integer >= 1, got {factor!r}")
        taps, start = downsampling_taps(filter, factor)
        self.factor = factor
        self.filter = filter
        self.start = start
        self.register_buffer("taps", taps)

    def _check_image(self, x: torch.Tensor) -> None:
        f = self.factor
        if x.ndim not in (4, 5) or any(size % f for size in x.shape[2:]):
            raise ValueError(
                f"Downsampling: expected images (B, C, H, W) or volumes (B, C, D, H, W) with "
                f"spatial sizes multiples of the factor {f}, got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_image(x)
        return apply_to_real_parts(self._filter_decimate, x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim not in (4, 5):
            raise ValueError(
                f"Downsampling: expected low-resolution images (B, C, h, w) or volumes "
                f"(B, C, d, h, w), got shape {tuple(y.shape)}"
            )
        return apply_to_real_parts(self._upsample_filter, y)

    def patch(self, region: tuple[slice, ...]) -> Downsampling:
        """The System acting on a patch of the image: this one (the filter is shift-invariant;
        the patch's own borders wrap circularly, so overlapping-patch inference should discard
        a margin of ``2 * factor`` pixels for ``"bicubic"``)."""
        return self

    def _filter_decimate(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.taps.to(device=x.device, dtype=x.dtype)
        for dim in range(2, x.ndim):
            x = _filter_decimate_1d(x, taps, self.start, self.factor, dim)
        return x

    def _upsample_filter(self, y: torch.Tensor) -> torch.Tensor:
        taps = self.taps.to(device=y.device, dtype=y.dtype)
        for dim in reversed(range(2, y.ndim)):
            y = _upsample_filter_1d(y, taps, self.start, self.factor, dim)
        return y

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        return cls(2, "bicubic"), torch.randn(batch_size, 2, 6, 8, dtype=dtype)

    @classmethod
    def example_3d(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        """A volume instance: ``(B, 2, 4, 6, 8)`` -> ``(B, 2, 2, 3, 4)``."""
        return cls(2, "bicubic"), torch.randn(batch_size, 2, 4, 6, 8, dtype=dtype)


def _filter_decimate_1d(
    x: torch.Tensor, taps: torch.Tensor, start: int, factor: int, dim: int
) -> torch.Tensor:
    """``y_i = sum_t taps[t] x[(factor * i + start + t) mod N]`` along ``dim``."""
    x = x.movedim(dim, -1)
    size, num_taps = x.shape[-1], taps.numel()
    out_size = size // factor
    # Circular padding by gathering: any number of wraps, even for taps longer than the image.
    index = torch.arange(start, start + factor * (out_size - 1) + num_taps, device=x.device) % size
    padded = x.index_select(-1, index)
    lead = padded.shape[:-1]
    out = F.conv1d(padded.reshape(-1, 1, padded.shape[-1]), taps.view(1, 1, -1), stride=factor)
    return out.reshape(*lead, out_size).movedim(-1, dim)


def _upsample_filter_1d(
    y: torch.Tensor, taps: torch.Tensor, start: int, factor: int, dim: int
) -> torch.Tensor:
    """The transpose of :func:`_filter_decimate_1d` along ``dim``."""
    y = y.movedim(dim, -1)
    out_size = y.shape[-1]
    size = out_size * factor
    lead = y.shape[:-1]
    spread = F.conv_transpose1d(y.reshape(-1, 1, out_size), taps.view(1, 1, -1), stride=factor)
    # Entry n of ``spread`` belongs to pixel (start + n) mod size: shift so that it sits at a
    # position congruent to its pixel, pad to whole periods and sum the periods.
    shift = start % size
    periods = -(-(shift + spread.shape[-1]) // size)
    spread = F.pad(spread, (shift, periods * size - shift - spread.shape[-1]))
    folded = spread.reshape(-1, periods, size).sum(dim=1)
    return folded.reshape(*lead, size).movedim(-1, dim)
