"""DnCNN and its bias-free variant, with the bias-free batch normalisation they share.

References:
    K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian denoiser: Residual learning
    of deep CNN for image denoising", IEEE TIP 2017.
    S. Mohan, Z. Kadkhodaie, E. P. Simoncelli, C. Fernandez-Granda, "Robust and interpretable
    blind image denoising via bias-free convolutional neural networks", ICLR 2020.

Homogeneity of bias-free networks. A network without additive constants built from bias-free
convolutions, ReLU/LeakyReLU and a normalisation that divides by a *constant* is positively
homogeneous: ``f(a x) = a f(x)`` for ``a > 0``. :class:`BiasFreeBatchNorm2d` divides by a constant
in eval mode (the running standard deviation), so bias-free models are homogeneous in eval mode.
In train mode it divides by the standard deviation of the current batch, which scales with the
batch: the layer is then scale-*invariant* in the batch and ``f(a x) = a f(x)`` does not hold for a
batch on its own (a residual DnCNN gives ``a x - r(x)``). What does hold in train mode is
homogeneity *per sample with the batch statistics held fixed*: the statistics are shared over the
batch, so in a batch ``[x, a x]`` the second half's output is exactly ``a`` times the first half's.
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.models.base import Model
from deepinv_lab.models.layers import batch_norm as batch_norm_nd
from deepinv_lab.models.layers import check_spatial_dims, conv


class BiasFreeBatchNorm2d(nn.Module):
    """Batch normalisation without mean subtraction and without shift (Mohan et al., 2020).

    ``y = gamma_c * x / sigma_c``, where ``sigma_c`` is, per channel ``c``,

    - train mode: ``sqrt(var_c + eps)``, the (biased) variance of the batch over the batch and
      all spatial dimensions (``(B, H, W)`` for images, ``(B, D, H, W)`` for volumes).
      As in the paper's code the variance is taken about the channel mean, but the mean is *not*
      subtracted from ``x``; ``running_std`` is updated as an exponential moving average;
    - eval mode: ``running_std``, a constant, so the layer is linear (hence homogeneous).

    Dividing by the batch's own std makes the layer scale-invariant in train mode; see the module
    docstring for what that means for whole networks.

    Args:
        num_features: channels ``C``.
        eps: added to the variance before the square root.
        momentum: weight of the current batch in the running standard deviation.

    The name keeps its ``2d`` for the checkpoints that hold it; the layer works on any number of
    spatial dimensions (``BiasFreeBatchNorm`` is the same class).

    Shapes: ``(B, C, *spatial)`` -> ``(B, C, *spatial)``, e.g. ``(B, C, H, W)`` or
    ``(B, C, D, H, W)``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.register_buffer("running_std", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            reduced = (0, *range(2, x.ndim))
            std = torch.sqrt(x.var(dim=reduced, unbiased=False) + self.eps)
            with torch.no_grad():
                self.running_std.lerp_(std.detach(), self.momentum)
        else:
            std = self.running_std
        return x * (self.weight / std).view(1, -1, *([1] * (x.ndim - 2)))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


#: A clearer name for :class:`BiasFreeBatchNorm2d`, which works on images and volumes alike.
BiasFreeBatchNorm = BiasFreeBatchNorm2d


class DnCNN(Model):
    """DnCNN (Zhang et al., 2017): a residual denoiser ``f(x) = x - r(x)``.

    ``r`` estimates the noise with ``num_layers`` 3x3 convolutions: ``conv -> ReLU``, then
    ``num_layers - 2`` times ``conv -> BN -> ReLU``, then ``conv``. Standard (``bias_free=False``):
    ``nn.BatchNorm2d`` (``nn.BatchNorm3d`` for volumes), and a bias on the first and last
    convolutions only (the middle ones are followed by batch norm, whose shift makes a conv bias
    redundant). Bias-free
    (``bias_free=True``, Mohan et al., 2020): no conv bias anywhere and
    :class:`BiasFreeBatchNorm2d`, so ``f(a x) = a f(x)`` for ``a > 0`` in eval mode
    (see the module docstring for train mode) and ``f(0) = 0``.

    Args:
        in_chans: image channels (input and output).
        num_layers: number of convolutions (17 for DnCNN-S, 20 for blind DnCNN-B), at least 2.
        chans: feature channels of the hidden layers.
        bias_free: build the bias-free variant.
        batch_norm: ``False`` drops the normalisation layers (the middle convolutions then get
            a bias unless ``bias_free``): a network whose output does not depend on the batch,
            as the fixed-point iterations of a DEQ need (Gilton et al. use DnCNN without it).
        residual: ``True`` returns ``x - r(x)`` (DnCNN); ``False`` returns ``r(x)``, the plain
            CNN as a direct image estimate (at initialisation a contraction, the safer prior
            for a deep equilibrium model trained from scratch).
        spatial_dims: 2 for images, 3 for volumes (3x3x3 convolutions).

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, in_chans, H, W)``, any ``H, W``; with
    ``spatial_dims=3``, ``(B, in_chans, D, H, W)`` -> same.
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_layers: int = 20,
        chans: int = 64,
        bias_free: bool = False,
        batch_norm: bool = True,
        residual: bool = True,
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.check_num_layers(num_layers)
        self.spatial_dims = check_spatial_dims(spatial_dims, type(self).__name__)
        self.in_chans = in_chans
        self.num_layers = num_layers
        self.chans = chans
        self.bias_free = bias_free
        self.batch_norm = batch_norm
        self.residual = residual
        bias = not bias_free
        conv_nd, norm_nd = conv(spatial_dims), batch_norm_nd(spatial_dims)
        layers: list[nn.Module] = [
            conv_nd(in_chans, chans, kernel_size=3, padding=1, bias=bias),
            nn.ReLU(inplace=True),
        ]
        for _ in range(num_layers - 2):
            layers.append(
                conv_nd(chans, chans, kernel_size=3, padding=1, bias=bias and not batch_norm)
            )
            if batch_norm:
                layers.append(BiasFreeBatchNorm2d(chans) if bias_free else norm_nd(chans))
            layers.append(nn.ReLU(inplace=True))
        layers.append(conv_nd(chans, in_chans, kernel_size=3, padding=1, bias=bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, *spatial)`` noisy -> ``(B, in_chans, *spatial)`` denoised:
        ``x - r(x)`` (or ``r(x)`` without ``residual``)."""
        self.check_input(x, self.in_chans)
        noise = self.layers(x)
        return x - noise if self.residual else noise

    @classmethod
    def example(cls) -> tuple[DnCNN, torch.Tensor]:
        """A 5-layer, 8-channel DnCNN on a ``(2, 1, 17, 13)`` input (odd size on purpose)."""
        return cls(in_chans=1, num_layers=5, chans=8), torch.randn(2, 1, 17, 13)

    @classmethod
    def example_3d(cls) -> tuple[DnCNN, torch.Tensor]:
        """A 4-layer, 4-channel 3D DnCNN on a ``(2, 1, 9, 8, 7)`` volume."""
        model = cls(in_chans=1, num_layers=4, chans=4, spatial_dims=3)
        return model, torch.randn(2, 1, 9, 8, 7)


class BiasFreeDnCNN(DnCNN):
    """:class:`DnCNN` with ``bias_free=True`` by default (BF-CNN of Mohan et al., 2020)."""

    def __init__(
        self,
        in_chans: int = 1,
        num_layers: int = 20,
        chans: int = 64,
        bias_free: bool = True,
        batch_norm: bool = True,
        residual: bool = True,
        spatial_dims: int = 2,
    ):
        super().__init__(
            in_chans=in_chans,
            num_layers=num_layers,
            chans=chans,
            bias_free=bias_free,
            batch_norm=batch_norm,
            residual=residual,
            spatial_dims=spatial_dims,
        )
