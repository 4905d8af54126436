"""ESPIRiT coil sensitivity maps estimated from the calibration region of k-space, in torch."""

from __future__ import annotations

import math

import torch

from deepinv_lab.errors import UserError

# Pixels whose coils x coils operators are formed and powered at once: on the CPU a chunk that
# stays in cache (a few MB per buffer); on an accelerator about a fastMRI slice.
_CHUNK_PIXELS_CPU = 8192
_CHUNK_PIXELS_ACCELERATOR = 1 << 18


def espirit_maps(
    kspace: torch.Tensor,
    calib_width: int | tuple[int, int] = 24,
    threshold: float = 0.02,
    crop: float = 0.95,
    kernel_width: int = 6,
    max_iter: int = 100,
) -> torch.Tensor:
    """Coil sensitivity maps estimated by ESPIRiT from the calibration region of k-space.

    ESPIRiT (Uecker et al., MRM 71:990, 2014), computed as SigPy's ``sigpy.mri.app.EspiritCalib``
    but batched as torch operations on the device of ``kspace``:

    1. The central ``calib_width`` x ``calib_width`` block of k-space (the fully sampled ACS
       region, e.g. the ``calib`` of :func:`~deepinv_lab.systems.sampling.poisson_disc_mask`;
       ``(rows, columns)`` for a rectangular one, e.g. the ACS columns of a column mask) gives a
       calibration matrix whose rows are the ``kernel_width`` x ``kernel_width`` patches of all
       coils. Its right singular vectors with singular value above ``threshold`` times the
       largest are the kernels ``k_j`` (as many per sample as pass the threshold).
    2. At every pixel ``r`` the image-domain operator is
       ``G(r) = (1 / kernel_width^2) sum_j g_j(r) g_j(r)^H``, with ``g_j`` the kernel ``k_j``
       zero-padded to ``H x W`` and brought to the image domain by the centered orthonormal
       inverse FFT, scaled by ``sqrt(H W)``. It is formed without those ``coils^2`` FFTs: entry
       ``(c, d)`` is the inverse DFT of the kernels' cross-correlation ``sum_j k_jc * conj(k_jd)``,
       which has only ``(2 kernel_width - 1)^2`` non-zero lags.
    3. The maps are ``G(r)``'s leading eigenvector by ``max_iter`` power iterations from the
       all-ones vector, ``x_n = G^n 1 / ||G^n 1||``, with eigenvalue ``||G x_{n-1}||`` (SigPy's
       iterates), phase-referenced to the first coil and set to zero where the eigenvalue is at
       most ``crop`` (outside the object). ``G^(n-1) 1`` is evaluated by repeated squaring of
       ``G(r)`` (``log2(max_iter)`` batched ``coils x coils`` products) rather than ``n``
       memory-bound matrix-vector products. Where k-space holds no signal (all zeros) the maps
       are zero.

    k-space must follow the project's convention: centered orthonormal FFT of the coil images
    (:func:`~deepinv_lab.functional.fft2c`), which is SigPy's ``sp.fft(x, axes=(-2, -1))``, so the
    maps fit ``kspace = fft2c(maps * image)`` and :class:`~deepinv_lab.systems.mri.MultiCoilMRI`.

    This is a pure function of its arguments (no global state, no autograd graph), so it can run
    in a Dataset's ``__getitem__``, a collate function or on a batch on the GPU. Cost per sample:
    one SVD of a ``(calib_width - kernel_width + 1)^2`` x ``coils kernel_width^2`` matrix, then
    ``coils^2 H W`` for the operators and ``log2(max_iter) coils^3 H W`` for the powers, in chunks
    of pixels (memory: a few ``coils^2`` x chunk buffers, not ``coils^2 H W``). In DataLoader
    workers, or on a CPU shared with other jobs, use one thread (``torch.set_num_threads(1)``,
    ``OMP_NUM_THREADS=1``): the many short parallel regions, and threaded LAPACK in the SVD, wait
    for descheduled threads on an oversubscribed CPU and can run ten times slower.

    Args:
        kspace: complex k-space ``(coils, H, W)`` or batched ``(B, coils, H, W)``; only the central
            calibration block is used, so undersampled k-space with a fully sampled ACS block works.
        calib_width: side of the central calibration block (<= ``min(H, W)``), or its
            ``(rows, columns)`` (<= ``(H, W)``); SigPy's ``EspiritCalib`` takes a square one.
        threshold: relative singular-value threshold for the kernels.
        crop: eigenvalue threshold below which maps are zeroed (0 keeps them everywhere).
        kernel_width: side of the k-space kernels (< each side of the calibration block).
        max_iter: power iterations per pixel (>= 1).

    Returns:
        complex maps with the layout, dtype and device of ``kspace``.
    """
    calib_shape = _check_arguments(kspace, calib_width, kernel_width, max_iter)
    with torch.no_grad():
        batch = kspace.detach()
        batch = batch[None] if kspace.ndim == 3 else batch
        kernels = _calibration_kernels(batch, calib_shape, kernel_width, threshold)
        correlation = _kernel_correlation(kernels, kernel_width)
        maps = _maps_from_correlation(correlation, batch.shape[-2:], crop, max_iter)
    return maps[0] if kspace.ndim == 3 else maps


def _check_arguments(
    kspace: torch.Tensor, calib_width: int | tuple[int, int], kernel_width: int, max_iter: int
) -> tuple[int, int]:
    """The calibration block's ``(rows, columns)``, once the arguments are checked."""
    if not kspace.is_complex() or kspace.ndim not in (3, 4):
        raise UserError(
            "espirit_maps expects complex k-space of shape (coils, H, W) or (B, coils, H, W), got "
            f"dtype {kspace.dtype} with shape {tuple(kspace.shape)}"
        )
    height, width = kspace.shape[-2:]
    rows, columns = calib_width if isinstance(calib_width, tuple) else (calib_width, calib_width)
    if not (0 < kernel_width < min(rows, columns) and rows <= height and columns <= width):
        raise UserError(
            f"espirit_maps: expected 0 < kernel_width < calib_width <= min(H, W) (each side of "
            f"a (rows, columns) calib_width <= (H, W)), got kernel_width={kernel_width}, "
            f"calib_width={calib_width} for k-space of shape {tuple(kspace.shape)}"
        )
    if max_iter < 1:
        raise UserError(f"espirit_maps: max_iter must be >= 1, got {max_iter}")
    return rows, columns


def _calibration_kernels(
    kspace: torch.Tensor, calib_shape: tuple[int, int], kernel_width: int, threshold: float
) -> torch.Tensor:
    """ESPIRiT's k-space kernels: the right singular vectors of the calibration matrix whose
    singular value exceeds ``threshold`` times the largest, the others set to zero (so that every
    sample of a batch has the same shape whatever its number of kernels).

    Args:
        kspace: ``(B, coils, H, W)``; its central block of ``calib_shape`` (rows, columns) is
            used, the block SigPy's ``resize`` takes: rows from ``H // 2 - rows // 2``, columns
            likewise.

    Returns:
        ``(B, K, coils, kernel_width, kernel_width)``, rows of ``V^H`` of the calibration matrix
        ``(patches, coils kernel_width^2)``, ``K = min(patches, coils kernel_width^2)``.
    """
    num_samples, num_coils, height, width = kspace.shape
    rows, columns = calib_shape
    top, left = height // 2 - rows // 2, width // 2 - columns // 2
    calib = kspace[..., top : top + rows, left : left + columns]
    # (B, coils, blocks_y, blocks_x, kernel_width, kernel_width): every patch, a view
    patches = calib.unfold(-2, kernel_width, 1).unfold(-2, kernel_width, 1)
    matrix = patches.permute(0, 2, 3, 1, 4, 5).reshape(num_samples, -1, num_coils * kernel_width**2)
    _, singular_values, right_vectors_h = torch.linalg.svd(matrix, full_matrices=False)
    keep = singular_values > threshold * singular_values[..., :1]
    kernels = right_vectors_h * keep[..., None]
    return kernels.reshape(num_samples, -1, num_coils, kernel_width, kernel_width)


def _kernel_correlation(kernels: torch.Tensor, kernel_width: int) -> torch.Tensor:
    """``P_cd(l) = sum_j sum_q k_jc(q + l) conj(k_jd(q))`` for the lags ``l`` in
    ``[-(kernel_width - 1), kernel_width - 1]^2``: the k-space counterpart of
    ``sum_j g_j(r) g_j(r)^H`` (a product in the image domain is a correlation in k-space).

    Args:
        kernels: ``(B, K, coils, kernel_width, kernel_width)``.

    Returns:
        ``(B, coils, coils, 2 kernel_width - 1, 2 kernel_width - 1)``, lags ascending.
    """
    num_samples, _, num_coils = kernels.shape[:3]
    flat = kernels.reshape(num_samples, -1, num_coils * kernel_width**2)
    # gram[b, (c, qy, qx), (d, py, px)] = sum_j k_jc(qy, qx) conj(k_jd(py, px))
    gram = (flat.mT @ flat.conj()).reshape(
        num_samples, num_coils, kernel_width, kernel_width, num_coils, kernel_width, kernel_width
    )
    lags = range(-(kernel_width - 1), kernel_width)
    # sum over py of gram[.., qy = py + ly, .., py, ..]: dims (b, c, qx, d, px, ly)
    by_row_lag = torch.stack(
        [torch.diagonal(gram, offset=lag, dim1=5, dim2=2).sum(-1) for lag in lags], dim=-1
    )
    # then over px of [.., qx = px + lx, .., px, ..]: dims (b, c, d, ly, lx)
    return torch.stack(
        [torch.diagonal(by_row_lag, offset=lag, dim1=4, dim2=2).sum(-1) for lag in lags], dim=-1
    )


def _inverse_dft_matrix(size: int, kernel_width: int, like: torch.Tensor) -> torch.Tensor:
    """``exp(2 pi i (n - size // 2) l / size)`` for pixels ``n`` (rows) and lags ``l`` (columns):
    the centered inverse DFT from the lags to the image grid; the phase is reduced modulo
    ``size`` in integers, so it stays exact at any size."""
    pixels = torch.arange(size, device=like.device)[:, None] - size // 2
    lags = torch.arange(-(kernel_width - 1), kernel_width, device=like.device)[None, :]
    turns = torch.remainder(pixels * lags, size).to(torch.float64) / size
    return torch.polar(torch.ones_like(turns), 2 * math.pi * turns).to(like.dtype)


def _maps_from_correlation(
    correlation: torch.Tensor, shape: torch.Size, crop: float, max_iter: int
) -> torch.Tensor:
    """The maps ``(B, coils, H, W)`` from the kernels' correlation, chunk of rows by chunk."""
    num_samples, num_coils, _, num_lags, _ = correlation.shape
    kernel_width = (num_lags + 1) // 2
    height, width = shape
    rows_dft = _inverse_dft_matrix(height, kernel_width, correlation)  # (H, lags)
    columns_dft = _inverse_dft_matrix(width, kernel_width, correlation)  # (W, lags)
    # along the columns first, for all rows' lags: (B, lags_y, W, coils, coils), flattened
    # after lags_y so that each chunk of rows is one matrix product with rows_dft
    half_transform = (correlation @ columns_dft.T) / kernel_width**2  # (B, c, d, ly, W)
    half_transform = half_transform.permute(0, 3, 4, 1, 2).reshape(num_samples, num_lags, -1)

    maps = torch.empty(
        num_samples, num_coils, height, width, dtype=correlation.dtype, device=correlation.device
    )
    budget = _CHUNK_PIXELS_CPU if correlation.device.type == "cpu" else _CHUNK_PIXELS_ACCELERATOR
    rows_per_chunk = max(1, budget // (num_samples * width))
    for top in range(0, height, rows_per_chunk):
        rows = slice(top, min(top + rows_per_chunk, height))
        # G(r) for the chunk's pixels: (B * R * W, coils, coils)
        operator = (rows_dft[rows] @ half_transform).reshape(-1, num_coils, num_coils)
        vectors, eigenvalues = _power_method(operator, max_iter)
        vectors = vectors * torch.sgn(vectors[:, :1]).conj() * (eigenvalues > crop)[:, None]
        maps[:, :, rows] = vectors.reshape(num_samples, -1, width, num_coils).permute(0, 3, 1, 2)
    return maps


def _power_method(operator: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``max_iter`` power iterations from the all-ones vector on each Hermitian positive
    semi-definite matrix of a batch: ``x_n = A^n 1 / ||A^n 1||`` and the eigenvalue estimate
    ``||A x_{n-1}||``, as ``sigpy.alg.PowerMethod``.

    ``A^(n-1) 1`` is evaluated by binary powers: the squares ``A^(2^k)`` (each rescaled to unit
    trace, which keeps them in floating-point range and leaves directions unchanged) are applied
    to the vector for the set bits of ``n - 1``. Batched ``coils x coils`` products run at a
    fraction of the cost of ``n`` matrix-vector products, which are limited by memory bandwidth.

    Args:
        operator: ``(N, coils, coils)`` Hermitian positive semi-definite.
        max_iter: ``n >= 1``.

    Returns:
        ``(N, coils)`` unit vectors (zero where ``A`` is zero) and ``(N,)`` real eigenvalues.
    """
    tiny = torch.finfo(operator.real.dtype).tiny
    vector = torch.ones(operator.shape[:-1], dtype=operator.dtype, device=operator.device)
    power = _unit_trace(operator, torch.empty_like(operator))
    square = torch.empty_like(operator)
    remaining = max_iter - 1
    while remaining:
        if remaining & 1:
            vector = _apply(power, vector)
            vector = vector * (1 / _norm(vector).clamp_min(tiny))
        remaining >>= 1
        if remaining:
            torch.matmul(power, power, out=square)
            power, square = _unit_trace(square, square), power
    image = _apply(operator, vector)
    eigenvalues = _norm(image)
    return image * (1 / eigenvalues.clamp_min(tiny)), eigenvalues[:, 0]


# Complex division, complex norms and complex reductions run at a fraction of the speed of the
# same operations on the real view on the CPU, hence the real views below.


def _norm(vector: torch.Tensor) -> torch.Tensor:
    """``(N, 1)`` Euclidean norms of the rows of a complex ``(N, coils)``."""
    return torch.linalg.vector_norm(torch.view_as_real(vector).flatten(-2), dim=-1, keepdim=True)


def _apply(matrices: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """``(N, coils)`` products of ``(N, coils, coils)`` matrices and ``(N, coils)`` vectors."""
    return (matrices @ vector[..., None])[..., 0]


def _unit_trace(matrices: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``matrices / trace(matrices)`` (Hermitian positive semi-definite, so a real trace) into
    ``out`` (which may be ``matrices``); zero matrices stay zero."""
    tiny = torch.finfo(matrices.real.dtype).tiny
    trace = torch.diagonal(matrices, dim1=-2, dim2=-1).real.sum(-1)
    scale = (1 / trace.clamp_min(tiny))[:, None]
    torch.mul(
        torch.view_as_real(matrices).flatten(-3), scale, out=torch.view_as_real(out).flatten(-3)
    )
    return out
