"""The Model block base class: a learned network on real tensors ``(B, C, *spatial)``.

Images are ``(B, C, H, W)``; models built with ``spatial_dims=3`` (see
:mod:`deepinv_lab.models.layers`) take volumes ``(B, C, D, H, W)``.

Every concrete Model provides :meth:`Model.example`, a small instance with a valid 2D input: the
test-suite finds every subclass (:func:`deepinv_lab.discovery.subclasses`) and checks it (forward,
finite outputs, gradients) the day it is added. A Model that works on volumes also overrides
:meth:`Model.example_3d`, a small 3D instance with a volume; the same checks (and, for bias-free
models, ``f(a x) = a f(x)``) then run in 3D too. A Model whose :meth:`Model.example_3d` returns
``None`` (the default) is 2D-only, and the suite checks that it rejects a volume with one clear
:class:`~deepinv_lab.errors.UserError` (:meth:`Model.check_2d`).
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.layers import spatial_names


class Model(nn.Module):
    """Base class of Model blocks: learned networks, selected in configs by class name.

    A Model that supports volumes stores ``spatial_dims`` (2 or 3) as an attribute; one without
    that attribute works on 2D images only.
    """

    def check_input(self, x: torch.Tensor, channels: int) -> None:
        """Raise a :class:`~deepinv_lab.errors.UserError` naming the model, the expected and the
        given shape unless ``x`` is ``(B, channels, *spatial)`` with the model's
        ``spatial_dims`` (2 when the model has no such attribute) spatial dimensions.

        A user error: the channels a model takes are set in the config (``in_chans``) and must
        match the data's (grayscale or colour images, 2 real channels per complex MRI image), and
        so must ``spatial_dims`` (images or volumes).
        """
        spatial_dims = getattr(self, "spatial_dims", None)
        if spatial_dims is None:
            self.check_2d(x)
            spatial_dims = 2
        ndim = 2 + spatial_dims
        if x.ndim != ndim or x.shape[1] != channels:
            name = type(self).__name__
            if spatial_dims != 2:
                name += f"(spatial_dims={spatial_dims})"
            hint = ""
            if getattr(self, "in_chans", None) == channels and x.ndim == ndim:
                hint = f"; set in_chans to {x.shape[1]} to match the data"
            elif x.ndim in (4, 5) and x.ndim != ndim and hasattr(self, "spatial_dims"):
                hint = (
                    f"; set spatial_dims={x.ndim - 2} for {'volumes' if x.ndim == 5 else 'images'}"
                )
            raise UserError(
                f"{name} expects input of shape (B, {channels}, {spatial_names(spatial_dims)}), "
                f"got {tuple(x.shape)}{hint}"
            )

    def check_2d(self, x: torch.Tensor) -> None:
        """Raise a :class:`~deepinv_lab.errors.UserError` in one line if ``x`` is a volume
        ``(B, C, D, H, W)`` (5 dims) given to a model that works on 2D images only."""
        if x.ndim == 5:
            raise UserError(
                f"{type(self).__name__} works on 2D images (B, C, H, W) only; "
                f"got a volume of shape {tuple(x.shape)}"
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
        """A small instance of this Model and a valid 2D input for it."""
        raise NotImplementedError(f"{cls.__name__} does not provide an example()")

    @classmethod
    def example_3d(cls) -> tuple[Model, torch.Tensor] | None:
        """A small 3D instance of this Model and a valid volume ``(B, C, D, H, W)`` for it, or
        ``None`` (the default) for a Model that works on 2D images only.

        Keep it tiny (volumes of about 8^3 to 12^3 voxels, few channels): the test-suite runs
        the forward/backward, round-trip and homogeneity checks on it.
        """
        return None
