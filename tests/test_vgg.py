"""VGG19 features in torchvision's layout, and SRGAN's perceptual loss."""

import pytest
import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.vgg import VGG19_LAYERS, VGG19Features
from deepinv_lab.training.perceptual import VGGPerceptualLoss

# torchvision's cfgs["E"], written out independently of deepinv_lab.models.vgg
TORCHVISION_E = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # fmt: skip


def torchvision_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` rebuilt from its config (``make_layers``)."""
    layers, channels = [], 3
    for v in TORCHVISION_E:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers)


def torchvision_state_dict(seed: int = 0) -> tuple[dict, nn.Sequential]:
    torch.manual_seed(seed)
    features = torchvision_features()
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.weight"] = torch.zeros(10, 4)  # other keys are ignored
    return state, features


def test_layer_indices_are_torchvision_s():
    assert VGG19_LAYERS["conv1_1"] == 0 and VGG19_LAYERS["conv2_2"] == 7
    assert VGG19_LAYERS["conv5_4"] == 34 and len(VGG19_LAYERS) == 16


def test_loads_a_torchvision_state_dict_and_computes_its_features():
    state, reference = torchvision_state_dict()
    model = VGG19Features("conv5_4")
    model.load_torchvision(state)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = reference[:36](x)  # up to the ReLU of conv5_4, before the last max-pool
        torch.testing.assert_close(model(x), expected)
    assert not any(p.requires_grad for p in model.parameters())


def test_loads_from_a_file_and_refuses_mismatches(tmp_path):
    state, reference = torchvision_state_dict(1)
    shallow = {k: v for k, v in state.items() if k.startswith(("features.0.", "features.2."))}
    shallow |= {k: v for k, v in state.items() if k.startswith(("features.5.", "features.7."))}
    path = tmp_path / "vgg19.pth"
    torch.save(shallow, path)
    model = VGG19Features("conv2_2", weights=str(path))
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference[:9](x))

    wrong = dict(shallow)
    wrong["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong.pth.*features\.5\.weight \(128, 32, 3, 3\)"):
        VGG19Features("conv2_2", weights=str(tmp_path / "wrong.pth"))
    with pytest.raises(ValueError, match=r"missing features\.10\.weight"):
        VGG19Features("conv3_1", weights=str(path))  # the file stops at conv2_2
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a state dict"):
        VGG19Features("conv2_2", weights=str(tmp_path / "list.pth"))
    with pytest.raises(UserError, match="nowhere.pth"):
        VGG19Features("conv2_2", weights=str(tmp_path / "nowhere.pth"))
    with pytest.raises(ValueError, match="layer must be one of"):
        VGG19Features("conv6_1")


def test_perceptual_loss_without_weights_says_how_to_get_them():
    with pytest.raises(ValueError, match=r"vgg19-dcbb9e9d\.pth.*weights"):
        VGGPerceptualLoss()


def test_perceptual_loss_semantics(tmp_path):
    state, reference = torchvision_state_dict(2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loss = VGGPerceptualLoss(weights=str(path), layer="conv2_2")
    assert list(loss.state_dict()) == [] and list(loss.parameters()) == []
    target = torch.rand(2, 1, 16, 16)
    pred = (target + 0.1 * torch.randn_like(target)).requires_grad_()
    assert loss(target, target).item() == 0.0
    value = loss(pred, target)
    # by hand: gray -> RGB, ImageNet normalisation, features scaled by 1/12.75
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        phi = lambda x: reference[:9]((x.repeat(1, 3, 1, 1) - mean) / std) / 12.75  # noqa: E731
        expected = (phi(pred) - phi(target)).square().mean()
    torch.testing.assert_close(value.detach(), expected)
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same shape"):
        loss(pred, target[:1])
