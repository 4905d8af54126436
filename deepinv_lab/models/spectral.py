"""Spectral normalisation of a whole network, a safeguard for contractive iterations (DEQ).

:func:`spectral_normalize` applies :func:`torch.nn.utils.parametrizations.spectral_norm` to every
linear and convolution layer of a model, optionally followed by a constant factor, so that each
layer's weight is ``scale * W / sigma(W)``.

What is normalised is ``sigma(W)``, the largest singular value of the weight **reshaped to a
matrix** ``(out, in * k_h * k_w)``: ``weight.flatten(1)`` for a convolution,
``weight.transpose(0, 1).flatten(1)`` for a transposed convolution (stored
``(in, out, k_h, k_w)``), estimated by power iteration. For a linear layer that is its operator
norm. For a convolution it is *not* the operator norm of the convolution: with stride 1 that norm
is at most ``sqrt(k_h * k_w) * sigma(W)`` (each input pixel enters ``k_h * k_w`` patches) and can
exceed ``sigma(W)``. So a spectrally normalised network is Lipschitz-controlled, but a depth-``L``
network of 3x3 convolutions and 1-Lipschitz activations is only guaranteed
``(3 * scale)^L``-Lipschitz; check a DEQ's contractivity by its convergence, not by this bound.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from deepinv_lab.errors import UserError

NORMALIZED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


class _Scale(nn.Module):
    """Parametrization ``W -> scale * W`` (no parameters, nothing in the state dict)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.scale * weight

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


def spectral_normalize(
    model: nn.Module, scale: float = 1.0, n_power_iterations: int = 1
) -> nn.Module:
    """Spectrally normalise every linear and convolution layer of ``model`` in place.

    Each :data:`NORMALIZED_LAYERS` module's ``weight`` becomes ``scale * W / sigma(W)`` through
    :func:`torch.utils.parametrize` (``spectral_norm``, then a ``scale`` factor when it is not 1):
    ``sigma(W)`` is the largest singular value of the weight reshaped to a matrix, see the module
    docstring. As with ``spectral_norm``, ``sigma`` is estimated by ``n_power_iterations`` power
    iterations each time the weight is computed in training mode (the estimate sharpens as
    training goes on) and frozen in eval mode. Biases are untouched.

    Args:
        model: any module; modified in place.
        scale: the target largest singular value of each weight matrix (``> 0``).
        n_power_iterations: power iterations per weight computation in training mode (``>= 1``).

    Returns:
        ``model`` itself (for chaining).

    Raises:
        ValueError: for a bad ``scale``/``n_power_iterations``, or a layer whose weight is
            already parametrized (normalising twice would compound ``scale``).
    """
    if isinstance(scale, bool) or not isinstance(scale, Real) or not scale > 0:
        raise UserError(f"spectral_normalize: scale must be a number > 0, got {scale!r}")
    if (
        isinstance(n_power_iterations, bool)
        or not isinstance(n_power_iterations, int)
        or n_power_iterations < 1
    ):
        raise UserError(
            "spectral_normalize: n_power_iterations must be an integer >= 1, "
            f"got {n_power_iterations!r}"
        )
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, NORMALIZED_LAYERS)
    ]
    for name, module in layers:
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(
                f"spectral_normalize: the weight of layer {name or type(module).__name__!r} is "
                "already parametrized (spectrally normalised twice?)"
            )
    for _, module in layers:
        spectral_norm(module, n_power_iterations=n_power_iterations)
        if scale != 1:
            parametrize.register_parametrization(module, "weight", _Scale(float(scale)))
    return model
