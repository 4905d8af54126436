"""A user's image folders as a ground-truth source (FolderImages): clean crops, measured by any
image physics from the config, seeded like the folder datasets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepinv_lab.cli import main
from deepinv_lab.data import SimulationDataModule
from deepinv_lab.data.folders import ImageFolder
from deepinv_lab.data.physics import (
    CartesianMRIPhysics,
    DenoisingPhysics,
    Gaussian,
    InpaintingPhysics,
)
from deepinv_lab.data.sources import FolderImages
from deepinv_lab.errors import UserError
from tests import tiny

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """ImageNet layout: 4 training and 2 validation RGB images of mixed sizes."""
    base = tmp_path_factory.mktemp("folders")
    sizes = {"train": [(48, 40), (40, 56), (64, 64), (40, 40)], "val": [(40, 48), (44, 40)]}
    for split, shapes in sizes.items():
        for i, (h, w) in enumerate(shapes):
            path = base / split / f"class{i % 2}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return base


def test_items_are_the_clean_crops_of_the_folder_dataset(root):
    source = FolderImages(str(root), patch_size=32, grayscale=False)
    items = source.split("val")
    dataset = ImageFolder(root / "val", "val", patch_size=32, grayscale=False)
    for index in range(len(items)):
        item, _ = items.read(index)
        noisy = dataset[index]  # the same crop, with the folder dataset's own noise
        assert item["x"].shape == (3, 32, 32)
        torch.testing.assert_close(item["target"], noisy["target"])
        assert item["fname"] == noisy["fname"]


def test_any_image_physics_measures_folder_images(root):
    source = FolderImages(str(root), patch_size=32)
    denoising = SimulationDataModule(source, DenoisingPhysics(Gaussian(sigma=0.1)), batch_size=2)
    batch = denoising.example_batch()
    noise = batch["y"] - batch["target"]
    assert batch["y"].shape == (1, 1, 32, 32) and 0.05 < float(noise.std()) < 0.15
    inpainting = SimulationDataModule(source, InpaintingPhysics(), batch_size=2)
    batch = inpainting.example_batch()
    assert set(batch["y"].unique().tolist()) >= {0.0}  # unobserved pixels are zero
    # the validation items and their draws are fixed: two DataModules agree
    again = SimulationDataModule(source, InpaintingPhysics(), batch_size=2).example_batch()
    torch.testing.assert_close(again["y"], batch["y"])


def test_train_size_is_a_nested_subset_of_images(root):
    source = FolderImages(str(root), patch_size=32)
    small = {source.split("train", 2).read(i)[0]["fname"] for i in range(2)}
    large = {source.split("train", 3).read(i)[0]["fname"] for i in range(3)}
    assert small < large


def test_whole_validation_images_batch_by_size(root):
    source = FolderImages(str(root), patch_size=32, val_whole_images=True)
    data = SimulationDataModule(source, DenoisingPhysics(Gaussian(sigma=0.1)), batch_size=2)
    shapes = [tuple(batch["y"].shape[-2:]) for batch in data.val_dataloader()]
    assert sorted(shapes) == [(40, 48), (44, 40)]


def test_bad_input_names_the_argument(root, tmp_path):
    with pytest.raises(UserError, match="data.root"):
        FolderImages(str(tmp_path))
    with pytest.raises(UserError, match=r"data.train_size is 5, more than the 4 images"):
        SimulationDataModule(FolderImages(str(root), patch_size=32), DenoisingPhysics(),
                             train_size=5)  # fmt: skip
    with pytest.raises(UserError, match="FolderImages val_root: .*smaller than patch_size"):
        SimulationDataModule(FolderImages(str(root), patch_size=60), DenoisingPhysics())
    with pytest.raises(UserError, match="complex"):
        SimulationDataModule(FolderImages(str(root), patch_size=32), CartesianMRIPhysics())
    with pytest.raises(UserError, match="val_whole_images"):
        FolderImages(str(root), val_whole_images=True, check_files=False).check_batch_size(2)


def test_fit_a_denoising_config_on_folders_from_the_command_line(root, tmp_path, capsys):
    """The documented swap: a built-in config's source replaced by the user's folders."""
    config = Path(__file__).parents[1] / "configs" / "poisson_denoise.json"
    args = [
        "fit",
        f"--config={config}",
        "--data.init_args.source=deepinv_lab.data.sources.FolderImages",
        f"--data.init_args.source.init_args.root={root}",
        "--data.init_args.source.init_args.patch_size=32",
        "--data.init_args.batch_size=2",
        "--model.init_args.recon.init_args.model.init_args.num_layers=3",
        "--model.init_args.recon.init_args.model.init_args.chans=4",
        *tiny.overrides("trainer", tiny.TRAINER),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    assert main(args) == 0
    assert "val/ssim=" in capsys.readouterr().out
