"""Coil sensitivity maps: simulated (birdcage) and estimated from k-space (ESPIRiT)."""

from __future__ import annotations

import math

import numpy as np
import torch

from deepinv_lab.errors import UserError


def birdcage_maps(
    num_coils: int,
    shape: tuple[int, int],
    radius: float = 1.5,
    rotation: float = 0.0,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Smooth birdcage-coil sensitivities, normalised to unit root-sum-of-squares at every pixel.

    Coil ``c`` sits at angle ``theta_c = rotation + 2 pi c / num_coils`` on a circle of ``radius``
    (in units of the half field of view). Its sensitivity at pixel ``r`` falls off as
    ``1 / |r - r_c|`` with phase ``angle(r - r_c) - theta_c``, the model of SigPy's
    ``birdcage_maps``. Normalising by the RSS makes ``S^H S = I``, so that ``rss(S x) = |x|``.

    Returns:
        complex tensor ``(num_coils, H, W)``.
    """
    if num_coils < 1:
        raise UserError(f"birdcage_maps: num_coils must be >= 1, got {num_coils}")
    height, width = shape
    real = torch.empty((), dtype=dtype).real.dtype
    y = (torch.arange(height, dtype=real) - height / 2) / (height / 2)
    x = (torch.arange(width, dtype=real) - width / 2) / (width / 2)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    theta = rotation + 2 * math.pi * torch.arange(num_coils, dtype=real) / num_coils
    dx = xx - radius * torch.cos(theta)[:, None, None]
    dy = yy - radius * torch.sin(theta)[:, None, None]
    distance = torch.sqrt(dx**2 + dy**2)
    phase = torch.atan2(dx, -dy) - theta[:, None, None]
    maps = torch.polar(1.0 / distance, phase)
    return (maps / torch.sqrt((maps.abs() ** 2).sum(0, keepdim=True))).to(dtype)


def espirit_maps(
    kspace: torch.Tensor,
    calib_width: int = 24,
    threshold: float = 0.02,
    crop: float = 0.95,
    kernel_width: int = 6,
    max_iter: int = 100,
) -> torch.Tensor:
    """Coil sensitivity maps estimated by ESPIRiT from the calibration region of k-space.

    Runs ``sigpy.mri.app.EspiritCalib`` (Uecker et al., MRM 71:990, 2014) on the CPU, one sample at
    a time: the central ``calib_width`` x ``calib_width`` block of k-space (the fully sampled ACS
    region, e.g. the ``calib`` of :func:`~deepinv_lab.systems.sampling.poisson_disc_mask`) gives a
    calibration matrix of ``kernel_width`` x ``kernel_width`` patches; its right singular vectors
    above ``threshold`` times the largest singular value span the GRAPPA-like kernels, and at every
    pixel the maps are the leading eigenvector of the kernels' image-domain operator (power
    iterations). Maps are phase-referenced to the first coil and set to zero where the eigenvalue
    is at most ``crop`` (outside the object). Where k-space holds no signal (all zeros) the maps are
    zero.

    k-space must follow the project's convention: centered orthonormal FFT of the coil images
    (:func:`~deepinv_lab.functional.fft2c`), which is SigPy's ``sp.fft(x, axes=(-2, -1))``, so the
    maps fit ``kspace = fft2c(maps * image)`` and :class:`~deepinv_lab.systems.mri.MultiCoilMRI`.

    This is a pure function of its arguments (no global state, no progress bar), so it can run in a
    Dataset's ``__getitem__`` or a collate function. Cost: one SVD of a
    ``(calib_width - kernel_width + 1)^2`` x ``coils kernel_width^2`` matrix, then ``max_iter``
    power iterations of ``coils x coils`` matrices at each of the ``H W`` pixels (``coils^2 H W``
    per iteration): seconds per sample on one CPU core at fastMRI sizes. Estimate maps in
    DataLoader workers or once per dataset rather than in the training step, with one BLAS thread
    per worker (``OMP_NUM_THREADS=1`` or ``threadpoolctl``): on an oversubscribed CPU, threaded
    LAPACK in the SVD can make a call many times slower.

    Args:
        kspace: complex k-space ``(coils, H, W)`` or batched ``(B, coils, H, W)``; only the central
            calibration block is used, so undersampled k-space with a fully sampled ACS block works.
        calib_width: side of the central calibration block (<= ``min(H, W)``).
        threshold: relative singular-value threshold for the kernels.
        crop: eigenvalue threshold below which maps are zeroed (0 keeps them everywhere).
        kernel_width: side of the k-space kernels (< ``calib_width``).
        max_iter: power iterations per pixel.

    Returns:
        complex maps with the layout, dtype and device of ``kspace``.
    """
    if not kspace.is_complex() or kspace.ndim not in (3, 4):
        raise ValueError(
            "espirit_maps expects complex k-space of shape (coils, H, W) or (B, coils, H, W), got "
            f"dtype {kspace.dtype} with shape {tuple(kspace.shape)}"
        )
    height, width = kspace.shape[-2:]
    if not 0 < kernel_width < calib_width <= min(height, width):
        raise UserError(
            f"espirit_maps: expected 0 < kernel_width < calib_width <= min(H, W), got "
            f"kernel_width={kernel_width}, calib_width={calib_width} for k-space of shape "
            f"{tuple(kspace.shape)}"
        )
    import sigpy
    import sigpy.mri  # lazy: SigPy loads only where maps are estimated

    batch = kspace.detach().cpu().resolve_conj().numpy()
    batch = batch[None] if kspace.ndim == 3 else batch
    maps = []
    for sample in batch:
        # Zero signal gives 0 / 0 in the power iterations and the phase reference: no map there.
        with np.errstate(divide="ignore", invalid="ignore"):
            app = sigpy.mri.app.EspiritCalib(
                sample,
                calib_width=calib_width,
                thresh=threshold,
                kernel_width=kernel_width,
                crop=crop,
                max_iter=max_iter,
                device=sigpy.cpu_device,
                show_pbar=False,
            )
            sample_maps = app.run()
        maps.append(np.nan_to_num(sample_maps, nan=0.0, posinf=0.0, neginf=0.0))
    result = torch.from_numpy(np.stack(maps)).to(device=kspace.device, dtype=kspace.dtype)
    return result[0] if kspace.ndim == 3 else result
