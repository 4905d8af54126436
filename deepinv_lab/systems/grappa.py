"""GRAPPA: missing k-space columns of multicoil Cartesian data as linear combinations of the
acquired neighbours of every coil, with weights calibrated on the fully sampled centre.

M. A. Griswold et al., "Generalized autocalibrating partially parallel acquisitions (GRAPPA)",
MRM 47:1202-1210, 2002.

Layout: k-space ``(B, coils, H, W)`` complex, the readout along ``H`` and the phase-encode
columns along ``W``; masks select columns, ``(B, 1, 1, W)`` (fastMRI's column masks, see
:mod:`deepinv_lab.systems.sampling`).

For a kernel of ``kx x ky`` points (rows along ``H``, columns along ``W``) centred on a missing
point, the *sampling pattern* of that point is the set of kernel positions that hold an acquired
sample (positions outside the k-space grid count as not acquired). A column mask gives few
distinct patterns: one per distinct neighbourhood of a missing column, times the rows near the top
and bottom edges. Each pattern ``p`` gets its own weights ``W_p``, fitted on every ``kx x ky``
window ``a`` of the ACS block (the fully sampled calibration columns):

    W_p = argmin_W  sum_a ||s_p(a) W - t(a)||^2 + lambda_p ||W||_F^2
        = (S_p^H S_p + lambda_p I)^{-1} S_p^H T,
    lambda_p = regularization * ||S_p^H S_p||_F / n_p,

where ``s_p(a)`` is the row of the window's samples at the pattern's positions (all coils,
``n_p`` = positions x coils), ``t(a)`` the window's centre (all coils), ``S_p``, ``T`` stack them
over the windows. The Tikhonov weight is relative to the Frobenius norm of the normal matrix over
its size: the convention of Lustig's SPIRiT/GRAPPA calibration code and of ``pygrappa``, so that
the same ``regularization`` means the same in both and is independent of the data's scale. All
``S_p^H S_p`` are submatrices of one Gram matrix of the ACS windows, computed once per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import torch
import torch.nn.functional as F

from deepinv_lab.errors import UserError

#: Elements (complex) that one gather of source samples or one batch of normal matrices may hold.
_CHUNK_ELEMENTS = 1 << 24


def check_grappa_args(
    owner: str, kernel_size: Sequence[int], regularization: float
) -> tuple[int, int]:
    """Raise a :class:`~deepinv_lab.errors.UserError` unless ``kernel_size`` is two integers
    ``>= 1`` and ``regularization`` a number ``>= 0``; returns ``kernel_size`` as ints. ``owner``
    names the caller in the message."""
    size = tuple(kernel_size) if isinstance(kernel_size, Sequence) else (kernel_size,)
    if len(size) != 2 or not all(
        isinstance(k, Integral) and not isinstance(k, bool) and k >= 1 for k in size
    ):
        raise UserError(
            f"{owner}: kernel_size must be two integers >= 1 (rows along H, columns along W), "
            f"got {kernel_size!r}"
        )
    if isinstance(regularization, bool) or not isinstance(regularization, Real):
        raise UserError(f"{owner}: regularization must be a number >= 0, got {regularization!r}")
    if not regularization >= 0:  # also refuses NaN
        raise UserError(f"{owner}: regularization must be a number >= 0, got {regularization!r}")
    return int(size[0]), int(size[1])


def grappa(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    num_low_frequencies: int | torch.Tensor | None = None,
    kernel_size: Sequence[int] = (5, 5),
    regularization: float = 0.01,
    acs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fill the missing columns of multicoil k-space by GRAPPA (see the module docstring).

    Acquired samples (the ACS columns among them) are returned unchanged; every missing point
    becomes the estimate of its sampling pattern's weights. A missing point with no acquired
    sample inside its kernel stays 0: random masks can leave gaps wider than the kernel
    (widen ``kernel_size[1]`` for them). Samples of a batch may have different masks and ACS
    widths; each is calibrated on its own ACS.

    Args:
        kspace: complex ``(B, coils, H, W)`` or ``(coils, H, W)`` k-space, complex64 or
            complex128; values at unacquired points are ignored.
        mask: real mask that broadcasts against ``kspace`` and selects columns: the same for
            every coil and row, e.g. ``(B, 1, 1, W)`` or ``(1, 1, W)``. Nonzero entries are
            acquired. 2D sampling patterns (Poisson disc, variable density) are refused with a
            :class:`~deepinv_lab.errors.UserError`.
        num_low_frequencies: width of each sample's ACS block, an int or a ``(B,)`` tensor; the
            block starts at column ``(W - n + 1) // 2`` (fastMRI's convention) and must be
            acquired. ``None`` or 0 (for a sample): the contiguous run of acquired columns that
            contains the centre column ``W // 2``.
        kernel_size: ``(kx, ky)``, the kernel's rows (along ``H``) and columns (along ``W``);
            odd sizes centre the kernel on the target, even ones put the extra row or column
            before it.
        regularization: the relative Tikhonov weight (module docstring); ``>= 0``.
        acs: separately acquired calibration k-space ``(B or 1, coils, Ha, Wa)`` (or
            ``(coils, Ha, Wa)``) to calibrate on instead of the ACS columns of ``kspace``;
            every ``kx x ky`` window inside it is used. Exclusive with ``num_low_frequencies``.

    Returns:
        the filled k-space, shaped and typed as ``kspace``.
    """
    kernel = check_grappa_args("grappa", kernel_size, regularization)
    batched = _as_batch(kspace, "kspace")
    num_samples, num_coils, height, width = batched.shape
    columns = acquired_columns(mask, tuple(kspace.shape), num_samples).to(kspace.device)
    block, acs_widths = _calibration_block(batched, columns, num_low_frequencies, acs, kernel)
    missing = ~columns
    if not bool(missing.any()):
        return kspace.clone()
    gram = calibration_gram(block, kernel, acs_widths).expand(num_samples, -1, -1)
    rows = torch.ones(1, height, dtype=torch.bool, device=columns.device)
    row_patterns, row_class = torch.unique(
        _neighbourhoods(rows, kernel[0])[0], dim=0, return_inverse=True
    )
    column_patterns, classes = torch.unique(
        _neighbourhoods(columns, kernel[1])[missing], dim=0, return_inverse=True
    )
    column_class = torch.full_like(columns, -1, dtype=torch.long).masked_scatter(missing, classes)
    footprints = row_patterns[None, :, :, None] & column_patterns[:, None, None, :]
    footprints = footprints.reshape(-1, kernel[0] * kernel[1])  # pattern c * R + r
    weights, positions, counts = _calibrate(gram, footprints, kernel, regularization)

    filled = _apply(
        batched, row_class, column_class, len(row_patterns), weights, positions, counts, kernel
    )
    return filled if kspace.ndim == 4 else filled[0]


def grappa_weights(
    acs: torch.Tensor,
    patterns: torch.Tensor,
    regularization: float = 0.01,
) -> torch.Tensor:
    """GRAPPA weights of sampling patterns, calibrated on every window of an ACS block.

    Args:
        acs: fully sampled calibration k-space, complex ``(B, coils, Ha, Wa)`` or
            ``(coils, Ha, Wa)``.
        patterns: boolean ``(P, kx, ky)`` (or one ``(kx, ky)``): the kernel positions that hold
            acquired samples; the kernel size is their shape and the centre (the target, at
            ``(kx // 2, ky // 2)``) must be False.
        regularization: the relative Tikhonov weight of the module docstring, ``>= 0``.

    Returns:
        complex ``(B, P, kx * ky * coils, coils)`` (``(B, kx * ky * coils, coils)`` for one
        pattern; no ``B`` for unbatched ``acs``): ``W[b, p, (i * ky + j) * coils + c, d]``
        weighs coil ``c`` at kernel position ``(i, j)`` in the estimate of coil ``d`` at the
        centre, zero at positions the pattern does not hold. With ``s`` the window's samples
        flattened in that order, the estimate is ``s @ W``.
    """
    if patterns.dtype != torch.bool or patterns.ndim not in (2, 3):
        raise UserError(
            "grappa_weights: patterns must be a boolean (P, kx, ky) or (kx, ky) tensor, got "
            f"dtype {patterns.dtype} with shape {tuple(patterns.shape)}"
        )
    kernel = check_grappa_args("grappa_weights", tuple(patterns.shape[-2:]), regularization)
    footprints = patterns.reshape(-1, kernel[0] * kernel[1])
    if bool(footprints[:, (kernel[0] // 2) * kernel[1] + kernel[1] // 2].any()):
        raise UserError(
            "grappa_weights: a pattern holds the kernel centre "
            f"{(kernel[0] // 2, kernel[1] // 2)}, the point it estimates"
        )
    calibration = _as_batch(acs, "acs")
    _check_windows(calibration.shape[-2], calibration.shape[-1], kernel, "acs")
    gram = calibration_gram(calibration, kernel)
    compact, positions, _ = _calibrate(gram, footprints.to(acs.device), kernel, regularization)
    num_samples, num_patterns = compact.shape[:2]
    num_coils = calibration.shape[1]
    full = compact.new_zeros(num_samples, num_patterns, footprints.shape[1], num_coils, num_coils)
    rows = compact.reshape(num_samples, num_patterns, -1, num_coils, num_coils)
    index = positions[None, :, :, None, None].expand_as(rows)
    full = full.scatter(2, index, rows).flatten(2, 3)
    full = full if patterns.ndim == 3 else full[:, 0]
    return full if acs.ndim == 4 else full[0]


def calibration_gram(
    acs: torch.Tensor, kernel_size: tuple[int, int], acs_widths: torch.Tensor | None = None
) -> torch.Tensor:
    """``A^H A`` of the calibration windows: ``A`` has one row per ``kx x ky`` window inside the
    ACS block, its samples flattened as ``(i * ky + j) * coils + c``.

    Args:
        acs: complex ``(B, coils, Ha, Wa)``.
        kernel_size: ``(kx, ky)``.
        acs_widths: ``(B,)``: only the first ``acs_widths[b]`` columns of sample ``b`` are
            calibration data (samples of a batch with ACS blocks of different widths); ``None``:
            all ``Wa``.

    Returns:
        complex ``(B, kx * ky * coils, kx * ky * coils)``.
    """
    kx, ky = kernel_size
    windows = acs.unfold(2, kx, 1).unfold(3, ky, 1)  # (B, coils, Ha-kx+1, Wa-ky+1, kx, ky)
    if acs_widths is not None:
        inside = torch.arange(windows.shape[3], device=acs.device) + ky <= acs_widths[:, None]
        windows = windows * inside[:, None, None, :, None, None]
    rows = windows.permute(0, 2, 3, 4, 5, 1).reshape(acs.shape[0], -1, kx * ky * acs.shape[1])
    return rows.mH @ rows


def acs_columns(
    columns: torch.Tensor, num_low_frequencies: int | torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """First column and width ``(B,)`` of each sample's ACS block, checked to be acquired.

    Args:
        columns: boolean ``(B, W)``, the acquired columns.
        num_low_frequencies: see :func:`grappa`.
    """
    num_samples, width = columns.shape
    centre = width // 2
    # the acquired run through the centre: acquired columns before the first gap on each side
    right = columns[:, centre:].to(torch.long).cumprod(1).sum(1)
    left = columns[:, :centre].flip(1).to(torch.long).cumprod(1).sum(1)
    derived_start, derived = centre - left, torch.where(right > 0, left + right, 0)
    if num_low_frequencies is None:
        given = torch.zeros(num_samples, dtype=torch.long, device=columns.device)
    else:
        given = torch.as_tensor(num_low_frequencies).to(columns.device, torch.long).reshape(-1)
        if given.numel() not in (1, num_samples) or bool(((given < 0) | (given > width)).any()):
            raise UserError(
                f"grappa: num_low_frequencies must be an int or {num_samples} values (one per "
                f"sample) in [0, {width}], got {given.tolist()}"
            )
        given = given.expand(num_samples)
    start = torch.where(given > 0, (width - given + 1) // 2, derived_start)
    widths = torch.where(given > 0, given, derived)
    if bool((widths == 0).any()):
        raise UserError(
            f"grappa: the centre column {centre} of sample(s) "
            f"{torch.nonzero(widths == 0).flatten().tolist()} is not acquired: no ACS block to "
            "calibrate on"
        )
    span = torch.arange(width, device=columns.device)
    block = (span >= start[:, None]) & (span < (start + widths)[:, None])
    holes = block & ~columns
    if bool(holes.any()):
        sample, column = (int(i) for i in torch.nonzero(holes)[0])
        raise UserError(
            f"grappa: num_low_frequencies={int(widths[sample])} puts the ACS block of sample "
            f"{sample} at columns {int(start[sample])}..{int(start[sample] + widths[sample]) - 1}, "
            f"but the mask leaves column {column} unacquired"
        )
    return start, widths


def acquired_columns(mask: torch.Tensor, shape: tuple[int, ...], num_samples: int) -> torch.Tensor:
    """The acquired columns of a column mask, boolean ``(B, W)``.

    Args:
        mask: real, broadcastable against k-space of ``shape``; nonzero entries are acquired.
        shape: the k-space shape, ``(B, coils, H, W)`` or ``(coils, H, W)``.
        num_samples: ``B`` (1 for unbatched k-space).

    Raises a :class:`~deepinv_lab.errors.UserError` naming the shapes unless the mask broadcasts
    and is the same for every coil and row (2D sampling patterns are refused).
    """
    if not isinstance(mask, torch.Tensor) or mask.is_complex():
        raise UserError(
            f"grappa: mask must be a real tensor, got {getattr(mask, 'dtype', type(mask).__name__)}"
        )
    try:
        fits = torch.broadcast_shapes(mask.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise UserError(
            f"grappa: mask of shape {tuple(mask.shape)} does not broadcast against k-space of "
            f"shape {shape}"
        )
    acquired = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape)) != 0
    if bool((acquired != acquired[:, :1, :1, :]).any()):
        raise UserError(
            f"grappa: the mask of shape {tuple(mask.shape)} varies across coils or rows; GRAPPA "
            "here fills k-space columns and needs a column mask such as (B, 1, 1, W) (2D "
            "sampling patterns such as Poisson disc are not supported)"
        )
    return acquired[:, 0, 0, :].expand(num_samples, shape[-1])


def _calibration_block(
    kspace: torch.Tensor,
    columns: torch.Tensor,
    num_low_frequencies: int | torch.Tensor | None,
    acs: torch.Tensor | None,
    kernel: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The calibration k-space ``(B or 1, coils, Ha, Wa)`` of :func:`grappa` and the width of
    each sample's part of it (``None``: all of it), checked to hold a kernel window."""
    num_samples, num_coils, height, width = kspace.shape
    if acs is not None:
        if num_low_frequencies is not None:
            raise UserError("grappa: give num_low_frequencies or acs, not both")
        block = _as_batch(acs, "acs")
        if block.shape[1] != num_coils or block.shape[0] not in (1, num_samples):
            raise UserError(
                f"grappa: acs of shape {tuple(acs.shape)} does not fit k-space of shape "
                f"{tuple(kspace.shape)}; expected ({num_samples} or 1, {num_coils}, Ha, Wa)"
            )
        _check_windows(block.shape[-2], block.shape[-1], kernel, "acs")
        return block.to(kspace.dtype), None
    start, widths = acs_columns(columns, num_low_frequencies)
    _check_windows(height, int(widths.min()), kernel, "the ACS block")
    span = torch.arange(int(widths.max()), device=columns.device)
    index = (start[:, None] + span).clamp(max=width - 1)
    block = kspace.gather(3, index[:, None, None, :].expand(-1, num_coils, height, -1))
    return block, widths


def _as_batch(k: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(k, torch.Tensor) or k.dtype not in (torch.complex64, torch.complex128):
        raise UserError(
            f"grappa: {name} must be a complex64 or complex128 tensor (B, coils, H, W) or "
            f"(coils, H, W), got {getattr(k, 'dtype', type(k).__name__)}"
        )
    if k.ndim not in (3, 4):
        raise UserError(
            f"grappa: {name} must be (B, coils, H, W) or (coils, H, W), got shape {tuple(k.shape)}"
        )
    return k if k.ndim == 4 else k[None]


def _check_windows(height: int, width: int, kernel: tuple[int, int], what: str) -> None:
    if height < kernel[0] or width < kernel[1]:
        raise UserError(
            f"grappa: {what} of {height} rows x {width} columns is smaller than the kernel "
            f"{kernel[0]} x {kernel[1]}: no window to calibrate on"
        )


def _neighbourhoods(acquired: torch.Tensor, size: int) -> torch.Tensor:
    """Boolean ``(N, L, size)``: the ``size`` points around each position of ``acquired``
    ``(N, L)`` (``size // 2`` before it), False outside ``[0, L)``."""
    padded = F.pad(acquired.to(torch.uint8), (size // 2, (size - 1) // 2))
    return padded.unfold(1, size, 1).bool()


def _calibrate(
    gram: torch.Tensor, footprints: torch.Tensor, kernel: tuple[int, int], regularization: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights of every sampling pattern for every sample, in compact form.

    Args:
        gram: ``(B, K * coils, K * coils)`` from :func:`calibration_gram`, ``K = kx * ky``.
        footprints: boolean ``(P, K)``, the acquired kernel positions of each pattern.

    Returns:
        ``weights`` ``(B, P, n * coils, coils)``, ``positions`` ``(P, n)`` and ``counts``
        ``(P,)``: pattern ``p`` uses kernel positions ``positions[p, :counts[p]]`` and the first
        ``counts[p] * coils`` rows of its weights (the rest is zero), ``n`` the largest count.
    """
    num_samples = gram.shape[0]
    num_patterns, num_points = footprints.shape
    num_coils = gram.shape[-1] // num_points
    counts = footprints.sum(1)
    size = int(counts.max())
    positions = torch.argsort((~footprints).to(torch.uint8), dim=1, stable=True)[:, :size]
    coil = torch.arange(num_coils, device=gram.device)
    targets = ((kernel[0] // 2) * kernel[1] + kernel[1] // 2) * num_coils + coil
    weights = gram.new_zeros(num_samples, num_patterns, size * num_coils, num_coils)
    # patterns with as many sources solve together, each at its own size
    for count in torch.unique(counts[counts > 0]).tolist():
        unknowns = count * num_coils
        identity = torch.eye(unknowns, dtype=gram.dtype, device=gram.device)
        step = max(1, _CHUNK_ELEMENTS // (num_samples * unknowns**2))
        for part in torch.nonzero(counts == count).flatten().split(step):
            sources = (positions[part, :count, None] * num_coils + coil).flatten(1)
            normal = gram[:, sources[:, :, None], sources[:, None, :]]  # (B, p, n, n)
            rhs = gram[:, sources[:, :, None], targets]  # (B, p, n, coils)
            scale = torch.linalg.matrix_norm(normal) / unknowns
            # an all-zero ACS gives zero weights rather than a singular system
            damping = torch.where(scale > 0, regularization * scale, 1.0)
            factor, info = torch.linalg.cholesky_ex(normal + damping[..., None, None] * identity)
            if bool((info != 0).any()):
                raise UserError(
                    f"grappa: the calibration with regularization={regularization} is singular "
                    "(too few ACS windows for the kernel's sources, or rank-deficient data); "
                    "use regularization > 0"
                )
            weights[:, part, :unknowns] = torch.cholesky_solve(rhs, factor)
    return weights, positions, counts


def _apply(
    kspace: torch.Tensor,
    row_class: torch.Tensor,
    column_class: torch.Tensor,
    num_row_classes: int,
    weights: torch.Tensor,
    positions: torch.Tensor,
    counts: torch.Tensor,
    kernel: tuple[int, int],
) -> torch.Tensor:
    """Estimate every missing point from its acquired neighbours: pattern ``c * R + r`` for a
    point of row class ``r`` (``row_class`` ``(H,)``) in a column of class ``c``
    (``column_class`` ``(B, W)``, -1 for acquired columns)."""
    num_samples, num_coils, height, width = kspace.shape
    kx, ky = kernel
    missing = column_class >= 0
    padded_width = width + ky - 1
    # coil-last copy, zero outside the grid and at missing columns, one row per grid point
    sources = F.pad(
        (kspace * ~missing[:, None, None, :]).permute(0, 2, 3, 1),
        (0, 0, ky // 2, (ky - 1) // 2, kx // 2, (kx - 1) // 2),
    )
    padded_height = sources.shape[1]
    sources = sources.reshape(-1, num_coils)
    filled = kspace.permute(0, 2, 3, 1).contiguous()
    flat = filled.view(-1, num_coils)
    offsets = (positions // ky) * padded_width + positions % ky  # (P, n), from the window corner
    rows_of = [torch.nonzero(row_class == r).flatten() for r in range(num_row_classes)]
    counts = counts.tolist()
    for sample in range(num_samples):
        classes = column_class[sample]
        for c in torch.unique(classes[missing[sample]]).tolist():
            cols = torch.nonzero(classes == c).flatten()
            for r, rows in enumerate(rows_of):
                pattern = c * num_row_classes + r
                count = counts[pattern]
                if count == 0:
                    flat_index = (sample * height + rows[:, None]) * width + cols
                    flat[flat_index.flatten()] = 0
                    continue
                offset = offsets[pattern, :count]
                weight = weights[sample, pattern, : count * num_coils]
                step = max(1, _CHUNK_ELEMENTS // (len(cols) * count * num_coils))
                for part in rows.split(step):
                    corner = (sample * padded_height + part[:, None]) * padded_width + cols
                    gathered = sources[(corner.reshape(-1, 1) + offset).flatten()]
                    estimate = gathered.view(-1, count * num_coils) @ weight
                    flat[((sample * height + part[:, None]) * width + cols).flatten()] = estimate
    return filled.permute(0, 3, 1, 2).contiguous()
