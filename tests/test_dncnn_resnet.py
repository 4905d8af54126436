"""DnCNN, bias-free DnCNN/U-Net and MoDL's ResNet denoiser: parameter counts against hand
computations, residual formulas, positive homogeneity of the bias-free models, input errors."""

import re

import pytest
import torch

from deepinv_lab.models.dncnn import BiasFreeBatchNorm2d, BiasFreeDnCNN, DnCNN
from deepinv_lab.models.resnet import ResNetDenoiser
from deepinv_lab.models.unet import BiasFreeUnet, Unet

SCALES = [0.5, 3.7]


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _dncnn_count(num_layers: int, chans: int, in_chans: int, bias_free: bool) -> int:
    conv = 9 * chans  # a 3x3 kernel per (input, output) channel pair, per input channel
    first = conv * in_chans + (0 if bias_free else chans)
    middle = conv * chans + (chans if bias_free else 2 * chans)  # BN: gamma (, beta)
    last = conv * in_chans + (0 if bias_free else in_chans)
    return first + (num_layers - 2) * middle + last


def test_bias_free_defaults():
    assert BiasFreeDnCNN().bias_free and not DnCNN().bias_free
    assert BiasFreeUnet(1, 1).bias_free and not Unet(1, 1).bias_free


def test_dncnn_parameter_counts():
    # DnCNN-S (17 layers, 64 channels, gray): 640 + 15 * 36992 + 577.
    assert _count(DnCNN(in_chans=1, num_layers=17)) == _dncnn_count(17, 64, 1, False) == 556_097
    assert (
        _count(BiasFreeDnCNN(in_chans=1, num_layers=17)) == _dncnn_count(17, 64, 1, True) == 555_072
    )
    assert _count(DnCNN()) == _dncnn_count(20, 64, 1, False) == 667_073
    assert _count(BiasFreeDnCNN()) == _dncnn_count(20, 64, 1, True) == 665_856
    assert _count(DnCNN(in_chans=3, num_layers=6, chans=8)) == _dncnn_count(6, 8, 3, False)


def test_resnet_parameter_count():
    # 4 x (conv + BN gamma/beta) and a last conv with bias: (1152 + 128) + 3 * 36992 + 1154.
    assert _count(ResNetDenoiser()) == 1280 + 3 * 36992 + 1154 == 113_410


def test_bias_free_unet_parameter_count():
    standard, bias_free = Unet(2, 3, chans=4, num_pool_layers=2), BiasFreeUnet(2, 3, 4, 2)
    norm_channels = sum(
        m.num_features for m in bias_free.modules() if isinstance(m, BiasFreeBatchNorm2d)
    )
    # Same convolutions; the last 1x1 conv loses its 3 biases; each norm gains a gamma per channel.
    assert _count(bias_free) == _count(standard) - 3 + norm_channels


def test_dncnn_is_residual():
    torch.manual_seed(0)
    model, x = DnCNN.example()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), x - model.layers(x))
        for p in model.layers[-1].parameters():
            p.zero_()
        torch.testing.assert_close(model(x), x)


def test_resnet_is_residual():
    torch.manual_seed(0)
    model, x = ResNetDenoiser.example()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), x + model.layers(x))
        for p in model.layers[-1].parameters():
            p.zero_()
        torch.testing.assert_close(model(x), x)


def _bias_free_examples():
    torch.manual_seed(0)
    dncnn = BiasFreeDnCNN(in_chans=2, num_layers=6, chans=8)
    unet = BiasFreeUnet(2, 2, chans=4, num_pool_layers=2)
    return [(dncnn, torch.randn(2, 2, 17, 13)), (unet, torch.randn(2, 2, 19, 22))]


@pytest.mark.parametrize("index", [0, 1], ids=["dncnn", "unet"])
def test_bias_free_models_have_no_bias(index):
    model, x = _bias_free_examples()[index]
    assert not [n for n, _ in model.named_parameters() if "bias" in n]
    for mode in (model.train, model.eval):
        mode()
        with torch.no_grad():
            assert torch.count_nonzero(model(torch.zeros_like(x))) == 0


@pytest.mark.parametrize("index", [0, 1], ids=["dncnn", "unet"])
@pytest.mark.parametrize("scale", SCALES)
def test_bias_free_homogeneous_in_eval_mode(index, scale):
    model, x = _bias_free_examples()[index]
    # Non-trivial running statistics and weights first: a few training-mode passes.
    with torch.no_grad():
        for _ in range(3):
            model.train()(3.0 * torch.randn_like(x) + 1.0)
        for m in model.modules():
            if isinstance(m, BiasFreeBatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    assert any(
        (m.running_std != 1).all() for m in model.modules() if isinstance(m, BiasFreeBatchNorm2d)
    )
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(scale * x), scale * model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("index", [0, 1], ids=["dncnn", "unet"])
@pytest.mark.parametrize("scale", SCALES)
def test_bias_free_train_mode_homogeneous_per_sample_not_per_batch(index, scale):
    """Batch statistics are shared: in the batch [x, a x], outputs are [f(x), a f(x)]. A batch
    scaled on its own is not scaled through: the norm layers are scale-invariant in the batch."""
    model, x = _bias_free_examples()[index]
    model.train()
    with torch.no_grad():
        out = model(torch.cat([x, scale * x]))
        torch.testing.assert_close(out[len(x) :], scale * out[: len(x)], rtol=1e-4, atol=1e-5)
        alone, scaled = model(x), model(scale * x)
        assert not torch.allclose(scaled, scale * alone, rtol=1e-2, atol=1e-3)


def test_bias_free_batchnorm_train_and_eval():
    torch.manual_seed(0)
    norm = BiasFreeBatchNorm2d(3, momentum=0.5)
    x = 2.0 + 3.0 * torch.randn(4, 3, 5, 7)
    std = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + norm.eps)
    out = norm(x)
    torch.testing.assert_close(out, x / std.view(1, 3, 1, 1))  # no mean subtraction
    torch.testing.assert_close(norm(5.0 * x), out, rtol=1e-4, atol=1e-5)  # invariant in training
    std_5x = torch.sqrt(25.0 * x.var(dim=(0, 2, 3), unbiased=False) + norm.eps)
    # Two moving-average updates from 1 with momentum 0.5.
    torch.testing.assert_close(norm.running_std, 0.25 + 0.25 * std + 0.5 * std_5x)
    norm.eval()
    torch.testing.assert_close(norm(x), x / norm.running_std.view(1, 3, 1, 1))


@pytest.mark.parametrize(
    "model, shape",
    [
        (DnCNN(in_chans=1, num_layers=3, chans=4), (2, 3, 8, 8)),
        (BiasFreeDnCNN(in_chans=3, num_layers=3, chans=4), (2, 1, 8, 8)),
        (ResNetDenoiser(in_chans=2, num_layers=2, chans=4), (2, 1, 8, 8)),
        (BiasFreeUnet(2, 2, chans=4, num_pool_layers=2), (2, 3, 8, 8)),
        (DnCNN(in_chans=1, num_layers=3, chans=4), (8, 8)),
    ],
)
def test_wrong_channels_raise(model, shape):
    name = type(model).__name__
    expected = f"{name} expects input of shape (B, {model.in_chans}, H, W), got {shape}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        model(torch.randn(*shape))


@pytest.mark.parametrize("cls", [Unet, BiasFreeUnet])
def test_unet_input_too_small_raises(cls):
    model = cls(1, 1, chans=4, num_pool_layers=3)
    with pytest.raises(ValueError, match=rf"{cls.__name__} .*H, W >= 8.*\(1, 1, 7, 16\)"):
        model(torch.randn(1, 1, 7, 16))
    assert model(torch.randn(2, 1, 16, 17)).shape == (2, 1, 16, 17)


def test_bad_num_layers_raises():
    with pytest.raises(ValueError, match="DnCNN: num_layers must be at least 2, got 1"):
        DnCNN(num_layers=1)
    with pytest.raises(ValueError, match="ResNetDenoiser: num_layers must be at least 2, got 1"):
        ResNetDenoiser(num_layers=1)
