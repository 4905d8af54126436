"""``deepinv-lab export``: a checkpoint's Recon, without its System, as a ``torch.export``
(``.pt2``) or ONNX file, checked against the eager Recon on a random example."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from deepinv_lab.checkpoints.config import stored_run_config
from deepinv_lab.checkpoints.reading import read_checkpoint
from deepinv_lab.errors import UserError
from deepinv_lab.export.formats import (
    FORMATS,
    SUFFIXES,
    export_recon,
    load_exported,
    relative_difference,
)
from deepinv_lab.export.wrappers import ImageRecon, KSpaceRecon, exportable
from deepinv_lab.recons import Interpolation, SuperResolution

#: the largest max relative difference between the export and the eager Recon that passes
#: (float32 FFTs of another library, e.g. onnxruntime's DFT, differ by ~1e-4 on 320 x 320 k-space)
TOLERANCE = 1e-3


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepinv-lab export",
        description="Export a checkpoint's Recon without its System (VarNet: k-space, mask and "
        "ACS widths in; image Recons: images in) as a torch.export .pt2 or an ONNX file, and "
        "check it against the eager Recon on a random example (docs/inference.md).",
    )
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint of deepinv-lab fit")
    parser.add_argument("--output", required=True, help="the file to write (.pt2 or .onnx)")
    parser.add_argument(
        "--format",
        default="torch_export",
        help=f"one of {', '.join(FORMATS)} (default torch_export)",
    )
    parser.add_argument(
        "--example-shape",
        "--example_shape",
        dest="example_shape",
        default=None,
        help="C,H,W of one example: coils,H,W of k-space for VarNet (required), channels,H,W "
        "of the input image for image Recons (default: the checkpoint's data config, its "
        "patch_size and grayscale, divided by its scale for super-resolution). VarNet exports "
        "for these H and W only (its centred FFT and ACS checks are specialised on them); "
        "image Recons for any batch, H and W",
    )
    parser.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=int,
        default=2,
        help="the example's batch size (default 2: a batch of 1 would fix the batch size of the "
        "export; VarNet's export keeps the example's batch size)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="super-resolution factor, for a Recon that takes it from its System (default: the "
        "checkpoint's data config)",
    )
    parser.add_argument(
        "--static", action="store_true", help="export for the example's shapes only"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def export_command(args: list[str]) -> int:
    """``deepinv-lab export``; returns the exit status (1 when the check fails)."""
    from deepinv_lab.recons.trained import recon_from_checkpoint

    options = export_parser().parse_args(args)
    if options.format not in FORMATS:
        raise UserError(
            f"--format: unsupported format {options.format!r}; choose from {', '.join(FORMATS)}"
        )
    output = Path(options.output)
    if output.exists() and not options.overwrite:
        raise UserError(f"--output: {output} exists; give --overwrite to replace it")
    if output.suffix != SUFFIXES[options.format]:
        raise UserError(
            f"--output: {output}: a {options.format} file must end in {SUFFIXES[options.format]}"
        )
    if options.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {options.batch_size}")
    checkpoint = read_checkpoint(options.ckpt_path, "--ckpt_path")
    data = _data_arguments(checkpoint)
    scale = options.scale if options.scale is not None else _int(data.get("scale"))
    recon = recon_from_checkpoint(options.ckpt_path, "--ckpt_path").eval()
    try:
        wrapper = exportable(recon, real_view=options.format == "onnx", scale=scale)
    except UserError as error:
        raise UserError(f"--ckpt_path: {options.ckpt_path}: {error}") from None
    shape = _example_shape(options.example_shape, wrapper, data, scale, options.ckpt_path)
    inputs = wrapper.example_inputs(shape, batch_size=options.batch_size)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        output.unlink()
    try:
        result = export_recon(wrapper, output, options.format, inputs, dynamic=not options.static)
    except UserError as error:
        raise UserError(f"{options.ckpt_path}: {error}") from None
    size = output.stat().st_size / 2**20
    free = ", ".join(f"{name} {dims}" for name, dims in result.dynamic.items()) or "none"
    print(
        f"wrote {output} ({size:.1f} MiB, {result.format} via {result.capture}, "
        f"{result.seconds:.1f} s); dynamic dimensions: {free}"
    )
    check = wrapper.example_inputs(shape, batch_size=options.batch_size, seed=1)
    with torch.no_grad():
        expected = wrapper(*check)
        got = load_exported(output)(*check)
    difference = relative_difference(got, expected)
    print(
        f"check on a random {tuple(check[0].shape)} example: max relative difference "
        f"{difference:.2e} (export vs eager)"
    )
    if not difference <= TOLERANCE:
        print(
            f"deepinv-lab export: the export differs from the eager Recon by more than "
            f"{TOLERANCE:g}"
        )
        return 1
    return 0


def _data_arguments(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The ``init_args`` of the checkpoint's stored data config (empty if it has none)."""
    stored = stored_run_config(checkpoint) or {}
    data = stored.get("data")
    init_args = data.get("init_args") if isinstance(data, dict) else None
    return init_args if isinstance(init_args, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _example_shape(
    given: str | None, wrapper: object, data: dict[str, Any], scale: int | None, ckpt: str
) -> tuple[int, int, int]:
    if given is not None:
        try:
            shape = tuple(int(size) for size in given.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise UserError(f"--example-shape: expected C,H,W (3 positive integers), got {given!r}")
        return shape[0], shape[1], shape[2]
    if isinstance(wrapper, KSpaceRecon):
        raise UserError(
            f"--ckpt_path: {ckpt}: give --example-shape COILS,H,W for a k-space Recon (the "
            "exported VarNet runs on that k-space size only)"
        )
    patch = _int(data.get("patch_size"))
    if not isinstance(wrapper, ImageRecon) or patch is None:
        raise UserError(
            f"--ckpt_path: {ckpt}: its data config has no patch_size to take the example's "
            "size from; give --example-shape C,H,W"
        )
    channels = 1 if data.get("grayscale", True) else 3
    upsamples = isinstance(wrapper.recon, (SuperResolution, Interpolation))
    factor = scale if upsamples and scale else 1
    size = max(1, patch // factor)
    return channels, size, size
