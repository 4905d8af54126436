"""fastMRI HDF5 slices: header parsing, masks (equal to fastMRI's), subsets, index cache, errors,
batching and the DataModule, on small synthetic files in the real layout (tests/fastmri_files.py).
"""

import hashlib
import itertools
import os
import pickle
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fastmri.data import subsample as fastmri_subsample
from fastmri.data.mri_data import SliceDataset
from fastmri.data.transforms import VarNetDataTransform
from fastmri_files import write_fastmri_dir, write_fastmri_volume
from torch.utils.data import DataLoader

import deepinv_lab.data.fastmri.index as fastmri_index
from deepinv_lab.data.fastmri import (
    FastMRIDataError,
    FastMRISliceDataset,
    collate_fastmri,
    parse_ismrmrd_header,
    read_volume_info,
)
from deepinv_lab.data.fastmri_datamodule import FastMRIDataModule
from deepinv_lab.data.samplers import SeededIndex
from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c
from deepinv_lab.systems.mri import MultiCoilFourier, SingleCoilMRI


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """Index caches go to a temporary folder (outside the data), never to ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("DEEPINV_LAB_CACHE_DIR", str(folder))
    return folder


def _dataset(root, **kwargs) -> FastMRISliceDataset:
    return FastMRISliceDataset(root, **kwargs)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --- header and items ------------------------------------------------------------------------


@pytest.mark.parametrize("width,padding", [(24, 2), (25, 3), (20, 0)])
def test_header_geometry_equals_fastmri_slice_dataset(tmp_path, width, padding):
    write_fastmri_volume(
        tmp_path / "file1000.h5", width=width, padding=padding, recon_size=(12, 14)
    )
    expected = SliceDataset(tmp_path, "multicoil").raw_samples[0].metadata
    info = read_volume_info(tmp_path / "file1000.h5")
    for key in ("encoding_size", "recon_size", "padding_left", "padding_right"):
        assert getattr(info, key) == expected[key], key
    assert info.num_slices == 3 and info.kspace_shape == (4, 32, width)
    assert info.target_shapes == {"reconstruction_rss": (12, 14)}
    assert info.attrs["acquisition"] == "CORPD_FBK"
    assert info.attrs["max"] == pytest.approx(float(expected["max"]))


@pytest.mark.parametrize("challenge", ["multicoil", "singlecoil"])
def test_items_have_the_documented_shapes_and_dtypes(tmp_path, challenge):
    write_fastmri_dir(tmp_path / "d", 2, challenge=challenge, num_slices=2)
    dataset = _dataset(tmp_path / "d", challenge=challenge, split="val")
    assert len(dataset) == 4
    item = dataset[3]
    coils = 4 if challenge == "multicoil" else 1
    assert item["y"].shape == (coils, 32, 24) and item["y"].dtype == torch.complex64
    assert item["mask"].shape == (1, 1, 24) and item["mask"].dtype == torch.float32
    assert item["target"].shape == (1, 16, 16) and item["target"].dtype == torch.float32
    assert item["max_value"].dtype == torch.float32 and item["max_value"].ndim == 0
    assert int(item["slice_num"]) == 1 and int(item["volume_id"]) == 1
    assert item["fname"] == "file1001.h5" and item["acquisition"] == "CORPD_FBK"
    assert int(item["num_low_frequencies"]) == round(24 * 0.08)
    # the unacquired columns are never sampled, and y = mask * kspace
    assert (item["mask"][..., :2] == 0).all() and (item["mask"][..., -2:] == 0).all()
    assert (item["y"][..., item["mask"][0, 0] == 0] == 0).all()


@pytest.mark.parametrize(
    "mask_type,fastmri_class",
    [
        ("random", fastmri_subsample.RandomMaskFunc),
        ("equispaced_fraction", fastmri_subsample.EquispacedMaskFractionFunc),
    ],
)
def test_val_items_equal_fastmri_varnet_transform(tmp_path, mask_type, fastmri_class):
    write_fastmri_dir(tmp_path, 2, num_slices=2, width=30, padding=3)
    dataset = _dataset(tmp_path, split="val", mask_type=mask_type, accelerations=(4,))
    reference = SliceDataset(
        tmp_path,
        "multicoil",
        transform=VarNetDataTransform(fastmri_class([0.08], [4]), use_seed=True),
    )
    assert len(dataset) == len(reference)
    for i in range(len(dataset)):
        item, expected = dataset[i], reference[i]
        assert item["fname"] == expected.fname and int(item["slice_num"]) == expected.slice_num
        assert torch.equal(item["mask"], expected.mask.float().reshape(1, 1, -1))
        assert torch.equal(item["y"], torch.view_as_complex(expected.masked_kspace))
        assert torch.equal(item["target"][0], expected.target)
        assert float(item["max_value"]) == pytest.approx(expected.max_value)
        assert int(item["num_low_frequencies"]) == expected.num_low_frequencies
    # picklable (spawned workers, DDP) and fixed per volume: the same at every read and slice
    assert torch.equal(pickle.loads(pickle.dumps(dataset))[2]["y"], dataset[2]["y"])
    assert torch.equal(dataset[0]["mask"], dataset[0]["mask"])
    assert torch.equal(dataset[0]["mask"], dataset[1]["mask"])


def test_val_mask_equals_fastmri_mask_func_with_the_file_name_seed(tmp_path):
    write_fastmri_volume(tmp_path / "file1234.h5", width=40, padding=0)
    item = _dataset(tmp_path, split="val", center_fractions=(0.08,), accelerations=(8,))[0]
    expected, _ = fastmri_subsample.RandomMaskFunc([0.08], [8])(
        (1, 32, 40, 2), seed=tuple(map(ord, "file1234.h5"))
    )
    assert torch.equal(item["mask"], expected.reshape(1, 1, 40))


def test_train_masks_vary_but_are_reproducible_given_a_seeded_index(tmp_path):
    write_fastmri_volume(tmp_path / "file1000.h5", width=40)
    dataset = _dataset(tmp_path, split="train")
    masks = [dataset[0]["mask"] for _ in range(6)]
    assert any(not torch.equal(masks[0], m) for m in masks[1:])
    a, b = dataset[SeededIndex(0, 123)], dataset[SeededIndex(0, 123)]
    assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["y"], b["y"])
    others = [dataset[SeededIndex(0, seed)]["mask"] for seed in range(124, 130)]
    assert any(not torch.equal(a["mask"], m) for m in others)


def test_test_files_use_their_stored_mask_and_have_no_target(tmp_path):
    write_fastmri_dir(tmp_path, 2, with_rss=False, with_mask=True, num_low_frequency=4)
    dataset = _dataset(tmp_path, split="test")
    item = dataset[0]
    with h5py.File(tmp_path / "file1000.h5", "r") as f:
        stored = torch.from_numpy(f["mask"][()].astype(np.float32))
        kspace = torch.from_numpy(f["kspace"][0])
    assert torch.equal(item["mask"].flatten(), stored)
    assert torch.equal(item["y"], kspace)
    assert "target" not in item and "max_value" not in item
    assert int(item["num_low_frequencies"]) == 4
    batch = collate_fastmri([dataset[0], dataset[1]])
    assert batch["y"].shape == (2, 4, 32, 24) and batch["fname"] == ["file1000.h5"] * 2
    # the file's ACS width travels on the System, where VarNet's sensitivity network reads it
    assert batch["system"].num_low_frequencies.tolist() == [4, 4]


# --- selection -------------------------------------------------------------------------------


def test_acquisition_filter(tmp_path):
    write_fastmri_dir(tmp_path, 4, acquisitions=("CORPD_FBK", "CORPDFS_FBK"), num_slices=2)
    dataset = _dataset(tmp_path, split="val", acquisitions=["CORPDFS_FBK"])
    assert len(dataset) == 4
    assert {dataset[i]["fname"] for i in range(4)} == {"file1001.h5", "file1003.h5"}
    assert {dataset[i]["acquisition"] for i in range(4)} == {"CORPDFS_FBK"}
    with pytest.raises(ValueError, match=r"AXT2.*CORPDFS_FBK', 'CORPD_FBK"):
        _dataset(tmp_path, split="val", acquisitions=["AXT2"])


def test_sample_rate_and_volume_sample_rate(tmp_path):
    write_fastmri_dir(tmp_path, 4, num_slices=5)
    assert len(_dataset(tmp_path, sample_rate=0.5)) == 10
    by_volume = _dataset(tmp_path, volume_sample_rate=0.5)
    assert len(by_volume) == 10 and len({v for v, _ in by_volume.samples}) == 2
    assert by_volume.samples == _dataset(tmp_path, volume_sample_rate=0.5).samples
    with pytest.raises(ValueError, match="at most one"):
        _dataset(tmp_path, sample_rate=0.5, volume_sample_rate=0.5)
    with pytest.raises(ValueError, match=r"sample_rate must be in \(0, 1\]"):
        _dataset(tmp_path, sample_rate=1.5)


def test_train_size_is_exact_reproducible_nested_and_checked(tmp_path):
    write_fastmri_dir(tmp_path, 5, num_slices=4)
    sizes = [1, 3, 7, 20]
    subsets = [set(_dataset(tmp_path, train_size=n, seed=3).samples) for n in sizes]
    assert [len(s) for s in subsets] == sizes
    assert all(small <= large for small, large in itertools.pairwise(subsets))  # nested
    assert subsets[1] == set(_dataset(tmp_path, train_size=3, seed=3).samples)
    assert subsets[2] != set(_dataset(tmp_path, train_size=7, seed=4).samples)
    volumes = _dataset(tmp_path, train_size=2, train_size_unit="volumes", seed=3)
    assert len(volumes) == 8 and len({v for v, _ in volumes.samples}) == 2
    with pytest.raises(ValueError, match=r"train_size=21 slices.*only 20 slices"):
        _dataset(tmp_path, train_size=21)
    with pytest.raises(ValueError, match=r"train_size=6 volumes.*only 5 volumes"):
        _dataset(tmp_path, train_size=6, train_size_unit="volumes")


# --- index cache -----------------------------------------------------------------------------


def test_index_cache_hit_and_invalidation(tmp_path, monkeypatch, cache_dir):
    data = tmp_path / "data"
    files = write_fastmri_dir(data, 3, num_slices=2)
    reads = []
    original = fastmri_index.read_volume_info
    monkeypatch.setattr(
        fastmri_index, "read_volume_info", lambda path: reads.append(path) or original(path)
    )
    first = _dataset(data)
    assert len(reads) == 3 and first.cache_file.is_file()
    assert first.cache_file.is_relative_to(cache_dir)
    assert sorted(p.name for p in data.iterdir()) == [f.name for f in files]  # nothing written

    reads.clear()
    second = _dataset(data)
    assert reads == [] and second.volumes == first.volumes

    write_fastmri_volume(files[1], num_slices=5, seed=9)  # changed size and mtime
    reads.clear()
    third = _dataset(data)
    assert [Path(p).name for p in reads] == ["file1001.h5"] and len(third) == 9

    # same size, newer mtime: re-read as well
    stat = os.stat(files[0])
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    reads.clear()
    _dataset(data)
    assert [Path(p).name for p in reads] == ["file1000.h5"]

    reads.clear()
    _dataset(data, use_dataset_cache=False)
    assert len(reads) == 3


def test_a_corrupt_index_cache_is_rebuilt(tmp_path):
    write_fastmri_dir(tmp_path / "data", 1)
    cache = tmp_path / "index.json"
    cache.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        dataset = _dataset(tmp_path / "data", cache_file=cache)
    assert len(dataset) == 3 and '"version": 1' in cache.read_text()


# --- errors ----------------------------------------------------------------------------------


def test_corrupt_file_error_names_the_file(tmp_path):
    files = write_fastmri_dir(tmp_path, 2)
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 2])
    with pytest.raises(FastMRIDataError, match=r"file1001\.h5.*re-download"):
        _dataset(tmp_path)


@pytest.mark.parametrize("key", ["kspace", "ismrmrd_header", "reconstruction_rss"])
def test_missing_dataset_error_names_key_file_and_keys(tmp_path, key):
    path = write_fastmri_volume(tmp_path / "file1000.h5")
    with h5py.File(path, "a") as f:  # the test damages its own file
        del f[key]
    with pytest.raises(FastMRIDataError, match=rf"file1000\.h5.*{key}") as error:
        _dataset(tmp_path, split="val")
    assert "kspace" in str(error.value) or key == "kspace"


def test_unparsable_header_names_the_file(tmp_path):
    path = write_fastmri_volume(tmp_path / "file1000.h5")
    with h5py.File(path, "a") as f:
        del f["ismrmrd_header"]
        f["ismrmrd_header"] = b"<ismrmrdHeader"
    with pytest.raises(FastMRIDataError, match=r"file1000\.h5.*not valid XML"):
        _dataset(tmp_path)
    with pytest.raises(FastMRIDataError, match=r"header\.xml.*encodingLimits"):
        parse_ismrmrd_header(
            b'<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><encodedSpace>'
            b"<matrixSize><x>1</x><y>2</y><z>1</z></matrixSize></encodedSpace><reconSpace>"
            b"<matrixSize><x>1</x><y>2</y><z>1</z></matrixSize></reconSpace></encoding>"
            b"</ismrmrdHeader>",
            "header.xml",
        )


def test_empty_or_missing_folder_and_wrong_challenge(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no data")
    with pytest.raises(FastMRIDataError, match=r"empty has no \.h5 files"):
        _dataset(tmp_path / "empty")
    with pytest.raises(FastMRIDataError, match="missing"):
        _dataset(tmp_path / "nowhere")
    write_fastmri_volume(tmp_path / "single" / "file1000.h5", challenge="singlecoil")
    with pytest.raises(FastMRIDataError, match="challenge='singlecoil'"):
        _dataset(tmp_path / "single", challenge="multicoil")


def test_files_are_never_modified(tmp_path):
    write_fastmri_dir(tmp_path / "data", 2, num_slices=2)
    before = _digest(tmp_path / "data")
    for split in ("train", "val", "test"):
        dataset = _dataset(tmp_path / "data", split=split)
        for i in range(len(dataset)):
            dataset[i]
    assert _digest(tmp_path / "data") == before


def test_worker_error_for_a_file_corrupted_after_indexing_names_file_and_slice(tmp_path):
    files = write_fastmri_dir(tmp_path, 2, num_slices=2)
    dataset = _dataset(tmp_path, split="val")
    files[1].write_bytes(b"\0" * 2048)  # broken after indexing
    loader = DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=collate_fastmri)
    # Caught by hand, not with pytest.raises: a kept traceback keeps the loader's iterator alive,
    # and shutting its workers down later costs torch's 5 s join timeout per worker.
    try:
        list(loader)
    except Exception as caught:
        kind, message = type(caught), str(caught)
    else:
        pytest.fail("the corrupted file was read without error")
    assert issubclass(kind, (FastMRIDataError, RuntimeError)) and not issubclass(kind, KeyError)
    assert re.search(r"file1001\.h5, slice \d: reading failed", message), message


# --- batching --------------------------------------------------------------------------------


def test_collate_builds_multicoil_fourier_consistent_with_the_measurements(tmp_path):
    files = write_fastmri_dir(tmp_path, 1, num_slices=2)
    dataset = _dataset(tmp_path, split="val")
    batch = collate_fastmri([dataset[0], dataset[1]])
    system = batch["system"]
    assert isinstance(system, MultiCoilFourier) and system.mask.shape == (2, 1, 1, 24)
    assert torch.equal(system.num_low_frequencies, batch["num_low_frequencies"])
    assert batch["y"].shape == (2, 4, 32, 24) and batch["target"].shape == (2, 1, 16, 16)
    assert batch["fname"] == ["file1000.h5"] * 2 and batch["volume_id"].tolist() == [0, 0]
    with h5py.File(files[0], "r") as f:
        coil_images = ifft2c(torch.from_numpy(f["kspace"][:2]))
    torch.testing.assert_close(system(coil_images), batch["y"], atol=1e-4, rtol=1e-4)
    assert system.adjoint(batch["y"]).shape == (2, 4, 32, 24)


def test_collate_singlecoil_and_shape_mismatch(tmp_path):
    write_fastmri_dir(tmp_path / "s", 1, challenge="singlecoil", num_slices=2)
    dataset = _dataset(tmp_path / "s", challenge="singlecoil", split="val")
    batch = collate_fastmri([dataset[0], dataset[1]], challenge="singlecoil")
    assert isinstance(batch["system"], SingleCoilMRI) and batch["y"].shape == (2, 1, 32, 24)
    write_fastmri_volume(tmp_path / "m" / "file1000.h5", width=24)
    write_fastmri_volume(tmp_path / "m" / "file1001.h5", width=28, num_coils=3)
    mixed = _dataset(tmp_path / "m", split="val")
    with pytest.raises(ValueError, match=r"\(3, 32, 28\), \(4, 32, 24\)"):
        collate_fastmri([mixed[0], mixed[3]])


def test_bucket_keys_come_from_the_index_without_reading_files(tmp_path, monkeypatch):
    write_fastmri_volume(tmp_path / "file1000.h5", width=24, num_slices=2)
    write_fastmri_volume(tmp_path / "file1001.h5", width=28, num_coils=3, num_slices=1)
    dataset = _dataset(tmp_path, split="val")
    items = [dataset[i] for i in range(len(dataset))]

    def no_reads(*args, **kwargs):
        raise AssertionError("bucket_keys opened a file")

    monkeypatch.setattr(h5py, "File", no_reads)
    keys = dataset.bucket_keys()
    assert keys == [(*i["y"].shape, *i["target"].shape[-2:]) for i in items]
    assert keys[0] == keys[1] != keys[2]


# --- DataModule ------------------------------------------------------------------------------


def test_datamodule_finds_split_folders_and_loads_batches(tmp_path):
    write_fastmri_dir(tmp_path / "knee_multicoil_train", 3, num_slices=2)
    write_fastmri_dir(tmp_path / "knee_multicoil_val", 1, num_slices=2, first_id=2000)
    write_fastmri_dir(
        tmp_path / "knee_multicoil_test", 1, with_rss=False, with_mask=True, first_id=3000
    )
    module = FastMRIDataModule(root=str(tmp_path), batch_size=2, train_size=4, seed=1)
    assert len(module.train_set) == 4 and len(module.val_set) == 2 and len(module.test_set) == 3
    batch = next(iter(module.train_dataloader()))
    assert isinstance(batch["system"], MultiCoilFourier) and batch["y"].shape == (2, 4, 32, 24)
    val = next(iter(module.val_dataloader()))
    assert val["fname"] == ["file2000.h5"] * 2
    assert "target" not in next(iter(module.test_dataloader()))

    explicit = FastMRIDataModule(
        train_path=str(tmp_path / "knee_multicoil_train"),
        val_path=str(tmp_path / "knee_multicoil_val"),
        cache_dir=str(tmp_path / "mycache"),
    )
    assert len(explicit.train_set) == 6 and explicit.test_set is None
    assert len(list((tmp_path / "mycache").glob("*.json"))) == 2


def test_datamodule_missing_folders_fail_at_construction(tmp_path):
    write_fastmri_dir(tmp_path / "multicoil_train", 1)
    with pytest.raises(UserError, match=r"no val data.*multicoil_val"):
        FastMRIDataModule(root=str(tmp_path))
    with pytest.raises(UserError, match="data.train_path"):
        FastMRIDataModule(val_path=str(tmp_path / "multicoil_train"))
    with pytest.raises(UserError, match="is not a folder"):
        FastMRIDataModule(root=str(tmp_path / "nowhere"))
    shutil.copytree(tmp_path / "multicoil_train", tmp_path / "multicoil_val")
    module = FastMRIDataModule(root=str(tmp_path), challenge="multicoil")
    assert len(module.val_set) == 3
