"""E2E-VarNet parity with fastmri.models.VarNet: parameters, state dicts, outputs and gradients.

fastMRI keeps complex data as a trailing real dimension of 2 (``torch.view_as_real``) and its mask
as bool ``(B, 1, 1, W, 1)``; ours are native complex ``(B, coils, H, W)`` and a real
``(B, 1, 1, W)`` mask carried by the System.
"""

import fastmri.models
import numpy as np
import pytest
import torch
from fastmri.data.subsample import RandomMaskFunc

from deepinv_lab.models import SensitivityModel
from deepinv_lab.models.sensitivity import acs_window
from deepinv_lab.optim import VarNetCascade
from deepinv_lab.recons.varnet import VarNet
from deepinv_lab.systems.mri import FFT2, CoilSensitivity, KSpaceMask, MultiCoilMRI

SMALL = dict(num_cascades=2, sens_chans=4, sens_pools=2, chans=8, pools=2)
BATCH, COILS, HEIGHT, WIDTH = 2, 4, 32, 24
CENTER_FRACTIONS = [0.25, 0.17]  # 6 and 4 ACS columns of 24
ACCELERATIONS = [3, 4]


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def _fastmri_masks() -> tuple[torch.Tensor, list[int]]:
    """Per-sample fastMRI column masks ``(B, 1, 1, W, 1)`` float and their ACS widths."""
    masks, acs = [], []
    for i in range(BATCH):
        mask_func = RandomMaskFunc([CENTER_FRACTIONS[i]], [ACCELERATIONS[i]], seed=i)
        mask, num_low = mask_func((COILS, HEIGHT, WIDTH, 2), seed=10 + i)
        masks.append(mask)
        acs.append(int(num_low))
    return torch.stack(masks), acs


@pytest.fixture
def data():
    """Masked k-space and mask in both conventions (float32)."""
    generator = torch.Generator().manual_seed(0)
    mask_fm, acs = _fastmri_masks()
    kspace = torch.randn(BATCH, COILS, HEIGHT, WIDTH, dtype=torch.complex64, generator=generator)
    mask = mask_fm[..., 0]  # (B, 1, 1, W) float
    y = kspace * mask
    return {
        "y": y,
        "mask": mask,
        "y_fm": torch.view_as_real(y).contiguous(),
        "mask_fm": mask_fm.bool(),
        "acs": acs,
    }


@pytest.fixture
def models():
    torch.manual_seed(0)
    reference = fastmri.models.VarNet(**SMALL)
    ours = VarNet(**SMALL)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


def test_default_parameter_count_and_state_dict_layout():
    ours = VarNet()
    reference = fastmri.models.VarNet()
    assert sum(p.numel() for p in ours.parameters()) == 29_936_966
    ref_state, our_state = reference.state_dict(), ours.state_dict()
    assert list(our_state) == list(ref_state)
    assert all(our_state[k].shape == v.shape for k, v in ref_state.items())


@pytest.mark.parametrize("given_acs", [True, False], ids=["num_low_given", "num_low_derived"])
def test_output_parity(models, data, given_acs):
    ours, reference = models
    # fastMRI takes one int for the batch; the smaller ACS width is valid for both samples.
    num_low = min(data["acs"]) if given_acs else None
    with torch.no_grad():
        expected = reference(data["y_fm"], data["mask_fm"], num_low)
        out = ours(data["y"], KSpaceMask(data["mask"]), num_low)
    assert out.shape == (BATCH, 1, HEIGHT, WIDTH) and not out.is_complex()
    assert _relative_error(out[:, 0], expected) < 1e-4


def test_per_sample_acs_widths_match_fastmri_run_per_sample(models, data):
    ours, reference = models
    with torch.no_grad():
        out = ours(data["y"], KSpaceMask(data["mask"]), torch.tensor(data["acs"]))
        for i, num_low in enumerate(data["acs"]):
            one = slice(i, i + 1)
            expected = reference(data["y_fm"][one], data["mask_fm"][one], num_low)
            assert _relative_error(out[one, 0], expected) < 1e-4


def test_multicoil_system_mask_is_used(models, data):
    """Any System with a ``.mask`` works; the System's own coil maps are ignored."""
    ours, _ = models
    dummy_maps = torch.ones(BATCH, COILS, HEIGHT, WIDTH, dtype=torch.complex64)
    with torch.no_grad():
        a = ours(data["y"], MultiCoilMRI(dummy_maps, data["mask"]))
        b = ours(data["y"], KSpaceMask(data["mask"]))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def _loss_and_grads(model, *inputs):
    model.zero_grad()
    out = model(*inputs)
    out = out[:, 0] if out.ndim == 4 else out
    target = torch.linspace(0, 1, out.numel()).reshape(out.shape)
    loss = ((out - target) ** 2).mean()
    loss.backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_gradient_parity(models, data):
    ours, reference = models
    _, expected = _loss_and_grads(reference, data["y_fm"], data["mask_fm"], None)
    _, grads = _loss_and_grads(ours, data["y"], KSpaceMask(data["mask"]))
    assert grads.keys() == expected.keys()
    worst = max(_relative_error(grads[name], expected[name]) for name in expected)
    assert worst < 1e-4


def test_checkpoint_cascades_same_outputs_and_gradients(models, data):
    ours, _ = models
    system = KSpaceMask(data["mask"])
    out, grads = _loss_and_grads(ours, data["y"], system)
    ours.checkpoint_cascades = True
    out_ckpt, grads_ckpt = _loss_and_grads(ours, data["y"], system)
    torch.testing.assert_close(out_ckpt, out, rtol=1e-6, atol=1e-7)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-5, atol=1e-7)


def test_cascade_matches_fastmri_block(data):
    torch.manual_seed(0)
    reference = fastmri.models.varnet.VarNetBlock(fastmri.models.NormUnet(4, 2))
    reference.dc_weight.data.fill_(0.7)
    ours = VarNetCascade(fastmri.models.NormUnet(4, 2))
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.model = _ComplexAdapter(ours.model)  # fastMRI's NormUnet wants (..., 2) real tensors

    maps = torch.randn(BATCH, COILS, HEIGHT, WIDTH, dtype=torch.complex64)
    kspace = torch.randn(BATCH, COILS, HEIGHT, WIDTH, dtype=torch.complex64)
    coils = FFT2() @ CoilSensitivity(maps)
    with torch.no_grad():
        expected = reference(
            torch.view_as_real(kspace), data["y_fm"], data["mask_fm"], torch.view_as_real(maps)
        )
        out = ours(kspace, data["y"], data["mask"], coils, coils.adjoint)
    assert _relative_error(torch.view_as_real(out), expected) < 1e-5


class _ComplexAdapter(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.view_as_complex(self.model(torch.view_as_real(x)).contiguous())


@pytest.mark.parametrize(
    "columns",
    [
        "000011111100",  # even ACS block
        "000111110000",  # odd block: fastMRI keeps 2 * min(left, right)
        "101011111101",  # sampled lines around the block
        "111111111111",  # fully sampled: no unsampled column, fastMRI keeps 1
        "000001000000",
        "000000100000",
    ],
)
def test_acs_window_matches_fastmri_derivation(columns):
    mask = torch.tensor([float(c) for c in columns]).reshape(1, 1, 1, -1)
    helper = fastmri.models.varnet.SensitivityModel(chans=2, num_pools=1)
    pad, num_low = helper.get_pad_and_num_low_freqs(mask[..., None].bool(), None)
    expected = np.zeros(len(columns), dtype=bool)
    expected[int(pad) : int(pad + num_low)] = True
    window = acs_window(len(columns), mask)
    assert window.shape == (1, 1, 1, len(columns))
    assert window[0, 0, 0].tolist() == expected.tolist()


def test_sensitivity_maps_parity_and_unit_rss(data):
    torch.manual_seed(0)
    reference = fastmri.models.varnet.SensitivityModel(chans=4, num_pools=2)
    ours = SensitivityModel(chans=4, num_pools=2)
    ours.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        expected = reference(data["y_fm"], data["mask_fm"], None)
        maps = ours(data["y"], data["mask"])
    assert maps.shape == data["y"].shape and maps.is_complex()
    assert _relative_error(torch.view_as_real(maps), expected) < 1e-5
    torch.testing.assert_close(
        maps.abs().pow(2).sum(1), torch.ones(BATCH, HEIGHT, WIDTH), rtol=1e-5, atol=1e-5
    )


def test_mask_that_does_not_fit_names_both_shapes(models, data):
    ours, _ = models
    bad_mask = torch.ones(BATCH, 1, 1, WIDTH + 1)
    with pytest.raises(ValueError, match=r"\(2, 1, 1, 25\).*\(2, 4, 32, 24\)"):
        ours(data["y"], KSpaceMask(bad_mask))


def test_bad_num_low_frequencies(models, data):
    ours, _ = models
    with pytest.raises(ValueError, match="num_low_frequencies"):
        ours(data["y"], KSpaceMask(data["mask"]), WIDTH + 1)


def test_acs_window_zero_means_derive_per_sample(data):
    derived = acs_window(WIDTH, data["mask"])
    given = acs_window(WIDTH, data["mask"], 2)
    mixed = acs_window(WIDTH, data["mask"], torch.tensor([0, 2]))
    assert torch.equal(mixed[0], derived[0]) and torch.equal(mixed[1], given[0])
    assert given.shape[0] == 1 and int(given.sum()) == 2


def test_sensitivity_model_needs_mask_or_acs_width(data):
    model = SensitivityModel(chans=2, num_pools=1)
    with pytest.raises(ValueError, match="pass num_low_frequencies"):
        model(data["y"])
    assert model(data["y"], num_low_frequencies=4).shape == data["y"].shape
