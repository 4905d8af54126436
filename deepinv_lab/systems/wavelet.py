"""Orthogonal 2D discrete wavelet transform (Daubechies filters, periodic boundary).

One level filters each axis with the scaling filter ``h`` (length ``L``) and the wavelet filter
``g_k = (-1)^k h_{L-1-k}`` (the quadrature-mirror relation) and keeps every second sample, with the
signal wrapped around its ends:

    a_i = sum_k h_k x_{(2i + k + s) mod N},    d_i = sum_k g_k x_{(2i + k + s) mod N},
    s = 1 - L / 2.

The shift ``s`` is PyWavelets' ``mode="periodization"``: ``h`` is pywt's ``rec_lo``, ``g`` its
``rec_hi``, and ``(a, d)`` equal ``pywt.dwt(x, wavelet, mode="periodization")`` exactly (no sign
or ordering change). As the shifted ``h`` and ``g`` form an orthonormal basis of the signals of
even length ``N``, the transform is orthogonal: ``A^H = A^{-1}``.

Layout: after one level an ``(H, W)`` image becomes ``[[LL, LH], [HL, HH]]`` (first letter: the
filter along H, second: along W), each block ``(H / 2, W / 2)``; the next level transforms the
top-left ``LL`` block in place, and so on. In pywt's names, with ``coeffs = pywt.wavedec2(x,
wavelet, mode="periodization", level=levels)``, the output is ``pywt.coeffs_to_array(coeffs)[0]``:
``cA`` at the top-left corner, then for each level ``cV`` (``LH``) top-right, ``cH`` (``HL``)
bottom-left and ``cD`` (``HH``) bottom-right.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from deepinv_lab.errors import UserError
from deepinv_lab.functional.complex import apply_to_real_parts
from deepinv_lab.systems.base import LinearSystem

_SQRT2 = math.sqrt(2.0)
_SQRT3 = math.sqrt(3.0)

#: Daubechies scaling filters ``h`` (orthonormal: ``sum h = sqrt(2)``, ``sum h^2 = 1``), in the
#: order of pywt's ``rec_lo``. ``db2`` in closed form; ``db4`` from Daubechies' table, to 1e-17.
SCALING_FILTERS: dict[str, tuple[float, ...]] = {
    "haar": (1 / _SQRT2, 1 / _SQRT2),
    "db1": (1 / _SQRT2, 1 / _SQRT2),
    "db2": (
        (1 + _SQRT3) / (4 * _SQRT2),
        (3 + _SQRT3) / (4 * _SQRT2),
        (3 - _SQRT3) / (4 * _SQRT2),
        (1 - _SQRT3) / (4 * _SQRT2),
    ),
    "db4": (
        0.23037781330889650086,
        0.71484657055291564709,
        0.63088076792985890788,
        -0.02798376941685985429,
        -0.18703481171909308408,
        0.03084138183556076361,
        0.03288301166688519970,
        -0.01059740178506903212,
    ),
}


def wavelet_filters(wavelet: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 scaling and wavelet filters ``(h, g)`` of ``wavelet``, with
    ``g_k = (-1)^k h_{L-1-k}`` (pywt's ``rec_lo`` and ``rec_hi``)."""
    if wavelet not in SCALING_FILTERS:
        raise UserError(
            f"Wavelet2D: wavelet must be one of {sorted(SCALING_FILTERS)}, got {wavelet!r}"
        )
    h = torch.tensor(SCALING_FILTERS[wavelet], dtype=torch.float64)
    signs = torch.ones_like(h)
    signs[1::2] = -1.0
    return h, signs * h.flip(0)


class Wavelet2D(LinearSystem):
    """Multi-level orthogonal 2D DWT ``A`` with periodic boundary, over the last two dimensions.

    See the module docstring for the filters, the boundary and the coefficient layout (a pyramid
    with the approximation at the top-left corner, identical to pywt's ``coeffs_to_array`` of
    ``wavedec2(..., mode="periodization")``). ``A`` is square and orthogonal, so ``A^H = A^{-1}``
    and ``A^H A = I``.

    Args:
        wavelet: ``"haar"`` (= ``"db1"``), ``"db2"`` or ``"db4"`` (Daubechies, 2, 4 and 8 taps).
        levels: number of decomposition levels (>= 1); H and W must be multiples of
            ``2 ** levels``.

    Shapes: ``(B, C, H, W)`` real or complex -> ``(B, C, H, W)`` coefficients of the same dtype;
    complex images are transformed part by part with the real filters.
    """

    accepts_real = True

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise UserError(f"Wavelet2D: levels must be an integer >= 1, got {levels!r}")
        scaling, detail = wavelet_filters(wavelet)
        self.wavelet = wavelet
        self.levels = levels
        # (2, 1, L): the low- and high-pass filters as the two output channels of one conv1d
        self.register_buffer("filters", torch.stack([scaling, detail]).unsqueeze(1))

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """A UserError naming the wavelet, the levels and ``shape`` unless ``shape`` is that of
        images ``(B, C, H, W)`` with H and W multiples of ``2 ** levels``.

        Levels beyond PyWavelets' ``dwt_max_level`` (where the filter is longer than the
        coarsest signal) are allowed: the periodic filters then wrap more than once, and the
        transform stays orthogonal, equal to pywt's ``"periodization"`` coefficients."""
        block = 2**self.levels
        if len(shape) != 4 or shape[-2] % block or shape[-1] % block:
            hint = ""
            if len(shape) == 4 and min(shape[-2:]) > 0:
                # the largest power of 2 dividing both H and W
                fit = min((size & -size).bit_length() - 1 for size in shape[-2:])
                hint = (
                    f"; at most levels={fit} fits this image"
                    if fit
                    else "; H or W is odd: no level fits"
                )
            raise UserError(
                f"Wavelet2D({self.wavelet!r}, levels={self.levels}): expected images "
                f"(B, C, H, W) with H and W multiples of 2 ** levels = {block}, got shape "
                f"{tuple(shape)}{hint}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_shape(x.shape)
        return apply_to_real_parts(self._analysis, x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_shape(y.shape)
        return apply_to_real_parts(self._synthesis, y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        self.check_shape(x.shape)
        return x

    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        filters = self.filters.to(device=x.device, dtype=x.dtype)
        return _pyramid(lambda block: _analysis_level(block, filters), x, self.levels, True)

    def _synthesis(self, y: torch.Tensor) -> torch.Tensor:
        filters = self.filters.to(device=y.device, dtype=y.dtype)
        return _pyramid(lambda block: _synthesis_level(block, filters), y, self.levels, False)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        return cls("db2", levels=2), torch.randn(batch_size, 2, 8, 12, dtype=dtype)


def _pyramid(
    level: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, levels: int, analysis: bool
) -> torch.Tensor:
    """``levels`` applications of the one-level map ``level``, each on the top-left quarter of the
    previous one: coarsest last for analysis, coarsest first for synthesis."""
    if analysis:
        x = level(x)
    if levels > 1:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        top_left = _pyramid(level, x[..., :h, :w], levels - 1, analysis)
        top = torch.cat([top_left, x[..., :h, w:]], dim=-1)
        x = torch.cat([top, x[..., h:, :]], dim=-2)
    if not analysis:
        x = level(x)
    return x


def _analysis_level(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """One level of the 2D DWT of a real ``(..., H, W)`` tensor: ``[[LL, LH], [HL, HH]]``."""
    return _analysis_1d(_analysis_1d(x, filters, -1), filters, -2)


def _synthesis_level(y: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """The inverse (and transpose) of :func:`_analysis_level`."""
    return _synthesis_1d(_synthesis_1d(y, filters, -2), filters, -1)


def _periodic_index(size: int, length: int, device: torch.device) -> torch.Tensor:
    """Input sample ``(m + s) mod size`` read by entry ``m`` of the wrapped signal that a stride-2
    convolution with ``length`` taps turns into ``size / 2`` outputs (``s = 1 - length / 2``)."""
    shift = 1 - length // 2
    return torch.arange(shift, shift + size + length - 2, device=device) % size


def _analysis_1d(x: torch.Tensor, filters: torch.Tensor, dim: int) -> torch.Tensor:
    """``[a | d]`` along ``dim``: the approximation then the detail coefficients (see the module
    docstring for the sums)."""
    x = x.movedim(dim, -1)
    lead, size = x.shape[:-1], x.shape[-1]
    # Wrap by gathering, so that filters longer than the signal wrap more than once.
    wrapped = x.index_select(-1, _periodic_index(size, filters.shape[-1], x.device))
    coefficients = F.conv1d(wrapped.reshape(-1, 1, wrapped.shape[-1]), filters, stride=2)
    # (M, 2, N / 2) -> (..., N): the two bands side by side
    return coefficients.reshape(*lead, size).movedim(-1, dim)


def _synthesis_1d(y: torch.Tensor, filters: torch.Tensor, dim: int) -> torch.Tensor:
    """The transpose of :func:`_analysis_1d`: upsample-and-filter, then fold the wrap back."""
    y = y.movedim(dim, -1)
    lead, size = y.shape[:-1], y.shape[-1]
    bands = y.reshape(-1, 2, size // 2)
    wrapped = F.conv_transpose1d(bands, filters, stride=2)  # (M, 1, N + L - 2)
    index = _periodic_index(size, filters.shape[-1], y.device)
    folded = wrapped.new_zeros(bands.shape[0], size).index_add(-1, index, wrapped[:, 0])
    return folded.reshape(*lead, size).movedim(-1, dim)
