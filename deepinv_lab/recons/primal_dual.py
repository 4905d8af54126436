"""Learned primal-dual reconstruction (Adler & Öktem, IEEE TMI 2018), for any linear System whose
measurements are image-like."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional.complex import channels_to_complex, complex_to_channels
from deepinv_lab.recons.base import SolutionRecon, require_linear
from deepinv_lab.systems.base import LinearSystem, System

PRIMAL_INITS = ("zeros", "adjoint")


class UpdateNetwork(nn.Module):
    """One learned update of learned primal-dual (its ``Gamma_i`` or ``Lambda_i``):
    ``num_layers`` 3x3 convolutions, ``in_chans -> chans -> ... -> out_chans``, with a PReLU
    after each one but the last (Adler & Öktem: 3 layers, 32 channels).

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``, real.
    """

    def __init__(self, in_chans: int, out_chans: int, chans: int, num_layers: int):
        super().__init__()
        layers: list[nn.Module] = []
        stage_in = in_chans
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(stage_in, chans, 3, padding=1), nn.PReLU(chans)]
            stage_in = chans
        layers.append(nn.Conv2d(stage_in, out_chans, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _as_channels(t: torch.Tensor) -> torch.Tensor:
    """Real channels of a batch: real/imaginary channels for complex data, the data otherwise."""
    return complex_to_channels(t) if t.is_complex() else t


def _from_channels(t: torch.Tensor, complex_: bool) -> torch.Tensor:
    return channels_to_complex(t) if complex_ else t


def _check_count(owner: str, name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")


class LearnedPrimalDual(SolutionRecon):
    """Learned primal-dual (Adler & Öktem, "Learned Primal-Dual Reconstruction", IEEE TMI 2018):
    a primal memory ``h`` of ``primal_memory`` images and a dual memory ``h_d`` of ``dual_memory``
    measurement-shaped tensors, updated ``K`` times by small CNNs,

        h_d <- h_d + Gamma_i([h_d, A h[0], y]),
        h   <- h   + Lambda_i([h, A^H h_d[0]]),     i = 1, ..., K,

    from ``h_d = 0`` and ``h = 0`` (Adler's choice, ``primal_init="zeros"``) or every primal
    memory image ``A^H y`` (``"adjoint"``). The estimate is ``x = h[0]``.

    The CNNs see real tensors: a complex image or measurement is its real/imaginary channels
    (multicoil k-space ``(B, coils, H, W)`` complex: ``2 coils`` channels), and the memories are
    stacked along the channels. The dual networks therefore need measurements that are image-like,
    ``(B, C, H', W')`` (Cartesian k-space, masked or downsampled images); non-Cartesian k-space
    ``(B, C, K)`` and flat measurement vectors (``CompressedSensing``) are refused by
    :meth:`check_system`.

    Args:
        image_chans: real channels of one image ``x`` (2 for a complex MRI image, 1 for a
            grayscale and 3 for a colour image).
        measurement_chans: real channels of one measurement ``y`` (2 coils for multicoil
            k-space, as many as the image's for masking or downsampling).
        num_iterations: ``K`` (Adler: 10).
        primal_memory, dual_memory: images and measurements in the memories (Adler: 5 each).
        chans: feature channels of the update CNNs (Adler: 32).
        num_layers: convolutions per update CNN, at least 2 (Adler: 3).
        share_weights: one ``Gamma`` and one ``Lambda`` for all iterations, or one per iteration
            (Adler's).
        primal_init: ``"zeros"`` or ``"adjoint"`` (``A^H y``, what the quick configs use: the
            first iterations start from the adjoint image).
        magnitude: return ``|x|`` for complex ``x``.

    Shapes: ``y`` as the System produces it, ``(B, C, H', W')`` -> ``x`` in the System's input
    space, ``(B, 1, H, W)`` magnitudes for MRI.
    """

    def __init__(
        self,
        image_chans: int = 2,
        measurement_chans: int = 2,
        num_iterations: int = 5,
        primal_memory: int = 5,
        dual_memory: int = 5,
        chans: int = 32,
        num_layers: int = 3,
        share_weights: bool = False,
        primal_init: Literal["zeros", "adjoint"] = "adjoint",
        magnitude: bool = True,
    ):
        super().__init__()
        owner = type(self).__name__
        for name, value, minimum in (
            ("image_chans", image_chans, 1),
            ("measurement_chans", measurement_chans, 1),
            ("num_iterations", num_iterations, 1),
            ("primal_memory", primal_memory, 1),
            ("dual_memory", dual_memory, 1),
            ("chans", chans, 1),
            ("num_layers", num_layers, 2),
        ):
            _check_count(owner, name, value, minimum)
        if primal_init not in PRIMAL_INITS:
            raise UserError(
                f"{owner}: primal_init must be one of {', '.join(PRIMAL_INITS)}, "
                f"got {primal_init!r}"
            )
        self.image_chans = image_chans
        self.measurement_chans = measurement_chans
        self.num_iterations = num_iterations
        self.primal_memory = primal_memory
        self.dual_memory = dual_memory
        self.share_weights = bool(share_weights)
        self.primal_init = primal_init
        self.magnitude = magnitude
        copies = 1 if share_weights else num_iterations
        dual_chans = dual_memory * measurement_chans
        primal_chans = primal_memory * image_chans
        # Gamma sees [h_d, A h[0], y], Lambda sees [h, A^H h_d[0]]
        self.dual_updates = nn.ModuleList(
            UpdateNetwork(dual_chans + 2 * measurement_chans, dual_chans, chans, num_layers)
            for _ in range(copies)
        )
        self.primal_updates = nn.ModuleList(
            UpdateNetwork(primal_chans + image_chans, primal_chans, chans, num_layers)
            for _ in range(copies)
        )

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_linear(self, system)
        self._check_shapes(system, y, system.adjoint(y))

    def _check_shapes(self, system: System, y: torch.Tensor, adjoint_y: torch.Tensor) -> None:
        owner = type(self).__name__
        if not isinstance(y, torch.Tensor) or y.ndim != 4:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise UserError(
                f"{owner} needs image-like measurements (B, C, H, W) for its dual CNNs, and the "
                f"data's System {type(system).__name__} gives measurements of shape {shape}; "
                "use a Recon that works through A^H only (MoDL, DEQ, UnrolledProximalGradient, "
                "CGSense)"
            )
        if adjoint_y.ndim != 4:
            raise UserError(
                f"{owner} needs images (B, C, H, W), and A^H y of the data's System "
                f"{type(system).__name__} has shape {tuple(adjoint_y.shape)}"
            )
        for name, data, expected in (
            ("measurement_chans", y, self.measurement_chans),
            ("image_chans", adjoint_y, self.image_chans),
        ):
            channels = data.shape[1] * (2 if data.is_complex() else 1)
            if channels != expected:
                kind = "complex " if data.is_complex() else ""
                what = "measurements" if name == "measurement_chans" else "images A^H y"
                raise UserError(
                    f"{owner}: {name} is {expected}, and the data's System "
                    f"{type(system).__name__} gives {kind}{what} of shape {tuple(data.shape)}, "
                    f"{channels} real channels; set {name} to {channels}"
                )

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        """``x = h[0]`` after ``K`` iterations (complex for MRI, in the System's input space)."""
        adjoint_y = system.adjoint(y)
        self._check_shapes(system, y, adjoint_y)
        complex_image, complex_measurement = adjoint_y.is_complex(), y.is_complex()
        image_chans, measurement_chans = self.image_chans, self.measurement_chans
        start = adjoint_y if self.primal_init == "adjoint" else torch.zeros_like(adjoint_y)
        primal = _as_channels(start).repeat(1, self.primal_memory, 1, 1)  # (B, P c_x, H, W)
        measured = _as_channels(y)  # (B, c_y, H', W')
        dual = measured.new_zeros(  # (B, D c_y, H', W')
            measured.shape[0], self.dual_memory * measurement_chans, *measured.shape[2:]
        )
        for i in range(self.num_iterations):
            step = 0 if self.share_weights else i
            forward_primal = system(_from_channels(primal[:, :image_chans], complex_image))
            dual = dual + self.dual_updates[step](
                torch.cat([dual, _as_channels(forward_primal), measured], dim=1)
            )
            adjoint_dual = system.adjoint(
                _from_channels(dual[:, :measurement_chans], complex_measurement)
            )
            primal = primal + self.primal_updates[step](
                torch.cat([primal, _as_channels(adjoint_dual)], dim=1)
            )
        return _from_channels(primal[:, :image_chans], complex_image)
