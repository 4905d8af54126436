import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from deepinv_lab.data.folder_datamodules import (
    ImageFolderDenoisingDataModule,
    PairedSRDataModule,
    deeprock_sr_folders,
)
from deepinv_lab.data.folders import (
    ImageFolder,
    PairedCollate,
    PairedFolder,
    collate_denoising,
    collate_paired,
)
from deepinv_lab.data.image_files import IMAGE_EXTENSIONS, find_images, read_image
from deepinv_lab.data.samplers import SeededIndex
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.noise import GaussianNoise

RNG = np.random.default_rng(0)


def _save(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return path


def _gray(h, w):
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _hashes(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def tree(tmp_path):
    """A folder of mixed images in nested class folders, plus files that are not images."""
    root = tmp_path / "images"
    pixels = {
        "n01/b.png": _gray(40, 48),
        "n01/sub/a.PNG": _rgb(36, 44),
        "n02/c.tif": (RNG.integers(0, 65536, (34, 40))).astype(np.uint16),
        "d.jpg": _rgb(40, 40),
        "e.Jpeg": _gray(33, 35),
        "f.bmp": _rgb(32, 32),
    }
    for name, array in pixels.items():
        _save(root / name, array)
    (root / "notes.txt").write_text("not an image")
    (root / "._d.jpg").write_bytes(b"AppleDouble garbage")  # hidden: skipped
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(b"garbage")  # hidden folder: skipped
    return root, pixels


def test_discovery_is_recursive_sorted_and_filtered(tree):
    root, pixels = tree
    files = find_images(root)
    names = [p.relative_to(root.resolve()).as_posix() for p in files]
    assert names == ["d.jpg", "e.Jpeg", "f.bmp", "n01/b.png", "n01/sub/a.PNG", "n02/c.tif"]
    assert sorted(pixels) == sorted(names)
    only_png = find_images(root, extensions=["PNG"])
    assert [p.name for p in only_png] == ["b.png", "a.PNG"]
    assert set(IMAGE_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
    data = ImageFolder(root, split="val", patch_size=32)
    assert data.names == names and len(data) == 6


def test_intensities_grayscale_rgb_and_16_bit(tree):
    root, pixels = tree
    gray = read_image(root / "n01/b.png")
    assert gray.shape == (1, 40, 48) and gray.dtype == np.float32
    np.testing.assert_array_equal(gray[0], pixels["n01/b.png"].astype(np.float32) / 255)
    rgb = read_image(root / "n01/sub/a.PNG", grayscale=False)
    np.testing.assert_array_equal(rgb, pixels["n01/sub/a.PNG"].transpose(2, 0, 1) / np.float32(255))
    luma = read_image(root / "n01/sub/a.PNG")
    np.testing.assert_allclose(luma[0], 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], atol=1e-6)
    repeated = read_image(root / "n01/b.png", grayscale=False)
    assert repeated.shape == (3, 40, 48) and (repeated == gray).all()
    sixteen = read_image(root / "n02/c.tif")
    np.testing.assert_allclose(sixteen[0], pixels["n02/c.tif"] / 65535.0, rtol=0, atol=1e-7)
    path = _save(root.parent / "p16.png", pixels["n02/c.tif"])
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(read_image(path), sixteen)
    jpeg = read_image(root / "d.jpg", grayscale=False)
    assert jpeg.shape == (3, 40, 40) and 0 <= jpeg.min() and jpeg.max() <= 1


def test_validation_items_are_fixed_centre_crops(tree):
    root, _ = tree
    data = ImageFolder(root, split="val", patch_size=32, sigma=0.1, grayscale=False)
    item = data[3]  # n01/b.png, 40 x 48
    assert set(item) == {"y", "target", "max_value", "sigma", "volume_id", "slice_num", "fname"}
    assert item["fname"] == "n01/b.png" and int(item["volume_id"]) == 3
    assert int(item["slice_num"]) == 0 and item["volume_id"].dtype == torch.int64
    assert item["y"].shape == item["target"].shape == (3, 32, 32)
    image = read_image(root / "n01/b.png", grayscale=False)
    np.testing.assert_array_equal(item["target"].numpy(), image[:, 4:36, 8:40])
    again = ImageFolder(root, split="val", patch_size=32, sigma=0.1, grayscale=False)[3]
    assert torch.equal(item["y"], again["y"]) and torch.equal(item["y"], data[3]["y"])
    other_seed = ImageFolder(root, split="val", patch_size=32, sigma=0.1, seed=1)[3]
    assert not torch.equal(item["y"][:1], other_seed["y"])
    whole = ImageFolder(root, split="val", patch_size=None)
    assert whole[3]["target"].shape == (1, 40, 48)
    assert whole.bucket_keys()[3] == (40, 48) and data.bucket_keys() is None
    grid = ImageFolder(root, split="val", patch_size=32, patches_per_image=4)
    assert len(grid) == 24 and [int(grid[i]["slice_num"]) for i in range(12, 16)] == [0, 1, 2, 3]
    assert {int(grid[i]["volume_id"]) for i in range(12, 16)} == {3}


def _is_crop(patch: np.ndarray, image: np.ndarray) -> bool:
    size = patch.shape[-1]
    return any(
        np.array_equal(image[:, top : top + size, left : left + size], patch)
        for top in range(image.shape[1] - size + 1)
        for left in range(image.shape[2] - size + 1)
    )


def test_training_crops_reproducible_with_seeded_index(tree):
    root, _ = tree
    data = ImageFolder(root, patch_size=16, sigma_range=(0.0, 0.2), augment=False)
    first, again = data[SeededIndex(3, 7)], data[SeededIndex(3, 7)]
    for key in ("y", "target", "sigma"):
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["target"], data[SeededIndex(3, 8)]["target"])
    torch.manual_seed(0)
    assert not torch.equal(data[3]["y"], data[3]["y"])  # global RNG: fresh draws
    image = read_image(root / "n01/b.png")
    for seed in range(5):
        assert _is_crop(data[SeededIndex(3, seed)]["target"].numpy(), image)
    # augmentation: a flip/rotation of a crop, same draws with the same index
    augmented = ImageFolder(root, patch_size=16)
    patches = [augmented[SeededIndex(3, s)]["target"].numpy() for s in range(12)]
    plain = [_is_crop(p, image) for p in patches]
    assert not all(plain)
    for p in patches:
        assert any(
            _is_crop(np.rot90(q, k, axes=(1, 2)), image)
            for q in (p, p[:, :, ::-1])
            for k in range(4)
        )


def test_train_size_is_exact_nested_and_checked(tree):
    root, _ = tree
    sizes = {n: ImageFolder(root, patch_size=16, num_images=n).indices for n in (1, 3, 5, 6)}
    assert [len(sizes[n]) for n in (1, 3, 5, 6)] == [1, 3, 5, 6]
    assert set(sizes[1]) <= set(sizes[3]) <= set(sizes[5]) <= set(sizes[6])
    assert ImageFolder(root, patch_size=16, num_images=3).indices == sizes[3]
    assert len(ImageFolder(root, patch_size=16, num_images=3, patches_per_image=4)) == 12
    other = [ImageFolder(root, patch_size=16, num_images=3, seed=s).indices for s in range(6)]
    assert len({tuple(o) for o in other}) > 1
    with pytest.raises(ValueError, match=r"7.*6 images"):
        ImageFolder(root, patch_size=16, num_images=7)


def test_noise_statistics(tmp_path):
    root = tmp_path / "flat"
    for i in range(4):
        _save(root / f"{i}.png", np.full((64, 64), 100 + i, dtype=np.uint8))
    fixed = ImageFolder(root, patch_size=64, sigma=0.1)
    items = [fixed[SeededIndex(i % 4, i)] for i in range(8)]
    residual = torch.stack([item["y"] - item["target"] for item in items])
    assert abs(residual.std().item() - 0.1) < 0.005 and abs(residual.mean().item()) < 0.005
    assert all(float(item["sigma"]) == pytest.approx(0.1) for item in items)
    ranged = ImageFolder(root, patch_size=16, sigma_range=(0.05, 0.3))
    sigmas = [float(ranged[SeededIndex(0, s)]["sigma"]) for s in range(40)]
    assert min(sigmas) >= 0.05 and max(sigmas) <= 0.3 and np.std(sigmas) > 0.03
    item = ranged[SeededIndex(0, 3)]
    assert abs((item["y"] - item["target"]).std().item() - float(item["sigma"])) < 0.3 * float(
        item["sigma"]
    )
    val = ImageFolder(root, split="val", patch_size=16, sigma_range=(0.05, 0.3))
    assert float(val[1]["sigma"]) == float(val[1]["sigma"])
    assert len({float(val[i]["sigma"]) for i in range(4)}) == 4
    batch = collate_denoising([fixed[0], fixed[1]])
    assert isinstance(batch["system"], GaussianNoise) and batch["fname"] == ["0.png", "1.png"]
    assert batch["volume_id"].tolist() == [0, 1]


def test_bad_arguments(tree):
    root, _ = tree
    with pytest.raises(ValueError, match=r"smaller than patch_size \(34\).*e\.Jpeg \(33 x 35\)"):
        ImageFolder(root, patch_size=34)
    with pytest.raises(ValueError, match="either sigma"):
        ImageFolder(root, sigma=0.1, sigma_range=(0, 1))
    with pytest.raises(ValueError, match="validation/test only"):
        ImageFolder(root, patch_size=None)
    with pytest.raises(ValueError, match=r"patches_per_image \(2\) must be 1 with patch_size=None"):
        ImageFolder(root, split="val", patch_size=None, patches_per_image=2)
    with pytest.raises(ValueError, match="split"):
        ImageFolder(root, split="training")


def test_empty_folder_and_corrupt_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images found under .*empty.*\.png.*\.tiff"):
        ImageFolder(empty)
    with pytest.raises(UserError, match="missing"):
        ImageFolder(tmp_path / "missing")
    root = tmp_path / "corrupt"
    _save(root / "good.png", _gray(32, 32))
    (root / "garbage.png").write_bytes(b"this is not a png" * 10)
    with pytest.raises(ValueError, match=r"garbage\.png"):
        ImageFolder(root, patch_size=16)
    (root / "garbage.png").unlink()
    full = _save(root / "full.png", _rgb(64, 64)).read_bytes()
    (root / "full.png").write_bytes(full[: len(full) // 2])  # header intact, data truncated
    data = ImageFolder(root, patch_size=16)  # the header is fine: found when read
    with pytest.raises(ValueError, match=r"full\.png.*truncated"):
        data[SeededIndex(0, 0)]
    loader = DataLoader(data, batch_size=2, num_workers=1, collate_fn=data.collate_fn)
    batches = iter(loader)
    with pytest.raises(ValueError, match=r"full\.png") as caught:
        next(batches)  # from a worker process: still names the file
    # The traceback holds the iterator in a reference cycle; freed later by the garbage
    # collector, its worker takes 5 s to join: shut it down now.
    batches._shutdown_workers()
    del caught, batches


def _pairs(root: Path, scale: int, sizes, rgb=False) -> dict:
    """HR = LR with every pixel repeated scale x scale: aligned crops match exactly."""
    lows = {}
    for i, (h, w) in enumerate(sizes):
        low = _rgb(h, w) if rgb else _gray(h, w)
        high = np.repeat(np.repeat(low, scale, 0), scale, 1)
        sub = "part2/" if i % 2 else ""
        _save(root / "HR" / f"{sub}{i:04d}.png", high)
        _save(root / f"LR_X{scale}" / f"{sub}{i:04d}x{scale}.png", low)
        lows[f"{sub}{i:04d}.png"] = low
    return lows


def _upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    return x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)


def test_paired_crops_are_aligned_with_the_same_augmentation(tmp_path):
    _pairs(tmp_path, 2, [(20, 24), (18, 22), (20, 24)], rgb=True)
    before = _hashes(tmp_path)
    data = PairedFolder(tmp_path / "HR", tmp_path / "LR_X2", scale=2, lr_patch_size=8)
    assert data.names == ["0000.png", "0002.png", "part2/0001.png"]
    plain = 0
    for seed in range(16):
        item = data[SeededIndex(seed % 3, seed)]
        assert item["y"].shape == (1, 8, 8) and item["target"].shape == (1, 16, 16)
        assert torch.equal(_upsample(item["y"], 2), item["target"])
        low = read_image(data.lr_files[int(item["volume_id"])])
        plain += _is_crop(item["y"].numpy(), low)
    assert 0 < plain < 16  # flips/rotations drawn, the same on LR and HR
    again = data[SeededIndex(1, 5)]
    assert torch.equal(again["y"], data[SeededIndex(1, 5)]["y"])
    val = PairedFolder(tmp_path / "HR", tmp_path / "LR_X2", 2, "val", lr_patch_size=8)
    item = val[2]  # part2/0001: LR 18 x 22, centre crop at (5, 7)
    low = read_image(tmp_path / "LR_X2/part2/0001x2.png")
    np.testing.assert_array_equal(item["y"].numpy(), low[:, 5:13, 7:15])
    assert (
        torch.equal(_upsample(item["y"], 2), item["target"]) and item["fname"] == "part2/0001.png"
    )
    whole = PairedFolder(tmp_path / "HR", tmp_path / "LR_X2", 2, "val", lr_patch_size=None)
    assert whole[2]["target"].shape == (1, 36, 44) and whole.bucket_keys() == [
        (40, 48),
        (40, 48),
        (36, 44),
    ]
    batch = collate_paired([data[0], data[1]], scale=2)
    assert isinstance(batch["system"], Downsampling) and batch["system"].factor == 2
    assert batch["y"].shape == (2, 1, 8, 8) and batch["volume_id"].shape == (2,)
    with pytest.raises(ValueError, match="batch_size 1"):
        collate_paired([whole[0], whole[2]], scale=2)
    whole_gray = ImageFolder(tmp_path / "HR", split="val", patch_size=None)
    with pytest.raises(ValueError, match="batch_size 1"):
        whole_gray.collate_fn([whole_gray[0], whole_gray[2]])
    assert isinstance(pickle.loads(pickle.dumps(data.collate_fn)), PairedCollate)
    assert pickle.loads(pickle.dumps(data)).names == data.names
    assert _hashes(tmp_path) == before  # files are only read


def test_paired_errors(tmp_path):
    _pairs(tmp_path, 2, [(16, 16)] * 8)
    hr, lr = tmp_path / "HR", tmp_path / "LR_X2"
    with pytest.raises(ValueError, match=r"8 of 8 high-resolution.*x4"):
        PairedFolder(hr, lr, scale=4)  # wrong suffix: nothing matches
    (lr / "0002x2.png").unlink()
    (lr / "0002x2.png").parent.joinpath("9999x2.png").write_bytes((lr / "0000x2.png").read_bytes())
    with pytest.raises(ValueError, match=r"1 of 8 high.*'0002\.png'.*1 of 8 low.*'9999x2\.png'"):
        PairedFolder(hr, lr, scale=2, lr_patch_size=8)
    (lr / "9999x2.png").unlink()
    _save(lr / "0002x2.png", _gray(15, 16))
    with pytest.raises(ValueError, match=r"0002x2\.png.*15 x 16.*scale 2.*0002\.png.*32 x 32"):
        PairedFolder(hr, lr, scale=2, lr_patch_size=8)
    _save(lr / "0002x2.png", _gray(16, 16))
    with pytest.raises(ValueError, match="smaller than lr_patch_size"):
        PairedFolder(hr, lr, scale=2, lr_patch_size=17)
    with pytest.raises(ValueError, match=r"^lr_patch_size=None \(whole images\) is for validation"):
        PairedFolder(hr, lr, scale=2, lr_patch_size=None)
    with pytest.raises(ValueError, match=r"patches_per_image \(3\) must be 1 with lr_patch_size="):
        PairedFolder(hr, lr, 2, "val", lr_patch_size=None, patches_per_image=3)
    data = PairedFolder(hr, lr, scale=2, lr_patch_size=8, lr_suffix="x2", num_images=3)
    assert len(data) == 3


def test_denoising_datamodule(tree, tmp_path):
    root, _ = tree
    base = tmp_path / "imagenet"
    base.mkdir()
    (base / "train").symlink_to(root)
    _save(base / "val" / "x" / "v0.png", _gray(40, 40))
    _save(base / "val" / "v1.png", _gray(40, 40))
    _save(base / "val" / "v2.png", _gray(36, 40))
    module = ImageFolderDenoisingDataModule(root=str(base), patch_size=16, batch_size=2)
    assert module.seed is None and module.train_set.seed == 0
    batch = next(iter(module.train_dataloader()))
    assert set(batch) >= {"y", "target", "max_value", "sigma", "volume_id", "slice_num", "fname"}
    assert batch["y"].shape == (2, 1, 16, 16) and isinstance(batch["system"], GaussianNoise)
    assert len(batch["fname"]) == 2 and module.test_set is None
    val = list(module.val_dataloader())
    assert sum(len(b["fname"]) for b in val) == 3
    module = ImageFolderDenoisingDataModule(
        train_root=str(root), val_root=str(base / "val"), test_root=str(base / "val"),
        patch_size=16, val_whole_images=True, batch_size=2, train_size=4, pin_memory=False,
    )  # fmt: skip
    assert len(module.train_set) == 4
    shapes = {tuple(b["target"].shape[-2:]) for b in module.val_dataloader()}
    assert shapes == {(40, 40), (36, 40)}  # batched by size
    assert module.test_set is not None and len(list(module.test_dataloader())) >= 2
    with pytest.raises(ValueError, match="data.train_size.*7.*6 images"):
        ImageFolderDenoisingDataModule(root=str(base), patch_size=16, train_size=7)
    with pytest.raises(ValueError, match="data.val_root is required"):
        ImageFolderDenoisingDataModule(train_root=str(root))
    with pytest.raises(UserError, match="data.val_root"):
        ImageFolderDenoisingDataModule(train_root=str(root), val_root=str(tmp_path / "nope"))
    override = ImageFolderDenoisingDataModule(
        root=str(base), val_root=str(root), patch_size=16, seed=3
    )
    assert len(override.val_set) == 6 and override.seed == 3 and override.val_set.seed == 3
    with pytest.raises(UserError, match=r"data.root: .*train.*data.train_root"):
        ImageFolderDenoisingDataModule(root=str(base / "val"))
    with pytest.raises(ValueError, match="data.patch_size"):
        ImageFolderDenoisingDataModule(root=str(base), patch_size=0)
    with pytest.raises(ValueError, match="data.val_whole_images.*data.batch_size 1"):
        ImageFolderDenoisingDataModule(root=str(base), val_whole_images=True, check_files=False)


def test_paired_datamodule_deeprock_layout(tmp_path):
    dataset = tmp_path / "DeepRockSR-2D" / "shuffled2D"
    dataset.mkdir(parents=True)
    for split, count in (("train", 4), ("valid", 2)):
        _pairs(tmp_path / split, 4, [(12, 12)] * count)
        (tmp_path / split / "HR").rename(dataset / f"shuffled2D_{split}_HR")
        (tmp_path / split / "LR_X4").rename(dataset / f"shuffled2D_{split}_LR_default_X4")
    assert deeprock_sr_folders(dataset, "test", 4) is None
    hr, lr = deeprock_sr_folders(dataset, "val", 4)
    assert hr.name == "shuffled2D_valid_HR" and lr.name == "shuffled2D_valid_LR_default_X4"
    module = PairedSRDataModule(root=str(dataset), scale=4, lr_patch_size=6, batch_size=2)
    batch = next(iter(module.train_dataloader()))
    assert batch["y"].shape == (2, 1, 6, 6) and batch["target"].shape == (2, 1, 24, 24)
    assert isinstance(batch["system"], Downsampling) and batch["system"].factor == 4
    assert set(batch) >= {"max_value", "volume_id", "slice_num", "fname"}
    val = next(iter(module.val_dataloader()))
    assert torch.equal(_upsample(val["y"], 4), val["target"])
    with pytest.raises(ValueError, match=r"shuffled2D_train_HR.*_train_lr_default_x2.*data.scale"):
        PairedSRDataModule(root=str(dataset), scale=2)
    with pytest.raises(ValueError, match="data.lr_patch_size"):
        PairedSRDataModule(root=str(dataset), lr_patch_size=0)
    train_hr, train_lr = deeprock_sr_folders(dataset, "train", 4)
    override = PairedSRDataModule(
        root=str(dataset), val_hr=str(train_hr), val_lr=str(train_lr), lr_patch_size=6
    )
    assert len(override.val_set) == 4 and override.test_set is None
    with pytest.raises(ValueError, match=r"data.train_hr/train_lr: .*smaller than lr_patch_size"):
        PairedSRDataModule(root=str(dataset), scale=4, lr_patch_size=13)


def test_unchecked_files_fail_when_read(tmp_path):
    root = tmp_path / "lazy"
    _save(root / "big.png", _gray(32, 32))
    _save(root / "small.png", _gray(20, 32))
    _save(root / "float.tif", RNG.random((32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"float\.tif.*unsupported pixel mode 'F'"):
        ImageFolder(root, patch_size=24)
    data = ImageFolder(root, split="val", patch_size=24, check_files=False)
    assert data.sizes is None and data.bucket_keys() is None
    assert data[0]["target"].shape == (1, 24, 24)  # big.png
    with pytest.raises(ValueError, match=r"float\.tif.*unsupported pixel mode"):
        data[1]
    with pytest.raises(ValueError, match=r"small\.png.*\(20 x 32\).*patch_size \(24\)"):
        data[2]
