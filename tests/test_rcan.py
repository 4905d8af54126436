"""RCAN: the paper's parameter count, shapes per scale, checkpoint/in-place equivalence, freezing,
the bottleneck variant and input errors."""

import pytest
import torch

from deepinv_lab.models.rcan import RCAN

SMALL = dict(chans=16, num_groups=2, num_blocks=2, reduction=4)


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_standard_x4_model_has_the_reference_parameter_count():
    model = RCAN()
    assert _trainable(model) == 15_592_355
    # the mean shift is a buffer, not a parameter: the count is the same with it
    with_mean = RCAN(num_groups=1, num_blocks=1, rgb_mean=(0.4488, 0.4371, 0.4040))
    assert _trainable(with_mean) == _trainable(RCAN(num_groups=1, num_blocks=1))


def test_small_parameter_count_by_hand():
    # head + group(RCAB + conv) + body conv + x2 upsampler + tail, chans=8, reduction 4
    conv3 = 8 * 8 * 9 + 8
    rcab = 2 * conv3 + (8 * 2 + 2) + (2 * 8 + 8)
    expected = (3 * 8 * 9 + 8) + (rcab + conv3) + conv3 + (8 * 32 * 9 + 32) + (8 * 3 * 9 + 3)
    model = RCAN(chans=8, num_groups=1, num_blocks=1, reduction=4, scale=2)
    assert _trainable(model) == expected


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_shape_on_odd_sizes(scale):
    model = RCAN(**SMALL, scale=scale, in_chans=1, out_chans=2)
    out = model(torch.randn(2, 1, 9, 7))
    assert out.shape == (2, 2, 9 * scale, 7 * scale)


@pytest.mark.parametrize("bad_scale", [0, 5, 6])
def test_unsupported_scale_fails(bad_scale):
    with pytest.raises(ValueError, match="scale"):
        RCAN(**SMALL, scale=bad_scale)


def _output_and_grads(model, x):
    out = model(x)
    out.square().mean().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize(
    "variant",
    [
        dict(checkpoint_groups=True),
        dict(inplace_activations=True),
        dict(checkpoint_groups=True, inplace_activations=True),
    ],
)
def test_memory_options_keep_outputs_and_gradients(variant):
    torch.manual_seed(0)
    reference = RCAN(**SMALL, scale=2)
    other = RCAN(**SMALL, scale=2, **variant)
    other.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 9, 7)
    out_ref, grads_ref = _output_and_grads(reference, x)
    out, grads = _output_and_grads(other, x)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-7)


def test_checkpoint_groups_stores_fewer_activations():
    def saved_bytes(model, x):
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x)
        return total

    torch.manual_seed(0)
    plain = RCAN(chans=16, num_groups=4, num_blocks=2, reduction=4, scale=1)
    ckpt = RCAN(chans=16, num_groups=4, num_blocks=2, reduction=4, scale=1, checkpoint_groups=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32)
    assert saved_bytes(ckpt, x) < 0.3 * saved_bytes(plain, x)


@pytest.mark.parametrize("names", [["head"], ["body"], ["tail"], ["body.1"], ["head", "tail.1"]])
def test_freeze_only_named_subnetworks(names):
    model = RCAN(**SMALL, scale=2, frozen=names)
    frozen_prefixes = tuple(n + "." for n in names)
    for name, p in model.named_parameters():
        assert p.requires_grad == (not name.startswith(frozen_prefixes)), name
    frozen_count = sum(p.numel() for n in names for p in model.get_submodule(n).parameters())
    assert _trainable(model) == _trainable(RCAN(**SMALL, scale=2)) - frozen_count
    optimizer = torch.optim.Adam(p for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == _trainable(model)
    model(torch.randn(1, 3, 5, 5)).mean().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith(frozen_prefixes))


def test_freeze_method_and_unknown_name():
    model = RCAN(**SMALL, scale=1)
    model.freeze(["body.0"])
    assert not any(p.requires_grad for p in model.body[0].parameters())
    assert all(p.requires_grad for p in model.body[1].parameters())
    with pytest.raises(ValueError, match="body.7"):
        model.freeze(["body.7"])


def test_bottleneck_variant():
    model = RCAN(**SMALL, scale=2, bottleneck=True, bottleneck_ratio=4, res_scale=0.1)
    assert model(torch.randn(2, 3, 9, 7)).shape == (2, 3, 18, 14)
    # 16 -> 4 (1x1), 4 -> 4 (3x3), 4 -> 16 (1x1) per block, instead of two 16 -> 16 3x3 convs
    block = model.body[0].body[0].body
    assert sum(p.numel() for p in block[:5].parameters()) == (16 * 4 + 4) + (4 * 4 * 9 + 4) + (
        4 * 16 + 16
    )
    assert _trainable(model) < _trainable(RCAN(**SMALL, scale=2))


def test_mean_shift_is_added_back():
    model = RCAN(**SMALL, scale=1, rgb_mean=(0.5, 0.25, 0.0))
    plain = RCAN(**SMALL, scale=1)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "rgb_mean"})
    x = torch.rand(1, 3, 6, 5)
    mean = torch.tensor([0.5, 0.25, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(model(x), plain(x - mean) + mean)


def test_wrong_input_channels_name_model_and_shapes():
    model = RCAN(**SMALL, scale=2)
    with pytest.raises(ValueError, match=r"RCAN.*\(B, 3, H, W\).*\(2, 1, 9, 7\)"):
        model(torch.randn(2, 1, 9, 7))
    with pytest.raises(ValueError, match="rgb_mean"):
        RCAN(**SMALL, in_chans=1, out_chans=1, rgb_mean=(0.4, 0.4, 0.4))
