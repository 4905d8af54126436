"""The Model block base class: a learned network on real tensors ``(B, C, H, W)``.

Every concrete Model provides :meth:`Model.example`, a small instance with a valid input: the
test-suite finds every subclass (:func:`deepinv_lab.discovery.subclasses`) and checks it (forward,
finite outputs, gradients) the day it is added.
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.errors import UserError


class Model(nn.Module):
    """Base class of Model blocks: learned networks, selected in configs by class name."""

    def check_input(self, x: torch.Tensor, channels: int) -> None:
        """Raise a :class:`~deepinv_lab.errors.UserError` naming the model, the expected and the
        given shape unless ``x`` is ``(B, channels, H, W)``.

        A user error: the channels a model takes are set in the config (``in_chans``) and must
        match the data's (grayscale or colour images, 2 real channels per complex MRI image).
        """
        if x.ndim != 4 or x.shape[1] != channels:
            hint = ""
            if getattr(self, "in_chans", None) == channels and x.ndim == 4:
                hint = f"; set in_chans to {x.shape[1]} to match the data"
            raise UserError(
                f"{type(self).__name__} expects input of shape (B, {channels}, H, W), "
                f"got {tuple(x.shape)}{hint}"
            )

    def check_num_layers(self, num_layers: int) -> None:
        """Raise a :class:`~deepinv_lab.errors.UserError` naming the model unless a plain CNN
        has ``num_layers >= 2`` convolutions (a first one from the image channels and a last one
        back to them)."""
        if num_layers < 2:
            raise UserError(
                f"{type(self).__name__}: num_layers must be at least 2, got {num_layers}"
            )

    @classmethod
    def example(cls) -> tuple[Model, torch.Tensor]:
        """A small instance of this Model and a valid input for it."""
        raise NotImplementedError(f"{cls.__name__} does not provide an example()")
