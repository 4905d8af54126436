"""The built-in micro-CT-style data: crops of a real granular texture, split by rows (the source
BuiltinMicroCT over MicroCTPatches, measured by x4 Downsampling in BuiltinMicroCTDataModule)."""

import numpy as np
import pytest
import torch

from deepinv_lab.data.images import load_builtin_image
from deepinv_lab.data.microct import MICROCT_ROWS, MicroCTPatches
from deepinv_lab.data.presets import BuiltinMicroCTDataModule
from deepinv_lab.data.samplers import SeededIndex
from deepinv_lab.data.sources import BuiltinMicroCT
from deepinv_lab.systems.downsampling import Downsampling


def test_splits_come_from_separate_rows_of_the_texture():
    gravel = load_builtin_image("gravel.png", True)
    (train_top, train_bottom), (val_top, val_bottom) = MICROCT_ROWS["train"], MICROCT_ROWS["val"]
    assert train_bottom + 16 <= val_top and val_bottom == gravel.shape[1] == 512
    data = BuiltinMicroCTDataModule(patch_size=96)
    val = data.val_set
    for index, (_, top, left) in enumerate(val.items.crops):
        expected = gravel[:, val_top + top : val_top + top + 96, left : left + 96]
        np.testing.assert_array_equal(val[index]["target"].numpy(), expected)
    train = data.train_set
    assert train.items.images[0].shape == (1, train_bottom - train_top, 512)
    assert len(train) == 256 and len(val) == 8


def test_low_resolution_is_the_downsampling_system_and_training_is_seeded():
    train = BuiltinMicroCTDataModule(patch_size=64, scale=4).train_set
    item = train[SeededIndex(3, 11)]
    torch.testing.assert_close(item["y"], Downsampling(4)(item["target"][None])[0])
    again = train[SeededIndex(3, 11)]
    assert torch.equal(item["target"], again["target"])
    assert item["y"].shape == (1, 16, 16)


def test_bad_arguments_are_named():
    # the source has no grayscale argument (micro-CT is grayscale); its patches refuse RGB
    with pytest.raises(TypeError, match="grayscale"):
        BuiltinMicroCT(grayscale=False)
    with pytest.raises(ValueError, match="grayscale"):
        MicroCTPatches("train", 96, False, None, None, 0)
    with pytest.raises(ValueError, match="patch_size"):
        BuiltinMicroCTDataModule(patch_size=192)  # the validation strip is 128 rows high


def test_datamodule_batches():
    data = BuiltinMicroCTDataModule(batch_size=4, patch_size=32, scale=4)
    batch = next(iter(data.train_dataloader()))
    assert batch["y"].shape == (4, 1, 8, 8) and batch["target"].shape == (4, 1, 32, 32)
    assert batch["system"].factor == 4
