"""What a reconstruction costs and how good it is: parameters, multiply-accumulates, latency per
reconstruction (CPU, and CUDA when there is one), validation PSNR/SSIM."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from deepinv_lab.pruning.structured import run_hooked

#: layers whose multiply-accumulates are counted (everything else is comparatively free)
COUNTED = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass(frozen=True)
class Latency:
    """Median and spread of repeated timings of one reconstruction, in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    device: str
    threads: int


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(module: nn.Module, run: Callable[[], object]) -> int:
    """Multiply-accumulates of the convolutions and linear layers of ``module`` while ``run()``
    runs it, every call counted: a DEQ's prior once per fixed-point iteration, each VarNet
    cascade once. A convolution's count is output elements x (input channels / groups) x kernel
    size; a transposed convolution's, input elements x (output channels / groups) x kernel."""
    total = 0

    def count(layer: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += output.numel() * layer.in_features
        elif isinstance(layer, nn.modules.conv._ConvTransposeNd):
            kernel = layer.weight[0, 0].numel()
            total += args[0].numel() * (layer.out_channels // layer.groups) * kernel
        else:
            kernel = layer.weight[0, 0].numel()
            total += output.numel() * (layer.in_channels // layer.groups) * kernel

    run_hooked([m for m in module.modules() if isinstance(m, COUNTED)], count, run)
    return total


def time_interleaved(
    runs: dict[str, Callable[[], object]],
    device: torch.device,
    warmup: int = 2,
    repeats: int = 10,
) -> dict[str, Latency]:
    """Time each of ``runs`` (name -> a reconstruction) ``repeats`` times after ``warmup``
    untimed calls each, without gradients. The runs take turns (all of them once per repeat), so
    a slow spell of a shared machine slows them alike and their ratios stay meaningful. On a
    CUDA device every call is synchronised, so that the kernels' time is counted."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"latency needs repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    cuda = device.type == "cuda"
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.no_grad():
        for index in range(warmup + repeats):
            for name, run in runs.items():
                if cuda:
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                run()
                if cuda:
                    torch.cuda.synchronize(device)
                if index >= warmup:
                    times[name].append((time.perf_counter() - start) * 1e3)
    threads = torch.get_num_threads()
    return {
        name: Latency(statistics.median(t), min(t), max(t), repeats, str(device), threads)
        for name, t in times.items()
    }


def move_batch(batch: dict, device: torch.device) -> dict:
    """The batch with its tensors and System on ``device`` (other entries as they are)."""
    moved = {}
    for key, value in batch.items():
        moved[key] = value.to(device) if isinstance(value, torch.Tensor | nn.Module) else value
    return moved


def one_sample(batch: dict) -> dict:
    """The first sample of a batch (tensors and the System's per-sample buffers sliced), so
    that latency is per reconstruction whatever the loader's batch size."""
    import copy

    size = batch["y"].shape[0]
    if size == 1:
        return batch
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == size:
            out[key] = value[:1]
        elif isinstance(value, nn.Module):
            system = copy.deepcopy(value)
            for module in system.modules():
                for name, buffer in list(module.named_buffers(recurse=False)):
                    if buffer.ndim and buffer.shape[0] == size:
                        setattr(module, name, buffer[:1])  # stays a buffer
            out[key] = system
        elif isinstance(value, list | tuple) and len(value) == size:
            out[key] = value[:1]
        else:
            out[key] = value
    return out


def validation_metrics(
    module, datamodule, accelerator: str = "auto", limit_batches: int | float | None = None
) -> dict[str, float]:
    """``val/*`` metrics of a ReconModule on the datamodule's validation set, as ``fit``
    reports them (fastMRI's per-volume SSIM/PSNR/NMSE averaged over volumes)."""
    import logging

    import pytorch_lightning as pl

    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no accelerator banner per evaluation
    try:
        return _validate(pl, module, datamodule, accelerator, limit_batches)
    finally:
        quiet.setLevel(level)


def _validate(pl, module, datamodule, accelerator, limit_batches) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1.0 if limit_batches is None else limit_batches,
    )
    # the baselines (l1-wavelet, CG-SENSE, ...) do not change with pruning and the report does
    # not show them: skipped, they would cost each evaluation more than the network itself
    baselines, module.baselines = getattr(module, "baselines", None), {}
    try:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    finally:
        if baselines is not None:
            module.baselines = baselines
        else:
            del module.baselines
    return {
        key: float(value)
        for key, value in trainer.callback_metrics.items()
        if key.startswith("val/") and value.numel() == 1
    }
