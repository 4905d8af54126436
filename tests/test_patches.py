"""Overlapping-patch inference (functional/patches.py, recons/patches.py, System.patch)."""

import pytest
import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional.patches import patch_regions, sliding_window
from deepinv_lab.recons import Denoiser
from deepinv_lab.recons.patches import patch_recon
from deepinv_lab.systems.base import Identity
from deepinv_lab.systems.cs import CompressedSensing
from deepinv_lab.systems.masking import Inpainting, random_pixel_mask


def _pointwise(channels_in: int, channels_out: int, scale: int, ndim: int) -> nn.Module:
    """A linear map of the channels at each pixel, each output pixel repeated scale^ndim times
    (nearest-neighbour super-resolution)."""
    conv = (nn.Conv2d if ndim == 2 else nn.Conv3d)(channels_in, channels_out, 1, bias=True)
    layers = [conv] + ([nn.Upsample(scale_factor=scale, mode="nearest")] if scale > 1 else [])
    return nn.Sequential(*layers).double()


def _conv_stack(ndim: int, layers: int = 2) -> nn.Module:
    """Bias-free 3x3(x3) convolutions, zero padded: receptive radius ``layers``."""
    conv = nn.Conv2d if ndim == 2 else nn.Conv3d
    stack = [conv(2 if i == 0 else 3, 3, 3, padding=1, bias=False) for i in range(layers)]
    return nn.Sequential(*stack).double()


@pytest.mark.parametrize("blending", ["gaussian", "linear"])
@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("shape", [(13, 17), (7, 9, 11)])
def test_a_pointwise_model_gives_the_whole_image_result(blending, scale, shape):
    torch.manual_seed(0)
    model = _pointwise(2, 3, scale, len(shape))
    x = torch.randn(2, 2, *shape, dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
        patched = sliding_window(model, x, 5, 2, blending=blending, scale=scale, batch_size=3)
    assert patched.shape == whole.shape
    torch.testing.assert_close(patched, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("blending", ["gaussian", "linear"])
@pytest.mark.parametrize("shape", [(19, 16), (11, 12, 10)])
def test_a_conv_model_with_margin_at_least_its_radius_is_exact(blending, shape):
    torch.manual_seed(1)
    radius = 2
    model = _conv_stack(len(shape), layers=radius)
    x = torch.randn(1, 2, *shape, dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
        exact = sliding_window(model, x, 8, 2 * radius, blending=blending, margin=radius)
        off = sliding_window(model, x, 8, 2 * radius, blending=blending, margin=radius - 1)
    torch.testing.assert_close(exact, whole, rtol=1e-12, atol=1e-12)
    assert (off - whole).abs().max() > 1e-6  # the check can fail: a smaller margin is not exact


def test_patches_end_flush_with_the_border():
    regions = patch_regions((10, 7), (4, 7), (1, 0))
    assert [r[0] for r in regions] == [slice(0, 4), slice(3, 7), slice(6, 10)]
    assert all(r[1] == slice(0, 7) for r in regions)


@pytest.mark.parametrize(("batch_size", "calls"), [(1, 9), (2, 5), (4, 3), (9, 1), (20, 1)])
def test_fn_is_called_once_per_batch_of_positions(batch_size, calls):
    seen = []

    def fn(patches):
        seen.append(patches.shape[0])
        return patches

    x = torch.randn(2, 1, 12, 12)
    sliding_window(fn, x, 6, 3, batch_size=batch_size)  # 3 x 3 positions
    assert len(seen) == calls
    assert sum(seen) == 9 * 2 and max(seen) == 2 * min(batch_size, 9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": (8, 20), "overlap": 2}, r"patch_size \(8, 20\) is larger than the input"),
        ({"patch_size": 6, "overlap": 6}, "overlap .* smaller than patch_size"),
        ({"patch_size": 6, "overlap": 2, "margin": 2}, "margin .* at most half the overlap"),
        ({"patch_size": (6, 6, 6), "overlap": 2}, "patch_size must be an int or 2 ints"),
        ({"patch_size": 6, "overlap": 2, "blending": "cosine"}, "blending must be one of"),
        ({"patch_size": 6, "overlap": 2, "batch_size": 0}, "batch_size must be an integer"),
    ],
)
def test_bad_patching_is_a_user_error(kwargs, message):
    with pytest.raises(UserError, match=message):
        sliding_window(lambda p: p, torch.zeros(1, 1, 10, 12), **kwargs)


def test_a_wrong_output_size_is_a_user_error():
    with pytest.raises(UserError, match=r"expected \(B, C_out, \*\(12, 12\)\)"):
        sliding_window(lambda p: p, torch.zeros(1, 1, 10, 12), 6, 2, scale=2)


def test_patch_recon_with_inpainting_crops_the_mask():
    torch.manual_seed(2)
    mask = random_pixel_mask((2, 1, 14, 15), keep_fraction=0.5)
    system = Inpainting(mask)
    x = torch.randn(2, 1, 14, 15, dtype=torch.float64)

    class MaskedMean(Denoiser):
        """Depends on the System: the observed pixels, 3x3 averaged (radius 1)."""

        def forward(self, y, system):
            return nn.functional.avg_pool2d(system(y), 3, stride=1, padding=1)

    recon = MaskedMean(nn.Identity())
    whole = recon(system(x), system)
    patched = patch_recon(recon, system(x), system, 6, 2, margin=1)
    torch.testing.assert_close(patched, whole, rtol=1e-12, atol=1e-12)


def test_identity_patches_to_itself_and_global_systems_refuse():
    assert Identity().patch((slice(0, 2), slice(0, 2))) is not None
    system, _ = CompressedSensing.example()
    with pytest.raises(UserError, match="CompressedSensing cannot be restricted to patches"):
        system.patch((slice(0, 2), slice(0, 2)))


def _denoising_batches(count: int, size: tuple[int, int], seed: int = 0):
    """A DataLoader of ``count`` denoising batches (2 samples, Identity System)."""
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        target = torch.rand(2, 1, *size, generator=generator)
        noisy = target + 0.1 * torch.randn(target.shape, generator=generator)
        batches.append(
            {"y": noisy, "system": Identity(), "target": target, "max_value": torch.ones(2)}
        )
    return DataLoader(batches, batch_size=None, collate_fn=lambda batch: batch)


def _trainer(**kwargs):
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


class _Recording(Denoiser):
    """A pointwise denoiser that records the spatial shapes it is given."""

    def __init__(self):
        super().__init__(nn.Conv2d(1, 1, 1))
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, y, system=None):
        self.shapes.append(tuple(y.shape[2:]))
        return super().forward(y, system)


def test_a_module_validated_by_patches_equals_whole_validation():
    from deepinv_lab.training.module import ReconModule

    torch.manual_seed(0)
    train, val = _denoising_batches(2, (20, 24)), _denoising_batches(2, (20, 24), seed=1)
    module = ReconModule(Denoiser(nn.Conv2d(1, 1, 1)), loss="mse")
    _trainer(max_epochs=1, num_sanity_val_steps=0).fit(module, train, val)
    whole = _trainer().validate(module, val, verbose=False)[0]
    options = {"patch_size": 8, "overlap": 3, "blending": "linear", "max_elements": 0}
    patched_module = ReconModule(module.recon, loss="mse", patch_inference=options)
    patched = _trainer().validate(patched_module, val, verbose=False)[0]
    assert set(patched) == set(whole)
    for name, value in whole.items():
        assert patched[name] == pytest.approx(value, rel=1e-5), name


@pytest.mark.parametrize(("max_elements", "patched"), [(20 * 24, False), (20 * 24 - 1, True)])
def test_patch_inference_is_used_only_above_the_budget(max_elements, patched):
    from deepinv_lab.training.module import ReconModule

    recon = _Recording()
    options = {"patch_size": [12, 16], "overlap": 4, "max_elements": max_elements}
    module = ReconModule(recon, loss="mse", patch_inference=options)
    _trainer().validate(module, _denoising_batches(1, (20, 24)), verbose=False)
    assert set(recon.shapes) == ({(12, 16)} if patched else {(20, 24)})
    predictions = _trainer().predict(module, _denoising_batches(1, (20, 24)))
    assert predictions[0].shape == (2, 1, 20, 24)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patch_size": 0}, r"model.patch_inference.patch_size: expected values >= 1"),
        ({"patch_size": 8, "blending": "box"}, r"model.patch_inference.blending"),
        ({"patch_size": 8, "max_elements": -1}, r"model.patch_inference.max_elements"),
        ({"patch_size": 8, "overlap": 1.5}, r"model.patch_inference.overlap"),
    ],
)
def test_bad_patch_inference_options_name_the_key(options, message):
    from deepinv_lab.training.module import ReconModule

    with pytest.raises(UserError, match=message):
        ReconModule(_Recording(), patch_inference=options)


def test_patches_larger_than_the_measurements_name_the_key():
    from deepinv_lab.training.module import ReconModule

    module = ReconModule(_Recording(), loss="mse", patch_inference={"patch_size": 32})
    with pytest.raises(UserError, match=r"model.patch_inference: .*is larger than the input"):
        _trainer().validate(module, _denoising_batches(1, (20, 24)), verbose=False)


# Volumes in the evaluation outputs: image grids of mid-slices, reconstructions written whole.


def test_volume_grid_shows_the_three_mid_slices():
    from deepinv_lab.training.callbacks import mid_slices, volume_grid

    volume = torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(1, 4, 5, 6)
    axial, coronal, sagittal = mid_slices(volume)
    torch.testing.assert_close(axial, volume[:, 2])
    torch.testing.assert_close(coronal, volume[:, :, 2])
    torch.testing.assert_close(sagittal, volume[:, :, :, 3])
    grid = volume_grid([volume, 2 * volume], max_value=1000.0)
    assert grid.shape == (1, 5 + 4 + 4, 2 * 6)  # rows: axial, coronal, sagittal
    torch.testing.assert_close(grid[:, :5, 6:], 2 * axial / 1000)
    torch.testing.assert_close(grid[:, 9:, :5], sagittal / 1000)
    assert (grid[:, 9:, 10:] == 0).all()  # the sagittal row is padded to the widest


def test_image_grid_logger_logs_mid_slices_of_volumes(tmp_path):
    from types import SimpleNamespace

    from pytorch_lightning.loggers import TensorBoardLogger

    from deepinv_lab.training.callbacks import ImageGridLogger

    logged = {}

    class Recording(TensorBoardLogger):
        @property
        def experiment(self):
            return SimpleNamespace(add_image=lambda tag, image, step: logged.update({tag: image}))

    trainer = SimpleNamespace(
        sanity_checking=False,
        loggers=[Recording(str(tmp_path))],
        is_global_zero=True,
        num_val_batches=3,
        global_step=7,
    )
    target = torch.rand(2, 1, 6, 7, 8)
    outputs = {
        "output": target + 0.1,
        "baseline": None,
        "target": target,
        "max_value": torch.ones(2),
    }
    ImageGridLogger(num_images=1).on_validation_batch_end(trainer, None, outputs, {}, 2)
    image = logged["val/target_recon_error_mid_slices/2"]
    assert image.shape == (1, 7 + 6 + 6, 3 * 8)


def test_reconstruction_writer_writes_volumes_whole(tmp_path):
    from types import SimpleNamespace

    import h5py

    from deepinv_lab.training.callbacks import ReconstructionWriter

    writer = ReconstructionWriter(output_dir=str(tmp_path))
    trainer = SimpleNamespace(world_size=1, is_global_zero=True)
    volumes = torch.rand(2, 1, 3, 4, 5)
    batch = {"fname": ["a.h5", "b.h5"], "slice_num": torch.zeros(2, dtype=torch.long)}
    writer.write_on_batch_end(trainer, None, volumes, None, batch, 0)
    writer.write_on_batch_end(trainer, None, volumes[:1] + 1, None, {}, 1)
    writer.on_predict_epoch_end(trainer, None)
    for name, expected in [("a", volumes[0, 0]), ("b", volumes[1, 0]), ("batch_00001_0", None)]:
        with h5py.File(tmp_path / f"{name}.h5") as file:
            data = torch.from_numpy(file["reconstruction"][()])
        assert data.shape == (3, 4, 5)
        torch.testing.assert_close(data, volumes[0, 0] + 1 if expected is None else expected)


def test_patch_recon_takes_the_scale_from_the_system():
    from deepinv_lab.recons import Interpolation
    from deepinv_lab.systems.downsampling import Downsampling

    torch.manual_seed(3)
    system = Downsampling(2)
    y = torch.randn(1, 1, 13, 14, dtype=torch.float64)
    recon = Interpolation()  # bicubic: reads 2 low-resolution pixels on each side
    patched = patch_recon(recon, y, system, 8, 6, blending="linear", margin=3)
    torch.testing.assert_close(patched, recon(y, system), rtol=1e-12, atol=1e-12)
