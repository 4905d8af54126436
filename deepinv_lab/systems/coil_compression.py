"""Coil compression: multicoil k-space projected onto its strongest virtual coils (SVD/PCA;
Huang et al., MRI 26:133, 2008; Buehrer et al., MRM 57:1131, 2007).

The measured samples ``y`` (``coils x samples``) have the coil covariance ``C = y y^H``; its
eigenvectors ``U`` with the largest eigenvalues span the virtual coils, ``y_v = U_v^H y``. The
projection is the same at every k-space location, so it commutes with the sampling mask and the
Fourier transform: compressing masked k-space is masking compressed k-space, and the virtual
coils are ordinary coils to every Recon (coil maps, GRAPPA, VarNet). Unacquired (zero) samples add
nothing to ``C``, so undersampled k-space gives its compression from what was measured.
"""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError


def coil_compression_matrix(kspace: torch.Tensor, num_coils: int) -> torch.Tensor:
    """The compression ``U_v^H`` ``(B, num_coils, coils)`` of each sample of complex k-space
    ``(B, coils, ...)``: the leading eigenvectors of its coil covariance, strongest first."""
    if not kspace.is_complex() or kspace.ndim < 3:
        raise UserError(
            "coil compression expects complex k-space (B, coils, ...), got dtype "
            f"{kspace.dtype} with shape {tuple(kspace.shape)}"
        )
    coils = kspace.shape[1]
    if isinstance(num_coils, bool) or not isinstance(num_coils, int) or not 1 <= num_coils:
        raise UserError(f"coil compression: num_coils must be an integer >= 1, got {num_coils!r}")
    if num_coils > coils:
        raise UserError(
            f"coil compression: num_coils {num_coils} is more than the {coils} coils of k-space "
            f"of shape {tuple(kspace.shape)}"
        )
    samples = kspace.flatten(2)
    covariance = samples @ samples.mH  # (B, coils, coils), Hermitian
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    return vectors.flip(-1)[..., :num_coils].mH.resolve_conj()


def compress_coils(kspace: torch.Tensor, num_coils: int) -> torch.Tensor:
    """``kspace`` ``(B, coils, ...)`` projected onto its ``num_coils`` strongest virtual coils
    (module docstring), ``(B, num_coils, ...)``; the identity rotation is not removed, so
    ``num_coils == coils`` gives a unitary mix of the coils (the same root-sum-of-squares)."""
    matrix = coil_compression_matrix(kspace, num_coils)
    return (matrix @ kspace.flatten(2)).reshape(kspace.shape[0], num_coils, *kspace.shape[2:])
