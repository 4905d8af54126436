"""Coil compression (SVD/PCA of the coil covariance) against numpy's SVD and its invariants, and as
a data step of the fastMRI path."""

from pathlib import Path

import numpy as np
import pytest
import torch

from deepinv_lab.data.fastmri_datamodule import FastMRIDataModule
from deepinv_lab.data.physics import CoilCompression, EspiritEstimate
from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.systems.coil_compression import coil_compression_matrix, compress_coils
from deepinv_lab.systems.mri import MultiCoilMRI
from tests.fastmri_files import write_brain_volume


def _kspace(batch=2, coils=6, rank=3, shape=(12, 10), dtype=torch.complex128):
    """k-space of ``rank`` independent sources mixed into ``coils`` coils, plus a little noise."""
    generator = torch.Generator().manual_seed(0)
    sources = torch.randn(batch, rank, *shape, dtype=dtype, generator=generator)
    mixing = torch.randn(batch, coils, rank, dtype=dtype, generator=generator)
    noise = 1e-3 * torch.randn(batch, coils, *shape, dtype=dtype, generator=generator)
    return (mixing @ sources.flatten(2)).reshape(batch, coils, *shape) + noise


def test_the_compression_spans_numpys_leading_singular_vectors():
    kspace = _kspace()
    matrix = coil_compression_matrix(kspace, 3)
    assert matrix.shape == (2, 3, 6)
    torch.testing.assert_close(matrix @ matrix.mH, torch.eye(3, dtype=matrix.dtype).expand(2, 3, 3))
    for sample, ours in zip(kspace.numpy(), matrix.numpy(), strict=True):
        u, _, _ = np.linalg.svd(sample.reshape(6, -1), full_matrices=False)
        np.testing.assert_allclose(ours.conj().T @ ours, u[:, :3] @ u[:, :3].conj().T, atol=1e-10)


def test_compression_keeps_the_energy_of_low_rank_data_and_commutes_with_the_mask():
    kspace = _kspace()
    compressed = compress_coils(kspace, 3)
    kept = compressed.abs().pow(2).sum() / kspace.abs().pow(2).sum()
    assert kept > 0.9999
    same = compress_coils(kspace, 6)  # all coils: a unitary mix, the same root-sum-of-squares
    torch.testing.assert_close(rss(ifft2c(same), dim=1), rss(ifft2c(kspace), dim=1))
    mask = (torch.rand(2, 1, 1, 10, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    matrix = coil_compression_matrix(kspace * mask, 3)
    masked_then = compress_coils(kspace * mask, 3)
    then_masked = (matrix @ kspace.flatten(2)).reshape(2, 3, 12, 10) * mask
    torch.testing.assert_close(masked_then, then_masked)


def test_bad_input_names_the_shapes():
    with pytest.raises(UserError, match=r"num_coils 7 is more than the 6 coils .*\(2, 6, 12, 10\)"):
        compress_coils(_kspace(), 7)
    with pytest.raises(UserError, match="complex k-space"):
        compress_coils(torch.zeros(2, 6, 4, 4), 2)
    with pytest.raises(UserError, match="num_coils must be an integer >= 1"):
        CoilCompression(0)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("compressed")
    write_brain_volume(base / "multicoil_train" / "file1.h5", [70], (128, 112), (64, 64), 12)
    write_brain_volume(base / "multicoil_val" / "file2.h5", [95], (128, 112), (64, 64), 12)
    return base


def test_fastmri_batches_carry_the_virtual_coils_and_their_maps(root, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPINV_LAB_CACHE_DIR", str(tmp_path))
    common = dict(center_fractions=[0.16], accelerations=[4], estimate_maps=EspiritEstimate())
    data = FastMRIDataModule(str(root), compress_coils=CoilCompression(4), **common)
    batch = next(iter(data.val_dataloader()))
    assert batch["y"].shape[1] == 4 and batch["coil_maps"].shape[1] == 4
    assert isinstance(batch["system"], MultiCoilMRI)
    full = FastMRIDataModule(str(root), **common).val_set[0]["y"]
    # 12 smooth birdcage coils are nearly rank 4: the virtual coils keep 99% of the energy
    assert batch["y"].abs().pow(2).sum() / full.abs().pow(2).sum() > 0.99
    with pytest.raises(UserError, match="fewer than the 16 virtual coils"):
        FastMRIDataModule(str(root), compress_coils=CoilCompression(16), **common).val_set[0]
