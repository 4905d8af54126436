"""Exporting Recons without their System: torch.export (.pt2) and ONNX files against the eager
Recon, and ``deepinv-lab export`` on a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.export import (
    ImageRecon,
    KSpaceRecon,
    export_recon,
    exportable,
    load_exported,
    relative_difference,
)
from deepinv_lab.export.command import export_command
from deepinv_lab.models import DnCNN
from deepinv_lab.recons import CGSense, Denoiser, SuperResolution, VarNet

SMALL_VARNET = {
    "num_cascades": 2,
    "chans": 2,
    "num_pool_layers": 1,
    "sens_chans": 2,
    "sens_num_pool_layers": 1,
}
SMALL_DNCNN = {"in_chans": 1, "num_layers": 3, "chans": 4, "batch_norm": False}


def small_varnet() -> VarNet:
    torch.manual_seed(0)
    return VarNet(**SMALL_VARNET).eval()


def small_denoiser() -> Denoiser:
    torch.manual_seed(0)
    return Denoiser(DnCNN(**SMALL_DNCNN)).eval()


def test_varnet_torch_export_matches_eager_on_the_example_shape(tmp_path: Path) -> None:
    wrapper = KSpaceRecon(small_varnet())
    inputs = wrapper.example_inputs((3, 32, 24), batch_size=2)
    result = export_recon(wrapper, tmp_path / "varnet.pt2", "torch_export", inputs)
    # VarNet's shapes are specialised (the centred FFT caches its checkerboards per size, the ACS
    # checks are data-dependent): draft_export, and the example's shapes only
    assert result.capture == "draft_export" and result.dynamic == {}
    exported = load_exported(result.path)
    other = wrapper.example_inputs((3, 32, 24), batch_size=2, seed=1)
    with torch.no_grad():
        assert relative_difference(exported(*other), wrapper(*other)) < 1e-5
        # another ACS width per sample is fine; a 0 (derive it) is a failed runtime assertion
        widths = torch.tensor([4, 6])
        assert relative_difference(exported(*other[:2], widths), wrapper(*other[:2], widths)) < 1e-5
        with pytest.raises(RuntimeError):
            exported(*other[:2], torch.zeros(2, dtype=torch.long))
        with pytest.raises(RuntimeError, match="shape|size"):  # another shape: refused
            exported(*wrapper.example_inputs((3, 40, 24), batch_size=2))
    # eager VarNet still runs after the capture (no traced constants left in its caches)
    assert wrapper(*inputs).shape == (2, 1, 32, 24)


def test_denoiser_torch_export_is_dynamic(tmp_path: Path) -> None:
    wrapper = ImageRecon(small_denoiser())
    inputs = wrapper.example_inputs((1, 32, 24), batch_size=2)
    result = export_recon(wrapper, tmp_path / "dncnn.pt2", "torch_export", inputs)
    assert result.capture == "export" and result.dynamic == {"image": [0, 2, 3]}
    other = wrapper.example_inputs((1, 40, 36), batch_size=3, seed=1)
    with torch.no_grad():
        assert relative_difference(load_exported(result.path)(*other), wrapper(*other)) < 1e-5


def test_denoiser_onnx_matches_eager_through_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    wrapper = ImageRecon(small_denoiser())
    inputs = wrapper.example_inputs((1, 32, 24), batch_size=2)
    result = export_recon(wrapper, tmp_path / "dncnn.onnx", "onnx", inputs)
    other = wrapper.example_inputs((1, 40, 36), batch_size=3, seed=1)
    with torch.no_grad():
        assert relative_difference(load_exported(result.path)(*other), wrapper(*other)) < 1e-5


@pytest.mark.slow
def test_varnet_onnx_matches_eager_through_onnxruntime(tmp_path: Path) -> None:
    """~15 s: the ONNX exporter on VarNet's complex graph (real-view k-space, DFT)."""
    pytest.importorskip("onnxruntime")
    wrapper = KSpaceRecon(small_varnet(), real_view=True)
    inputs = wrapper.example_inputs((3, 32, 24), batch_size=2)
    result = export_recon(wrapper, tmp_path / "varnet.onnx", "onnx", inputs)
    other = wrapper.example_inputs((3, 32, 24), batch_size=2, seed=1)
    with torch.no_grad():
        assert relative_difference(load_exported(result.path)(*other), wrapper(*other)) < 1e-5


def test_onnx_refuses_complex_inputs(tmp_path: Path) -> None:
    wrapper = KSpaceRecon(small_varnet())
    inputs = wrapper.example_inputs((3, 32, 24))
    with pytest.raises(UserError, match="ONNX has no complex dtype"):
        export_recon(wrapper, tmp_path / "varnet.onnx", "onnx", inputs)


def test_export_refusals(tmp_path: Path) -> None:
    wrapper = ImageRecon(small_denoiser())
    with pytest.raises(UserError, match="unsupported export format 'tflite'"):
        export_recon(wrapper, tmp_path / "x.tfl", "tflite", wrapper.example_inputs((1, 8, 8)))
    with pytest.raises(UserError, match="CGSense has no exportable wrapper.*coil maps"):
        exportable(CGSense())
    with pytest.raises(UserError, match="no such exported file"):
        load_exported(tmp_path / "missing.pt2")


def write_checkpoint(path: Path, recon: torch.nn.Module, recon_config: dict, data: dict) -> Path:
    """A checkpoint as ``deepinv-lab fit`` writes it, as far as ``recon_from_checkpoint`` reads."""
    torch.save(
        {
            "deepinv_lab_config": {
                "model": {
                    "class_path": "deepinv_lab.training.module.ReconModule",
                    "init_args": {"recon": recon_config},
                },
                "data": data,
            },
            "state_dict": {f"recon.{key}": value for key, value in recon.state_dict().items()},
        },
        path,
    )
    return path


def denoiser_checkpoint(tmp_path: Path) -> Path:
    config = {
        "class_path": "deepinv_lab.recons.Denoiser",
        "init_args": {
            "model": {"class_path": "deepinv_lab.models.DnCNN", "init_args": SMALL_DNCNN}
        },
    }
    data = {
        "class_path": "deepinv_lab.data.presets.BuiltinDenoisingDataModule",
        "init_args": {"patch_size": 24, "grayscale": True},
    }
    return write_checkpoint(tmp_path / "dncnn.ckpt", small_denoiser(), config, data)


def test_export_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = denoiser_checkpoint(tmp_path)
    output = tmp_path / "out" / "dncnn.pt2"
    # the example shape comes from the data config's patch_size and grayscale
    assert export_command(["--ckpt_path", str(ckpt), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "dynamic dimensions: image [0, 2, 3]" in printed
    assert "(2, 1, 24, 24) example: max relative difference" in printed
    image = torch.rand(2, 1, 16, 20)
    with torch.no_grad():
        assert relative_difference(load_exported(output)(image), small_denoiser()(image)) < 1e-5
    # VarNet, from a checkpoint: k-space export with the example shape given
    varnet = write_checkpoint(
        tmp_path / "varnet.ckpt",
        small_varnet(),
        {"class_path": "deepinv_lab.recons.VarNet", "init_args": SMALL_VARNET},
        {},
    )
    args = ["--ckpt_path", str(varnet), "--output", str(tmp_path / "varnet.pt2")]
    with pytest.raises(UserError, match="give --example-shape COILS,H,W"):
        export_command(args)
    assert export_command([*args, "--example-shape", "2,32,24"]) == 0
    assert "via draft_export" in capsys.readouterr().out


def test_export_command_refusals(tmp_path: Path) -> None:
    ckpt = denoiser_checkpoint(tmp_path)
    existing = tmp_path / "exists.pt2"
    existing.write_bytes(b"")
    cases = [
        (["--ckpt_path", str(tmp_path / "no.ckpt"), "--output", str(tmp_path / "a.pt2")],
         "--ckpt_path: .*no.ckpt: no such file"),
        (["--ckpt_path", str(ckpt), "--output", str(existing)], "exists; give --overwrite"),
        (["--ckpt_path", str(ckpt), "--output", str(tmp_path / "a.tfl"), "--format", "tflite"],
         "unsupported format 'tflite'"),
        (["--ckpt_path", str(ckpt), "--output", str(tmp_path / "a.pt2"), "--format", "onnx"],
         "must end in .onnx"),
        (["--ckpt_path", str(ckpt), "--output", str(tmp_path / "a.pt2"), "--example-shape", "1,8"],
         "expected C,H,W"),
    ]  # fmt: skip
    for args, message in cases:
        with pytest.raises(UserError, match=message):
            export_command(args)
    cg = write_checkpoint(
        tmp_path / "cg.ckpt",
        CGSense(),
        {"class_path": "deepinv_lab.recons.CGSense", "init_args": {}},
        {},
    )
    with pytest.raises(UserError, match="cg.ckpt: CGSense has no exportable wrapper"):
        export_command(["--ckpt_path", str(cg), "--output", str(tmp_path / "cg.pt2")])


def test_super_resolution_exports_for_the_example_shape(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = DnCNN(**SMALL_DNCNN)
    recon = SuperResolution(network, upsample_input=True, residual=True, scale=2).eval()
    wrapper = ImageRecon(recon)
    inputs = wrapper.example_inputs((1, 16, 12), batch_size=2)
    # the bicubic upsampling matrices are cached per size: shapes are specialised
    result = export_recon(wrapper, tmp_path / "sr.pt2", "torch_export", inputs)
    assert result.capture == "export" and result.dynamic == {}
    other = wrapper.example_inputs((1, 16, 12), batch_size=2, seed=1)
    with torch.no_grad():
        assert relative_difference(load_exported(result.path)(*other), wrapper(*other)) < 1e-5
    with pytest.raises(UserError, match="takes its scale factor from the data's System"):
        ImageRecon(SuperResolution(network, upsample_input=True))
