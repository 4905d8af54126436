"""Unet and NormUnet: shapes for odd sizes, and state-dict/output parity with fastMRI's models."""

import fastmri.models
import pytest
import torch

from deepinv_lab.models import NormUnet, Unet


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("size", [(16, 16), (37, 29), (17, 21), (8, 31)])
def test_unet_shapes_odd_sizes(size):
    model = Unet(3, 5, chans=4, num_pool_layers=3)
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 5, *size)
    assert torch.isfinite(out).all()


def test_unet_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        Unet(3, 1, chans=4, num_pool_layers=2)(torch.randn(1, 2, 16, 16))


@pytest.mark.parametrize("size", [(32, 32), (37, 29)])
def test_unet_state_dict_and_output_parity(size):
    torch.manual_seed(0)
    reference = fastmri.models.Unet(3, 2, chans=4, num_pool_layers=3)
    ours = Unet(3, 2, chans=4, num_pool_layers=3)
    ref_state, our_state = reference.state_dict(), ours.state_dict()
    assert list(our_state) == list(ref_state)
    assert {k: v.shape for k, v in our_state.items()} == {k: v.shape for k, v in ref_state.items()}

    ours.load_state_dict(ref_state, strict=True)
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)

    # ...and the other way round: our weights run in fastMRI's Unet.
    torch.manual_seed(1)
    fresh = Unet(3, 2, chans=4, num_pool_layers=3)
    reference.load_state_dict(fresh.state_dict(), strict=True)
    torch.testing.assert_close(fresh(x), reference(x), rtol=1e-6, atol=1e-6)


def test_unet_dropout_layout_matches_fastmri():
    """Same seed, training mode, dropout on: identical outputs only if the layers line up."""
    torch.manual_seed(0)
    reference = fastmri.models.Unet(2, 2, chans=4, num_pool_layers=2, drop_prob=0.3).train()
    ours = Unet(2, 2, chans=4, num_pool_layers=2, drop_prob=0.3).train()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 2, 20, 17)
    torch.manual_seed(5)
    expected = reference(x)
    torch.manual_seed(5)
    torch.testing.assert_close(ours(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [(21, 27), (32, 16), (40, 33)])
def test_norm_unet_parity(size):
    torch.manual_seed(0)
    reference = fastmri.models.NormUnet(chans=4, num_pools=2)
    ours = NormUnet(chans=4, num_pool_layers=2)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)

    # fastMRI: (B, C, H, W, 2) real; ours: (B, C, H, W) complex. Offset and small scale on purpose,
    # so that the per-group normalisation matters.
    x_real = 1e-4 * (torch.randn(2, 1, *size, 2) + torch.tensor([3.0, -1.0]))
    expected = reference(x_real)
    out = ours(torch.view_as_complex(x_real))
    assert out.shape == (2, 1, *size) and out.is_complex()
    assert _relative_error(torch.view_as_real(out), expected) < 1e-5


def test_norm_unet_multichannel_shapes_and_homogeneity():
    """fastMRI's NormUnet only runs with one complex channel; ours normalises all real channels
    together and all imaginary channels together, so it is positively homogeneous."""
    torch.manual_seed(0)
    model = NormUnet(chans=4, num_pool_layers=2, in_chans=6, out_chans=6)
    x = torch.randn(2, 3, 19, 23, dtype=torch.complex64)
    out = model(x)
    assert out.shape == x.shape and out.is_complex()
    torch.testing.assert_close(model(7.5 * x), 7.5 * out, rtol=1e-4, atol=1e-4)


def test_norm_unet_rejects_real_input():
    with pytest.raises(ValueError, match="complex"):
        NormUnet(chans=4, num_pool_layers=2)(torch.randn(1, 2, 16, 16))
