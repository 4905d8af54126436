"""Every registered Model block is found automatically and checked: output shape and finite values
on the example's (odd where the architecture allows) input, gradient flow to every parameter,
state-dict round trip, pickling, and f(a x) = a f(x) for bias-free models. A Model added in
deepinv_lab.models is covered the day it is added: it only has to provide ``example()``."""

import copy
import importlib
import pickle
import pkgutil

import pytest
import torch

import deepinv_lab.models
from deepinv_lab.models import MODELS

for _module in pkgutil.walk_packages(deepinv_lab.models.__path__, "deepinv_lab.models."):
    importlib.import_module(_module.name)

NAMES = sorted(MODELS)


def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def test_registry_holds_the_skeleton_models():
    assert {"Unet", "NormUnet", "SensitivityModel"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_model_runs_and_trains(name):
    torch.manual_seed(0)
    model, x = MODELS[name].example()
    out = model(x)
    assert out.shape[0] == x.shape[0]
    assert torch.isfinite(_real(out)).all()
    out.abs().square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_and_pickling(name):
    torch.manual_seed(1)
    model, x = MODELS[name].example()
    model.eval()
    other = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.1)
    other.load_state_dict(model.state_dict())
    clone = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(other(x), expected)
        torch.testing.assert_close(clone(x), expected)


BIAS_FREE = [name for name in NAMES if getattr(MODELS[name].example()[0], "bias_free", False)]


@pytest.mark.parametrize("name", BIAS_FREE)
@pytest.mark.parametrize("scale", [0.5, 3.7])
def test_bias_free_models_are_positively_homogeneous(name, scale):
    torch.manual_seed(2)
    model, x = MODELS[name].example()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(scale * x), scale * model(x), rtol=1e-4, atol=1e-5)
