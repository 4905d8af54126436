"""Volumes ``(B, C, D, H, W)``: the N-d pixel shuffle against torch's 2D one and its index
formula, ``spatial_dims`` checks and messages, the 3D layers each model builds, shapes, the
invariants that hold in 3D (bias-free homogeneity, NormUnet's scale equivariance, flip
equivariance of the self-ensemble, gradient checkpointing), and structured pruning of 3D
bias-free networks. The generic checks (forward, gradients, round trip) of every 3D example run
in tests/test_models.py."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional import channels_to_complex, complex_to_channels
from deepinv_lab.models import (
    RCAN,
    BiasFreeBatchNorm,
    BiasFreeBatchNorm2d,
    BiasFreeDnCNN,
    BiasFreeUnet,
    ComplexWrapper,
    DnCNN,
    NormalizedComplexWrapper,
    NormUnet,
    SelfEnsemble,
    SRGANDiscriminator,
    SRGANGenerator,
    Unet,
)
from deepinv_lab.models.layers import PixelShuffleNd, pixel_shuffle_nd, pixel_unshuffle_nd
from deepinv_lab.models.wrappers import self_ensemble_transforms
from deepinv_lab.pruning.structured import prune_blocks


def test_pixel_shuffle_nd_matches_torch_in_2d_and_its_formula_in_3d():
    torch.manual_seed(0)
    x = torch.randn(2, 18, 4, 5)
    assert torch.equal(pixel_shuffle_nd(x, 3), F.pixel_shuffle(x, 3))
    y = torch.randn(2, 3, 6, 4)
    assert torch.equal(pixel_unshuffle_nd(y, 2), F.pixel_unshuffle(y, 2))

    r = 2
    v = torch.randn(2, 3 * r**3, 2, 3, 4)
    out = pixel_shuffle_nd(v, r)
    assert out.shape == (2, 3, 4, 6, 8)
    for c, i, j, k, d, h, w in [
        (0, 0, 0, 0, 0, 0, 0),
        (2, 1, 0, 1, 1, 2, 3),
        (1, 0, 1, 1, 0, 1, 2),
    ]:
        channel = c * r**3 + i * r**2 + j * r + k
        assert out[1, c, r * d + i, r * h + j, r * w + k] == v[1, channel, d, h, w]
    assert torch.equal(pixel_unshuffle_nd(out, r), v)


def test_pixel_shuffle_nd_rejects_bad_channels_and_sizes():
    with pytest.raises(ValueError, match="not divisible"):
        pixel_shuffle_nd(torch.randn(1, 12, 2, 2, 2), 2)
    with pytest.raises(ValueError, match="not multiples of 2"):
        pixel_unshuffle_nd(torch.randn(1, 1, 4, 3, 4), 2)


BUILDERS = {
    "DnCNN": lambda d: DnCNN(num_layers=3, chans=4, spatial_dims=d),
    "BiasFreeDnCNN": lambda d: BiasFreeDnCNN(num_layers=3, chans=4, spatial_dims=d),
    "Unet": lambda d: Unet(1, 1, chans=2, num_pool_layers=1, spatial_dims=d),
    "BiasFreeUnet": lambda d: BiasFreeUnet(1, 1, chans=2, num_pool_layers=1, spatial_dims=d),
    "NormUnet": lambda d: NormUnet(chans=2, num_pool_layers=1, spatial_dims=d),
    "RCAN": lambda d: RCAN(1, 1, chans=4, num_groups=1, num_blocks=1, spatial_dims=d),
    "SRGANGenerator": lambda d: SRGANGenerator(chans=4, num_blocks=1, spatial_dims=d),
    "SRGANDiscriminator": lambda d: SRGANDiscriminator(input_size=61, chans=2, spatial_dims=d),
    "SelfEnsemble": lambda d: SelfEnsemble(nn.Identity(), spatial_dims=d),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("spatial_dims", [1, 4, True])
def test_spatial_dims_other_than_2_or_3_is_a_user_error(name, spatial_dims):
    with pytest.raises(UserError, match=rf"^{name}: spatial_dims must be 2 \(images\) or 3"):
        BUILDERS[name](spatial_dims)


def test_wrong_dimensionality_names_the_model_the_shapes_and_the_fix():
    volume_model = DnCNN(num_layers=3, chans=4, spatial_dims=3)
    with pytest.raises(UserError) as error:
        volume_model(torch.randn(2, 1, 8, 8))
    assert str(error.value) == (
        "DnCNN(spatial_dims=3) expects input of shape (B, 1, D, H, W), got (2, 1, 8, 8); "
        "set spatial_dims=2 for images"
    )
    with pytest.raises(UserError, match=r"^DnCNN\(spatial_dims=3\) expects .*\(B, 1, D, H, W\)"):
        volume_model(torch.randn(2, 3, 8, 8, 8))
    hint = r"got \(1, 1, 8, 8, 8\); set spatial_dims=3 for volumes$"
    with pytest.raises(UserError, match=r"^Unet expects .*\(B, 1, H, W\), " + hint):
        BUILDERS["Unet"](2)(torch.randn(1, 1, 8, 8, 8))
    expected = r"^NormUnet\(spatial_dims=3\) expects complex input of shape \(B, 1, D, H, W\)"
    with pytest.raises(UserError, match=expected):
        BUILDERS["NormUnet"](3)(torch.randn(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(UserError, match=r"^Unet with num_pool_layers=2 expects D, H, W >= 4"):
        Unet(1, 1, chans=2, num_pool_layers=2, spatial_dims=3)(torch.randn(1, 1, 3, 8, 8))


def test_spatial_dims_2_is_the_default_and_builds_the_same_network():
    torch.manual_seed(0)
    default = RCAN(1, 1, chans=4, num_groups=1, num_blocks=1, bottleneck=True)
    torch.manual_seed(0)
    explicit = RCAN(1, 1, chans=4, num_groups=1, num_blocks=1, bottleneck=True, spatial_dims=2)
    assert repr(default) == repr(explicit)
    for (key, value), (other_key, other) in zip(
        default.state_dict().items(), explicit.state_dict().items(), strict=True
    ):
        assert key == other_key and torch.equal(value, other)


def test_bias_free_batch_norm_normalises_over_batch_and_all_spatial_dims():
    assert BiasFreeBatchNorm is BiasFreeBatchNorm2d
    torch.manual_seed(0)
    norm = BiasFreeBatchNorm(3, momentum=1.0)
    x = 2.0 + 3.0 * torch.randn(4, 3, 5, 6, 7)
    out = norm(x)
    std = torch.sqrt(x.transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=False) + norm.eps)
    torch.testing.assert_close(out, x / std.view(1, 3, 1, 1, 1))
    torch.testing.assert_close(norm.running_std, std)
    assert set(norm.state_dict()) == {"weight", "running_std"}
    norm.eval()
    torch.testing.assert_close(norm(x), x / std.view(1, 3, 1, 1, 1))


def test_3d_models_build_3d_layers():
    conv_kinds = {}
    for name in ("DnCNN", "Unet", "RCAN", "SRGANGenerator", "SRGANDiscriminator"):
        modules = BUILDERS[name](3).modules()
        conv_kinds[name] = {type(m) for m in modules if isinstance(m, nn.modules.conv._ConvNd)}
    assert conv_kinds["Unet"] == {nn.Conv3d, nn.ConvTranspose3d}
    assert all(kinds == {nn.Conv3d} for name, kinds in conv_kinds.items() if name != "Unet")
    unet = BUILDERS["Unet"](3)
    assert any(isinstance(m, nn.InstanceNorm3d) for m in unet.modules())
    assert any(isinstance(m, nn.Dropout3d) for m in unet.modules())
    rcan = BUILDERS["RCAN"](3)
    assert any(isinstance(m, nn.AdaptiveAvgPool3d) for m in rcan.modules())
    assert any(isinstance(m, PixelShuffleNd) for m in rcan.modules())


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_rcan_3d_upsamples_every_spatial_dim(scale):
    torch.manual_seed(0)
    kwargs = dict(chans=4, num_groups=1, num_blocks=1, reduction=2, bottleneck=scale == 3)
    model = RCAN(1, 2, scale=scale, spatial_dims=3, **kwargs)
    x = torch.randn(1, 1, 3, 2, 4)
    with torch.no_grad():
        assert model(x).shape == (1, 2, 3 * scale, 2 * scale, 4 * scale)


def test_rcan_3d_rgb_mean_and_checkpointing():
    torch.manual_seed(0)
    kwargs = dict(chans=4, num_groups=2, num_blocks=1, reduction=2, scale=2, spatial_dims=3)
    model = RCAN(2, 2, rgb_mean=(0.5, -0.5), bottleneck=True, **kwargs)
    assert model.rgb_mean.shape == (1, 2, 1, 1, 1)
    checkpointed = RCAN(
        2, 2, rgb_mean=(0.5, -0.5), bottleneck=True, checkpoint_groups=True, **kwargs
    )
    checkpointed.load_state_dict(model.state_dict())
    x = torch.randn(2, 2, 3, 4, 3)
    out, out_checkpointed = model(x), checkpointed(x)
    assert torch.equal(out, out_checkpointed)
    out.square().sum().backward()
    out_checkpointed.square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_3d_channel_attention_pools_over_all_spatial_dims():
    torch.manual_seed(0)
    rcan = RCAN(1, 1, chans=4, num_groups=1, num_blocks=1, reduction=2, scale=1, spatial_dims=3)
    attention = rcan.body[0].body[0].body[-1]  # group 0, block 0, its channel attention
    x = torch.randn(2, 4, 3, 5, 6)
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    weights = attention.attention[1:](mean)
    torch.testing.assert_close(attention(x), x * weights)


@pytest.mark.parametrize("variant", ["srgan", "edsrgan"])
def test_srgan_generator_3d(variant):
    torch.manual_seed(0)
    kwargs = dict(chans=4, num_blocks=1, num_upsample=2, variant=variant)
    model = SRGANGenerator(1, 2, spatial_dims=3, **kwargs)
    ups = [m for m in model.upsample if isinstance(m, nn.Conv3d)]
    assert [m.out_channels for m in ups] == [32, 32]  # 2^3 * chans for a 3D shuffle by 2
    assert any(isinstance(m, nn.BatchNorm3d) for m in model.modules()) == (variant == "srgan")
    with torch.no_grad():
        assert model(torch.randn(1, 1, 2, 3, 2)).shape == (1, 2, 8, 12, 8)


def test_srgan_discriminator_3d_input_size_and_dense_layer():
    model = SRGANDiscriminator(input_size=96, chans=2, spatial_dims=3)
    assert model.input_size == (96, 96, 96)
    # 96 -> 94 -> 46 -> 44 -> 21 -> 19 -> 9 -> 7 -> 3 per side; 8 * chans channels at the end.
    assert model.classifier[1].in_features == 16 * 3**3
    anisotropic = SRGANDiscriminator(input_size=(61, 70, 96), chans=2, spatial_dims=3)
    assert anisotropic.classifier[1].in_features == 16 * 1 * 1 * 3
    with pytest.raises(UserError, match=r"input_size must be an int or 3 sizes \(D, H, W\)"):
        SRGANDiscriminator(input_size=(64, 64), spatial_dims=3)
    with pytest.raises(UserError, match=r"too small; D, H, W must be at least 61"):
        SRGANDiscriminator(input_size=(61, 61, 60), chans=2, spatial_dims=3)
    small = SRGANDiscriminator(input_size=(61, 62, 61), chans=2, spatial_dims=3)
    expected = r"^SRGANDiscriminator\(spatial_dims=3\) expects input of shape \(B, 1, 61, 62, 61\)"
    with pytest.raises(UserError, match=expected):
        small(torch.randn(1, 1, 61, 61, 62))


def test_unet_3d_odd_sizes_and_bias_free_homogeneity():
    torch.manual_seed(0)
    model = BiasFreeUnet(1, 2, chans=2, num_pool_layers=2, spatial_dims=3)
    x = torch.randn(2, 1, 9, 7, 10)
    model.train()
    with torch.no_grad():
        model(x)  # non-trivial running statistics
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 2, 9, 7, 10)
        torch.testing.assert_close(model(2.5 * x), 2.5 * out, rtol=1e-4, atol=1e-5)


def test_norm_unet_3d_is_scale_equivariant_and_matches_the_wrapper():
    torch.manual_seed(0)
    model = NormUnet(chans=2, num_pool_layers=2, spatial_dims=3).eval()
    x = torch.randn(1, 1, 16, 16, 16, dtype=torch.complex64)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(model(3.0 * x), 3.0 * out, rtol=1e-4, atol=1e-4)
        # At sizes that are multiples of 16 nothing is padded: NormUnet = wrapper around its Unet.
        torch.testing.assert_close(NormalizedComplexWrapper(model.unet)(x), out)
        odd = torch.randn(1, 1, 5, 17, 9, dtype=torch.complex64)
        assert model(odd).shape == odd.shape


def test_complex_wrapper_on_volumes_equals_manual_conversion():
    torch.manual_seed(0)
    conv = nn.Conv3d(2, 4, kernel_size=3, padding=1)
    x = torch.randn(2, 1, 4, 5, 3, dtype=torch.complex64)
    expected = channels_to_complex(conv(complex_to_channels(x)))
    torch.testing.assert_close(ComplexWrapper(conv)(x), expected)


def test_self_ensemble_3d_averages_the_8_flips_and_is_flip_equivariant():
    transforms = self_ensemble_transforms("x8", 3)
    assert len(transforms) == 8 == len({flips for _, flips in transforms})
    assert all(k == 0 for k, _ in transforms)
    assert self_ensemble_transforms("x2", 3) == [(0, ()), (0, (-1,))]
    torch.manual_seed(0)
    ensemble = SelfEnsemble(nn.Conv3d(1, 1, kernel_size=3, padding=1), spatial_dims=3)
    x = torch.randn(1, 1, 4, 5, 6)
    with torch.no_grad():
        out = ensemble(x)
        for dims in ((-3,), (-2,), (-1,), (-3, -1)):
            torch.testing.assert_close(ensemble(x.flip(dims)), out.flip(dims))


def test_self_ensemble_2d_is_unchanged():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, kernel_size=3, padding=1)
    x = torch.randn(2, 1, 6, 5)
    expected = 0
    for k in range(4):
        for flip in (False, True):
            t = torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1))
            back = torch.rot90(conv(t), -k, dims=(-2, -1))
            expected = expected + (back.flip(-1) if flip else back)
    with torch.no_grad():
        torch.testing.assert_close(SelfEnsemble(conv)(x), expected / 8)


def _prune_and_check_homogeneity(model: nn.Module, x: torch.Tensor, ratio: float = 0.5) -> None:
    model.train()
    with torch.no_grad():
        model(x)  # running statistics different from 1
    model.eval()
    report = prune_blocks({"model": model}, {"model": (x,)}, ratio)
    assert report[0].channels_after < report[0].channels_before
    with torch.no_grad():
        out = model(x)
        assert out.shape == x.shape and torch.isfinite(out).all()
        for scale in (0.5, 3.7):
            torch.testing.assert_close(model(scale * x), scale * out, rtol=1e-4, atol=1e-5)


def test_pruned_3d_bias_free_dncnn_runs_and_stays_homogeneous():
    torch.manual_seed(0)
    model = BiasFreeDnCNN(num_layers=4, chans=8, spatial_dims=3)
    norms = [m for m in model.modules() if isinstance(m, BiasFreeBatchNorm)]
    _prune_and_check_homogeneity(model, torch.randn(2, 1, 6, 7, 5))
    assert all(m.weight.numel() == m.running_std.numel() == m.num_features == 4 for m in norms)


def test_pruned_3d_bias_free_unet_runs_and_stays_homogeneous():
    torch.manual_seed(0)
    model = BiasFreeUnet(1, 1, chans=4, num_pool_layers=2, spatial_dims=3)
    _prune_and_check_homogeneity(model, torch.randn(2, 1, 8, 9, 8))


def test_pruned_3d_unet_with_instance_norm_runs():
    torch.manual_seed(0)
    model, x = Unet.example_3d()
    with torch.no_grad():
        before = model(x).shape
    report = prune_blocks({"unet": model}, {"unet": (x,)}, 0.5)
    assert report[0].params_after < report[0].params_before
    norms = [m for m in model.modules() if isinstance(m, nn.InstanceNorm3d)]
    with torch.no_grad():
        assert model(x).shape == before
    first = model.down_sample_layers[0].layers
    assert norms[0].num_features == first[0].out_channels  # synced after pruning


def test_pruned_3d_rcan_keeps_its_upsampler():
    torch.manual_seed(0)
    model, x = RCAN.example_3d()
    before = model(x).shape
    prune_blocks({"rcan": model}, {"rcan": (x,)}, 0.25)
    upsampler = model.tail[0]
    assert upsampler[0].out_channels == 8 * 4  # the conv feeding the 3D shuffle is protected
    with torch.no_grad():
        assert model(x).shape == before
