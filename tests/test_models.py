"""Every Model block is found automatically (a subclass walk, not a list) and checked: output
shape and finite values on the example's (odd where the architecture allows) input, gradient flow
to every parameter, state-dict round trip, pickling, and f(a x) = a f(x) for bias-free models. A
Model added in deepinv_lab.models is covered the day it is added: it only has to provide
``example()``.

Models that work on volumes also provide ``example_3d()`` (see deepinv_lab.models.base): the same
checks then run on the 3D instance too (test ids ending in ``-3d``). A Model whose
``example_3d()`` is None is 2D-only and must reject a volume with one clear UserError."""

import copy
import inspect
import pickle

import pytest
import torch

from deepinv_lab.discovery import subclasses
from deepinv_lab.errors import UserError
from deepinv_lab.models import Model

MODELS = {cls.__name__: cls for cls in subclasses(Model, "deepinv_lab.models")}
NAMES = sorted(MODELS)
NAMES_3D = [name for name in NAMES if MODELS[name].example_3d() is not None]
NAMES_2D_ONLY = [name for name in NAMES if name not in NAMES_3D]


def _cases(names: list[str]) -> list:
    """``(name, spatial_dims)`` for the 2D example of every name and the 3D one where there is
    one; the 2D ids are the bare names."""
    cases = [pytest.param(name, 2, id=name) for name in names]
    return cases + [pytest.param(name, 3, id=f"{name}-3d") for name in names if name in NAMES_3D]


def _example(name: str, spatial_dims: int) -> tuple[Model, torch.Tensor]:
    cls = MODELS[name]
    return cls.example() if spatial_dims == 2 else cls.example_3d()


def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def test_discovery_finds_every_model_once():
    assert {"Unet", "NormUnet", "SensitivityModel", "DnCNN", "BiasFreeDnCNN"} <= set(NAMES)
    assert len(MODELS) == len(subclasses(Model, "deepinv_lab.models")), "two Models share a name"


def test_discovery_ignores_models_defined_outside_the_package():
    class _LocalModel(Model):
        pass

    assert _LocalModel in subclasses(Model)
    assert _LocalModel not in subclasses(Model, "deepinv_lab.models")


@pytest.mark.parametrize(("name", "spatial_dims"), _cases(NAMES))
def test_every_model_runs_and_trains(name, spatial_dims):
    torch.manual_seed(0)
    model, x = _example(name, spatial_dims)
    assert x.ndim == 2 + spatial_dims
    out = model(x)
    assert out.shape[0] == x.shape[0]
    assert torch.isfinite(_real(out)).all()
    out.abs().square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize(("name", "spatial_dims"), _cases(NAMES))
def test_state_dict_round_trip_and_pickling(name, spatial_dims):
    torch.manual_seed(1)
    model, x = _example(name, spatial_dims)
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


def test_bias_free_models_are_found():
    assert {"BiasFreeDnCNN", "BiasFreeUnet"} <= set(BIAS_FREE)


@pytest.mark.parametrize(("name", "spatial_dims"), _cases(BIAS_FREE))
@pytest.mark.parametrize("scale", [0.5, 3.7])
def test_bias_free_models_are_positively_homogeneous(name, spatial_dims, scale):
    torch.manual_seed(2)
    model, x = _example(name, spatial_dims)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(scale * x), scale * model(x), rtol=1e-4, atol=1e-5)


def test_3d_models_are_found():
    assert {"DnCNN", "BiasFreeDnCNN", "Unet", "BiasFreeUnet", "NormUnet", "RCAN"} <= set(NAMES_3D)
    assert {"SRGANGenerator", "SRGANDiscriminator", "SelfEnsemble"} <= set(NAMES_3D)
    assert {"BiasFreeDnCNN", "BiasFreeUnet"} <= set(BIAS_FREE) & set(NAMES_3D)


@pytest.mark.parametrize("name", NAMES)
def test_models_taking_spatial_dims_have_a_3d_example(name):
    takes_spatial_dims = "spatial_dims" in inspect.signature(MODELS[name]).parameters
    if takes_spatial_dims:
        assert name in NAMES_3D, f"{name} takes spatial_dims but has no example_3d()"
    if name in NAMES_3D and takes_spatial_dims:
        assert MODELS[name].example_3d()[0].spatial_dims == 3


@pytest.mark.parametrize("name", NAMES_2D_ONLY)
def test_2d_only_models_reject_volumes_in_one_line(name):
    model, x = MODELS[name].example()
    volume = x.unsqueeze(2).repeat(1, 1, 3, *([1] * (x.ndim - 2)))
    with pytest.raises(UserError) as error:
        model(volume)
    message = str(error.value)
    assert message == (
        f"{name} works on 2D images (B, C, H, W) only; got a volume of shape {tuple(volume.shape)}"
    )


CONFIGS = {
    "DnCNN": {"num_layers": 4, "chans": 8},
    "BiasFreeDnCNN": {"num_layers": 4, "chans": 8},
    "BiasFreeUnet": {"in_chans": 1, "out_chans": 1, "chans": 4, "num_pool_layers": 2},
    "ResNetDenoiser": {"in_chans": 2, "num_layers": 3, "chans": 8},
    "RCAN": {"chans": 8, "num_groups": 1, "num_blocks": 1, "reduction": 4, "scale": 2},
    "SRGANGenerator": {"chans": 8, "num_blocks": 1, "variant": "edsrgan"},
    "SRGANDiscriminator": {"input_size": [64, 80]},
    "SelfEnsemble": {
        "model": {"class_path": "DnCNN", "init_args": {"num_layers": 3}},
        "mode": "x2",
    },
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_models_are_selectable_by_class_path(name):
    from jsonargparse import ArgumentParser

    from deepinv_lab.models import Model

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=Model)
    config = parser.parse_object({"model": {"class_path": name, "init_args": CONFIGS[name]}})
    model = parser.instantiate_classes(config).model
    assert type(model).__name__ == name
