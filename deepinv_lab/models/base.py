"""The Model block base class: a learned network on real tensors ``(B, C, H, W)``.

Every concrete Model registers itself by class name (see :data:`MODELS`) and provides
:meth:`Model.example`, a small instance with a valid input, so that the test-suite checks every
Model (forward, finite outputs, gradients) the day it is added.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from deepinv_lab.errors import UserError

MODELS: dict[str, type[Model]] = {}


class Model(nn.Module):
    """Base class of Model blocks. Subclasses are registered in :data:`MODELS` by name."""

    abstract: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            MODELS[cls.__name__] = cls

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

    @classmethod
    def example(cls) -> tuple[Model, torch.Tensor]:
        """A small instance of this Model and a valid input for it."""
        raise NotImplementedError(f"{cls.__name__} does not provide an example()")
