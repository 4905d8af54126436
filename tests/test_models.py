"""Every registered Model block is found automatically and checked: forward, finite outputs,
gradients reaching every parameter, and pickling."""

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


def test_registry_holds_the_skeleton_models():
    assert {"Unet", "NormUnet", "SensitivityModel"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_model_runs_and_trains(name):
    torch.manual_seed(0)
    model, x = MODELS[name].example()
    out = model(x)
    assert torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all()
    loss = out.abs().square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    clone = pickle.loads(pickle.dumps(model))
    model.eval()
    clone.eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))
