"""SRGAN generator/discriminator (parameter counts of the micro-CT reference, shapes, size errors)
and the model wrappers (complex, normalised complex, self-ensemble)."""

import pytest
import torch
from torch import nn

from deepinv_lab.functional import channels_to_complex, complex_to_channels
from deepinv_lab.models.srgan import SRGANDiscriminator, SRGANGenerator
from deepinv_lab.models.unet import NormUnet, Unet
from deepinv_lab.models.wrappers import ComplexWrapper, NormalizedComplexWrapper, SelfEnsemble


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_micro_ct_generator_has_406916_parameters():
    generator = SRGANGenerator(in_chans=1, out_chans=1, chans=64, num_blocks=1, variant="edsrgan")
    assert _count(generator) == 406_916


def test_discriminator_for_192_has_47157313_parameters():
    assert _count(SRGANDiscriminator(in_chans=1, input_size=192)) == 47_157_313


@pytest.mark.parametrize("variant", ["srgan", "edsrgan"])
def test_generator_upscales_odd_sizes_by_4(variant):
    generator = SRGANGenerator(in_chans=2, out_chans=3, chans=8, num_blocks=2, variant=variant)
    assert generator(torch.randn(2, 2, 5, 7)).shape == (2, 3, 20, 28)


def test_generator_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        SRGANGenerator(variant="esrgan")


@pytest.mark.parametrize("size", [192, (96, 64)])
def test_discriminator_gives_one_logit_per_image(size):
    h, w = (size, size) if isinstance(size, int) else size
    discriminator = SRGANDiscriminator(input_size=size)
    logits = discriminator(torch.randn(2, 1, h, w))
    assert logits.shape == (2, 1)
    assert torch.isfinite(logits).all()


def test_discriminator_names_expected_and_given_shape_on_wrong_size():
    discriminator = SRGANDiscriminator(input_size=(96, 64))
    with pytest.raises(ValueError, match=r"SRGANDiscriminator.*\(B, 1, 96, 64\).*\(2, 1, 64, 96\)"):
        discriminator(torch.randn(2, 1, 64, 96))


def test_discriminator_rejects_too_small_input_size():
    with pytest.raises(ValueError, match="too small"):
        SRGANDiscriminator(input_size=60)


def test_complex_wrapper_equals_manual_conversion():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 2, kernel_size=3, padding=1)
    x = torch.randn(2, 2, 9, 7, dtype=torch.complex64)
    expected = channels_to_complex(conv(complex_to_channels(x)))
    torch.testing.assert_close(ComplexWrapper(conv)(x), expected)


def test_complex_wrapper_rejects_real_input():
    with pytest.raises(ValueError, match="ComplexWrapper expects a complex"):
        ComplexWrapper(nn.Identity())(torch.randn(1, 2, 4, 4))


def test_normalized_complex_wrapper_matches_norm_unet():
    torch.manual_seed(0)
    norm_unet = NormUnet(chans=4, num_pool_layers=2).eval()
    unet = Unet(2, 2, chans=4, num_pool_layers=2)
    unet.load_state_dict(norm_unet.unet.state_dict())
    wrapper = NormalizedComplexWrapper(unet).eval()
    # H, W multiples of 16: NormUnet's padding is then a no-op.
    x = 3.0 + 2.0 * torch.randn(2, 1, 32, 48, dtype=torch.complex64)
    with torch.no_grad():
        torch.testing.assert_close(wrapper(x), norm_unet(x))


def _symmetric_conv() -> nn.Conv2d:
    """A 3x3 conv whose kernel is invariant under the 8 dihedral transforms."""
    conv = nn.Conv2d(1, 1, kernel_size=3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]))
    return conv


def _random_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 1, 3, padding=(1, 2), dilation=(1, 2)),
    )


@pytest.mark.parametrize("model", [nn.Identity(), _symmetric_conv()])
def test_self_ensemble_x8_of_equivariant_model_is_the_model(model):
    x = torch.randn(2, 1, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(SelfEnsemble(model, "x8")(x), model(x))


def test_self_ensemble_x8_is_rotation_and_flip_equivariant():
    net = _random_net()
    ensemble = SelfEnsemble(net, "x8")
    x = torch.randn(2, 1, 9, 7)
    with torch.no_grad():
        out = ensemble(x)
        rotated = torch.rot90(x, 1, dims=(-2, -1))
        # The random net itself is not equivariant, so the check has teeth.
        assert not torch.allclose(net(rotated), torch.rot90(net(x), 1, dims=(-2, -1)))
        torch.testing.assert_close(ensemble(rotated), torch.rot90(out, 1, dims=(-2, -1)))
        torch.testing.assert_close(ensemble(x.flip(-2)), out.flip(-2))


def test_self_ensemble_x2_is_flip_equivariant():
    net = _random_net()
    ensemble = SelfEnsemble(net, "x2")
    x = torch.randn(2, 1, 9, 7)
    with torch.no_grad():
        assert not torch.allclose(net(x.flip(-1)), net(x).flip(-1))
        torch.testing.assert_close(ensemble(x.flip(-1)), ensemble(x).flip(-1))


class _DenoisingRecon(nn.Module):
    """A Recon-shaped module ``forward(y, system)``; the System is a noise level here."""

    def __init__(self):
        super().__init__()
        self.net = _random_net()

    def forward(self, y: torch.Tensor, system: float) -> torch.Tensor:
        return y - system * self.net(y)


def test_self_ensemble_passes_the_system_to_a_recon():
    recon = _DenoisingRecon()
    ensemble = SelfEnsemble(recon, "x8")
    y = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ensemble(y, 0.0), y)
        out = ensemble(y, 0.5)
        torch.testing.assert_close(
            ensemble(torch.rot90(y, 1, dims=(-2, -1)), 0.5), torch.rot90(out, 1, dims=(-2, -1))
        )


def test_self_ensemble_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        SelfEnsemble(nn.Identity(), "x4")
