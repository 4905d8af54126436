import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deepinv_lab.data.folders import SuperResolutionCollate, collate_superresolution
from deepinv_lab.data.images import BUILTIN_IMAGES, BuiltinPatches, load_builtin_images
from deepinv_lab.data.presets import (
    DEFAULT_SIGMA,
    BuiltinDenoisingDataModule,
    BuiltinSuperResolutionDataModule,
)
from deepinv_lab.data.samplers import SeededIndex
from deepinv_lab.data.simulation import SimulationCollate
from deepinv_lab.data.sources import BuiltinPhotos
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.noise import GaussianNoise

#: Keys that identify an item for the per-volume metrics and predict outputs.
ID_KEYS = {"volume_id", "slice_num", "fname"}
#: The physics' seed of an item's noise realisation (drawn even without noise).
NOISE_KEYS = {"noise_seed"}


def denoising(**kwargs) -> BuiltinDenoisingDataModule:
    return BuiltinDenoisingDataModule(**kwargs)


def superresolution(**kwargs) -> BuiltinSuperResolutionDataModule:
    return BuiltinSuperResolutionDataModule(**kwargs)


def split_of(module, split: str):
    return module.train_set if split == "train" else module.val_set


def test_split_is_disjoint_and_images_are_real():
    assert not set(BUILTIN_IMAGES["train"]) & set(BUILTIN_IMAGES["val"])
    for split in ("train", "val"):
        gray = load_builtin_images(split)
        rgb = load_builtin_images(split, grayscale=False)
        assert len(gray) == len(rgb) == len(BUILTIN_IMAGES[split])
        for g, c in zip(gray, rgb, strict=True):
            assert g.dtype == c.dtype == np.float32
            assert g.shape[0] == 1 and c.shape[0] == 3 and g.shape[1:] == c.shape[1:]
            assert min(g.shape[1:]) >= 300
            assert 0.0 <= g.min() and g.max() <= 1.0
            assert g.std() > 0.03  # not a flat frame
    # cached: the same arrays every call, read-only
    assert load_builtin_images("val")[0] is load_builtin_images("val")[0]
    assert not load_builtin_images("val")[0].flags.writeable


def test_grayscale_is_bt601_luma_of_rgb():
    index = BUILTIN_IMAGES["val"].index("chelsea.png")
    gray = load_builtin_images("val")[index]
    rgb = load_builtin_images("val", grayscale=False)[index]
    expected = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    np.testing.assert_allclose(gray[0], expected, atol=1e-6)
    camera = BUILTIN_IMAGES["val"].index("camera.png")  # a grayscale file: channels repeated
    repeated = load_builtin_images("val", grayscale=False)[camera]
    for channel in repeated:
        np.testing.assert_array_equal(channel, load_builtin_images("val")[camera][0])


@pytest.mark.parametrize("grayscale", [True, False])
def test_denoising_items_have_documented_shapes(grayscale):
    channels = 1 if grayscale else 3
    module = denoising(patch_size=32, grayscale=grayscale)
    for split in ("train", "val"):
        data = split_of(module, split)
        assert len(data) == len(BUILTIN_IMAGES[split]) * {"train": 64, "val": 8}[split]
        item = data[3]
        assert set(item) == {"y", "target", "max_value", "sigma"} | ID_KEYS | NOISE_KEYS
        assert item["y"].shape == item["target"].shape == (channels, 32, 32)
        assert item["y"].dtype == item["target"].dtype == torch.float32
        assert 0 <= item["target"].min() and item["target"].max() <= 1
        assert item["max_value"] == 1.0 and item["max_value"].shape == ()
        assert item["sigma"].shape == () and item["sigma"] == pytest.approx(DEFAULT_SIGMA)


def test_validation_items_are_fixed_training_items_vary():
    module = denoising(patch_size=32)
    val = module.val_set
    first, again = val[5], val[5]
    assert first.keys() == again.keys() and first["fname"] == again["fname"]
    for key in first.keys() - {"fname"}:
        torch.testing.assert_close(first[key], again[key], rtol=0, atol=0)
    # a fresh dataset with the same seed gives the same items, another seed other noise
    torch.testing.assert_close(denoising(patch_size=32).val_set[5]["y"], first["y"])
    assert not torch.equal(denoising(patch_size=32, seed=1).val_set[5]["y"], first["y"])
    train = module.train_set
    a, b = train[0], train[0]
    assert not torch.equal(a["target"], b["target"])  # new crop
    assert not torch.equal(a["y"] - a["target"], b["y"] - b["target"])  # new noise
    # ... unless the index carries the seed (the project's sampler): then reproducible
    c, d = train[SeededIndex(0, 7)], train[SeededIndex(0, 7)]
    torch.testing.assert_close(c["y"], d["y"], rtol=0, atol=0)
    assert not torch.equal(c["y"], train[SeededIndex(0, 8)]["y"])


def test_validation_crops_are_a_grid_one_crop_is_the_centre():
    data = denoising(patch_size=64, val_patches_per_image=1, sigma=0.0).val_set
    camera = load_builtin_images("val")[0]  # 512 x 512
    torch.testing.assert_close(data[0]["target"], torch.tensor(camera[:, 224:288, 224:288]))
    grid = BuiltinPhotos(patch_size=64, val_patches_per_image=4).split("val")
    assert sorted(grid.crops[:4]) == [(0, 0, 0), (0, 0, 448), (0, 448, 0), (0, 448, 448)]


def test_fixed_training_pool():
    """``train_size``: a fixed pool of distinct training crops (positions fixed by ``seed``)."""
    pool = BuiltinPhotos(patch_size=32).split("train", train_size=20)
    assert len(pool) == 20
    assert pool.crops == BuiltinPhotos(patch_size=32).split("train", train_size=20).crops
    assert pool.crops != BuiltinPhotos(patch_size=32, seed=3).split("train", train_size=20).crops
    data = denoising(patch_size=32, train_size=20, sigma=0.0).train_set
    assert len(data) == 20 and data.items.crops == pool.crops
    # the content of a pool patch is fixed up to one of the 8 flips/rotations
    reference = data[7]["target"]
    variants = [
        torch.rot90(reference.flip(-1) if f else reference, k, (-2, -1))
        for f in (0, 1)
        for k in range(4)
    ]
    for _ in range(3):
        target = data[7]["target"]  # read once: the generator expression would re-read it
        assert any(torch.equal(target, v) for v in variants)


def test_noise_statistics():
    data = denoising(patch_size=256, sigma=0.1, val_patches_per_image=1).val_set
    item = data[0]
    assert float((item["y"] - item["target"]).std()) == pytest.approx(0.1, rel=0.02)
    assert float((item["y"] - item["target"]).mean()) == pytest.approx(0.0, abs=0.002)
    clean = denoising(patch_size=32, sigma=0.0).val_set[1]
    torch.testing.assert_close(clean["y"], clean["target"], rtol=0, atol=0)


def test_sigma_range_draws_within_range():
    module = denoising(patch_size=64, sigma_range=(0.05, 0.15))
    for split in ("train", "val"):
        data = split_of(module, split)
        sigmas = torch.stack([data[i]["sigma"] for i in range(24)])
        assert ((sigmas >= 0.05) & (sigmas <= 0.15)).all()
        assert sigmas.std() > 0.01  # drawn, not constant
        item = data[0]  # the noise follows the drawn level
        measured = float((item["y"] - item["target"]).std())
        assert measured == pytest.approx(float(item["sigma"]), rel=0.1)


@pytest.mark.parametrize("filter", ["bicubic", "box"])
def test_superresolution_is_the_downsampling_system(filter):
    module = superresolution(patch_size=48, scale=3, filter=filter)
    for split in ("train", "val"):
        item = split_of(module, split)[2]
        assert set(item) == {"y", "target", "max_value"} | ID_KEYS | NOISE_KEYS
        assert item["target"].shape == (1, 48, 48) and item["y"].shape == (1, 16, 16)
        assert item["y"].dtype == torch.float32
        expected = Downsampling(3, filter)(item["target"][None])[0]
        torch.testing.assert_close(item["y"], expected, rtol=0, atol=0)
    rgb = superresolution(grayscale=False).val_set[0]
    assert rgb["target"].shape == (3, 96, 96) and rgb["y"].shape == (3, 24, 24)


def test_collate_denoising_builds_per_sample_noise():
    module = denoising(patch_size=32, sigma_range=(0.0, 0.2))
    samples = [module.val_set[i] for i in range(4)]
    assert isinstance(module.collate_fn, SimulationCollate)
    batch = module.collate_fn(samples)
    system = batch["system"]
    assert isinstance(system, GaussianNoise)
    assert batch["y"].shape == batch["target"].shape == (4, 1, 32, 32)
    assert batch["max_value"].shape == batch["sigma"].shape == (4,)
    expected = torch.stack([s["sigma"] for s in samples]).double()
    torch.testing.assert_close(system.sigma, expected)
    assert system.noise_sigma(batch["target"]).shape == (4, 1, 1, 1)


def test_collate_superresolution_shares_one_system():
    module = superresolution(patch_size=32, scale=2, filter="box")
    data, collate = module.val_set, module.collate_fn
    first = collate([data[0], data[1]])
    second = collate([data[2], data[3]])
    assert first["system"] is second["system"]
    assert first["system"].factor == 2 and first["system"].filter == "box"
    torch.testing.assert_close(first["system"](first["target"]), first["y"])
    assert first["max_value"].shape == (2,)
    restored = pickle.loads(pickle.dumps(collate))
    assert restored.physics.linear_system.factor == 2
    assert restored.physics.linear_system.filter == "box"
    # the super-resolution collate of the folder data, on these items
    assert collate_superresolution([data[0]], scale=2, filter="box")["y"].shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="scale"):
        SuperResolutionCollate(4)([data[0]])
    restored = pickle.loads(pickle.dumps(SuperResolutionCollate(2, "box")))
    assert restored.scale == 2 and restored.filter == "box"


def check_batch(batch, batch_size, channels, low, high):
    assert batch["y"].shape == (batch_size, channels, low, low)
    assert batch["target"].shape == (batch_size, channels, high, high)
    assert batch["max_value"].shape == (batch_size,)


def test_datamodules_yield_the_batch_contract():
    noisy = BuiltinDenoisingDataModule(batch_size=4, patch_size=32, sigma=0.1, train_size=10)
    assert len(noisy.train_set) == 10 and len(noisy.val_set) == 32
    for loader in (noisy.train_dataloader(), noisy.val_dataloader()):
        batch = next(iter(loader))
        check_batch(batch, 4, 1, 32, 32)
        assert isinstance(batch["system"], GaussianNoise)
        torch.testing.assert_close(batch["system"].sigma, torch.full((4,), 0.1).double())
    sr = BuiltinSuperResolutionDataModule(
        batch_size=2, patch_size=64, scale=4, grayscale=False, val_patches_per_image=1
    )
    assert len(sr.val_set) == 4 and len(sr.train_set) == 11 * 64
    for loader in (sr.train_dataloader(), sr.test_dataloader(), sr.predict_dataloader()):
        batch = next(iter(loader))
        check_batch(batch, 2, 3, 16, 64)
        torch.testing.assert_close(batch["system"](batch["target"]), batch["y"])


def test_loader_with_workers():
    sr = superresolution(patch_size=32, scale=2, patches_per_image=2)
    loader = DataLoader(sr.train_set, batch_size=11, num_workers=2, collate_fn=sr.collate_fn)
    batches = list(loader)
    assert len(batches) == 2 and all(b["system"].factor == 2 for b in batches)
    noisy = denoising(patch_size=32, patches_per_image=1)
    data = noisy.train_set
    loader = DataLoader(data, batch_size=11, num_workers=2, collate_fn=noisy.collate_fn)
    (batch,) = list(loader)
    assert isinstance(batch["system"], GaussianNoise) and batch["y"].shape == (11, 1, 32, 32)
    assert pickle.loads(pickle.dumps(data)).physics.noise.sigma == data.physics.noise.sigma


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BuiltinPhotos().split("test"), "split"),
        (lambda: denoising(patch_size=301), r"patch_size \(301\).*300.*chelsea"),
        (lambda: BuiltinPhotos(patch_size=428).split("train"), r"patch_size \(428\).*427"),
        (lambda: denoising(patch_size=0), "patch_size"),
        (lambda: denoising(sigma=-0.1), "sigma"),
        (lambda: denoising(sigma_range=(0.2, 0.1)), "sigma_range"),
        (lambda: denoising(sigma=0.1, sigma_range=(0, 0.1)), "sigma_range"),
        (lambda: denoising(val_patches_per_image=0), "val_patches_per_image"),
        (lambda: denoising(patches_per_image=0), "patches_per_image"),
        # the pool of the patches: a fixed pool is for the training split only
        (lambda: BuiltinPatches("val", 32, True, None, 5, 0), "num_patches"),
        (lambda: superresolution(patch_size=90, scale=4), r"multiple.*\(4\)"),
        (lambda: superresolution(scale=0), "scale"),
        (lambda: superresolution(filter="lanczos"), "filter"),
        (lambda: BuiltinDenoisingDataModule(batch_size=0), "batch_size"),
        (lambda: BuiltinDenoisingDataModule(train_size=0), r"data\.train_size must be"),
        (lambda: BuiltinDenoisingDataModule(train_size=5, patches_per_image=3), "train_size"),
        (lambda: BuiltinSuperResolutionDataModule(patch_size=50), "patch_size"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
