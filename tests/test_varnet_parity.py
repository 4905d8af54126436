"""E2E-VarNet parity with fastmri.models.VarNet: parameters, state dicts, outputs and gradients.

fastMRI keeps complex data as a trailing real dimension of 2 (``torch.view_as_real``) and its mask
as bool ``(B, 1, 1, W, 1)``; ours are native complex ``(B, coils, H, W)`` and a real
``(B, 1, 1, W)`` mask carried by the System.
"""

import math

import fastmri.models
import numpy as np
import pytest
import torch
from fastmri.data.subsample import RandomMaskFunc

from deepinv_lab.errors import UserError
from deepinv_lab.models import SensitivityModel
from deepinv_lab.models.sensitivity import acs_window
from deepinv_lab.optim import VarNetCascade
from deepinv_lab.recons.varnet import VarNet
from deepinv_lab.systems.mri import FFT2, CoilSensitivity, KSpaceMask, MultiCoilMRI

SMALL = dict(num_cascades=2, sens_chans=4, sens_num_pool_layers=2, chans=8, num_pool_layers=2)
SMALL_FASTMRI = dict(num_cascades=2, sens_chans=4, sens_pools=2, chans=8, pools=2)  # its names
BATCH, COILS, HEIGHT, WIDTH = 2, 4, 32, 24
CENTER_FRACTIONS = [0.25, 0.17]  # 6 and 4 ACS columns of 24
ACCELERATIONS = [3, 4]


def _relative_error(actual: torch.Tensor, expected: torch.Tensor, floor: float = 0.0) -> float:
    """``||actual - expected|| / max(||expected||, floor)`` in float64, never nan.

    ``floor`` turns the error absolute where ``expected`` is (near) zero; with ``floor=0`` an
    exactly zero ``expected`` gives 0 when ``actual`` is exactly zero too, else inf. Non-finite
    values give inf, so a ``<`` bound or a ``max`` over errors never skips them silently.
    """
    diff = float((actual.detach().double() - expected.detach().double()).norm())
    scale = max(float(expected.detach().double().norm()), floor)
    if not (math.isfinite(diff) and math.isfinite(scale)):
        return math.inf
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


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
    reference = fastmri.models.VarNet(**SMALL_FASTMRI)
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
        out = ours(data["y"], KSpaceMask(data["mask"], num_low))
    assert out.shape == (BATCH, 1, HEIGHT, WIDTH) and not out.is_complex()
    assert _relative_error(out[:, 0], expected) < 1e-4


def test_per_sample_acs_widths_match_fastmri_run_per_sample(models, data):
    ours, reference = models
    with torch.no_grad():
        out = ours(data["y"], KSpaceMask(data["mask"], torch.tensor(data["acs"])))
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
    target = torch.linspace(0, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    loss = ((out - target) ** 2).mean()
    loss.backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _gradient_errors(grads: dict, expected: dict) -> tuple[str, float]:
    """The worst per-parameter gradient error ``(name, error)`` over every parameter.

    Relative per parameter, with an absolute floor of 1e-6 of the whole expected gradient's
    norm, so that a gradient that is exactly zero in both (``cascades.0.dc_weight``: the first
    cascade starts from ``k = y``, so its data-consistency term ``M (k - y)`` is 0) counts as
    agreement instead of 0/0, while a nonzero one where fastMRI's is zero still fails.
    """
    assert list(grads) == list(expected)
    floor = 1e-6 * float(torch.cat([g.double().flatten() for g in expected.values()]).norm())
    errors = {name: _relative_error(grads[name], expected[name], floor) for name in expected}
    return max(errors.items(), key=lambda item: item[1])


def test_gradient_parity_float64(models, data):
    """Every parameter's gradient equals fastMRI's: the same maths, checked in float64.

    The gradients of a float32 run are not a parity check: the NormUnets' LeakyReLUs make the
    gradient piecewise smooth, and a pre-activation within float32 round-off of 0 takes the
    other slope (1 vs 0.2) in one implementation or on another machine (kernel and thread
    choices), which moves the gradients of the U-Nets upstream of it by up to a few 1e-2
    relative. With these inputs one pre-activation of ``cascades.0.model.unet.up_conv.0`` is
    2e-8 of its layer's largest, below float32's round-off there: taking its other slope moves
    cascade-0 U-Net gradients by 4.4e-3. Float64 round-off (~1e-16) is far from such margins;
    the two implementations agree to 5e-15.
    """
    ours, reference = (model.double() for model in models)
    _, expected = _loss_and_grads(reference, data["y_fm"].double(), data["mask_fm"], None)
    _, grads = _loss_and_grads(
        ours, data["y"].to(torch.complex128), KSpaceMask(data["mask"].double())
    )
    name, worst = _gradient_errors(grads, expected)
    assert worst < 1e-10, f"gradient of {name} differs from fastMRI's by {worst:.1e}"


def test_float32_gradients_track_float64(models, data):
    """The complex64 backward pass gives finite gradients that follow the float64 reference.

    A sanity bound, not parity (see :func:`test_gradient_parity_float64`): over 36 data/weight
    seeds, 1 or 2 threads and mkldnn on or off, float32 gradients of either implementation were
    within 6e-3 of fastMRI's float64 ones over all parameters together, and flipping one
    LeakyReLU slope moved them by up to 3e-2; 0.1 leaves room for that.
    """
    ours, reference = models
    _, grads = _loss_and_grads(ours, data["y"], KSpaceMask(data["mask"]))
    _, expected = _loss_and_grads(reference.double(), data["y_fm"].double(), data["mask_fm"], None)
    assert list(grads) == list(expected)
    assert all(grad.dtype == torch.float32 and grad.isfinite().all() for grad in grads.values())
    flat = [torch.cat([g.flatten() for g in gs.values()]) for gs in (grads, expected)]
    assert _relative_error(*flat) < 0.1


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
    ours = SensitivityModel(chans=4, num_pool_layers=2)
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
    with pytest.raises(UserError, match=r"num_low_frequencies must lie in \[0, 24\].*\[25\]"):
        ours(data["y"], KSpaceMask(data["mask"], WIDTH + 1))
    with pytest.raises(UserError, match="num_low_frequencies must be integers"):
        KSpaceMask(data["mask"], torch.tensor([2.5, 3.0]))


def test_acs_window_zero_means_derive_per_sample(data):
    derived = acs_window(WIDTH, data["mask"])
    given = acs_window(WIDTH, data["mask"], 2)
    mixed = acs_window(WIDTH, data["mask"], torch.tensor([0, 2]))
    assert torch.equal(mixed[0], derived[0]) and torch.equal(mixed[1], given[0])
    assert given.shape[0] == 1 and int(given.sum()) == 2


def test_sensitivity_model_needs_mask_or_acs_width(data):
    model = SensitivityModel(chans=2, num_pool_layers=1)
    with pytest.raises(ValueError, match="pass num_low_frequencies"):
        model(data["y"])
    assert model(data["y"], num_low_frequencies=4).shape == data["y"].shape


def test_varnet_receives_the_datasets_acs_width(mri_batch):
    """The ACS width the dataset drew travels on the batch's System into the sensitivity network
    (fastMRI passes it too), instead of being re-derived from the mask."""
    widths = mri_batch["num_low_frequencies"]
    assert torch.equal(mri_batch["system"].num_low_frequencies, widths)
    model = VarNet(num_cascades=1, sens_chans=2, sens_num_pool_layers=1, chans=2, num_pool_layers=1)
    seen = []
    model.sens_net.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    with torch.no_grad():
        model(mri_batch["y"], mri_batch["system"])
    assert torch.equal(seen[0], widths)
    # the window it selects is the dataset's, not the one derived from the mask (fastMRI's rule
    # gives an even width, here another one than the 3 columns the mask function reserved)
    width, mask = mri_batch["y"].shape[-1], mri_batch["system"].mask
    assert torch.equal(acs_window(width, mask, seen[0]).sum(dim=(1, 2, 3)), widths)
    assert not torch.equal(acs_window(width, mask).sum(dim=(1, 2, 3)), widths)
