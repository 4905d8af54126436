"""Mistakes in user input raise :class:`~deepinv_lab.errors.UserError` naming the key, file or
shapes; internal invariant checks keep their plain ``ValueError``/``RuntimeError`` (the command
line reports the first in one line and shows a traceback for the others).

The tables call constructors with one bad argument each (what a config's ``init_args`` would
give) and read bad user files; a discovery test checks the rule for every block constructor of
the packages below, so that a new block cannot slip back to a plain ``ValueError``.
"""

import ast
import importlib
import inspect
import pkgutil
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from deepinv_lab.errors import UserError

# --- bad constructor arguments and calls: one case per row ---------------------------------------


def _systems_cases():
    from deepinv_lab.systems import (
        ComplexGaussianNoise,
        CompressedSensing,
        Downsampling,
        GaussianNoise,
        Inpainting,
        MultiCoilMRI,
        PoissonNoise,
        RandomSigmaGaussianNoise,
    )
    from deepinv_lab.systems.base import Composition, Stack, Sum
    from deepinv_lab.systems.sampling import RandomMaskFunc, create_mask_for_mask_type
    from deepinv_lab.systems.trajectories import check_trajectory, radial_trajectory

    maps = torch.randn(2, 4, 8, 7, dtype=torch.complex64)
    return [
        ("GaussianNoise sigma", lambda: GaussianNoise(sigma=-0.1), "sigma must be >= 0"),
        (
            "ComplexGaussianNoise sigma and snr_db",
            lambda: ComplexGaussianNoise(sigma=0.1, snr_db=20.0),
            "exactly one of sigma and snr_db",
        ),
        (
            "RandomSigmaGaussianNoise range",
            lambda: RandomSigmaGaussianNoise(sigma_min=0.5, sigma_max=0.1),
            "sigma_min <= sigma_max",
        ),
        ("PoissonNoise gain", lambda: PoissonNoise(gain=0.0), "gain must be > 0"),
        ("Downsampling factor", lambda: Downsampling(factor=0), "factor must be an integer"),
        ("Downsampling filter", lambda: Downsampling(2, filter="lanczos"), "filter must be one"),
        ("CompressedSensing m", lambda: CompressedSensing(0, (1, 4, 4)), "m must be >= 1"),
        ("Inpainting mask values", lambda: Inpainting(torch.full((1, 1, 2, 2), 0.5)), "0/1"),
        ("Composition empty", lambda: Composition([]), "systems must hold"),
        ("Sum empty", lambda: Sum([]), "^Sum: systems must hold at least one System"),
        ("Stack empty", lambda: Stack([]), "^Stack: systems must hold at least one System"),
        (
            "MultiCoilMRI mask shape",
            lambda: MultiCoilMRI(maps, torch.ones(2, 1, 1, 6)),
            r"mask of shape \(2, 1, 1, 6\).*\(2, 4, 8, 7\)",
        ),
        (
            "mask function lengths",
            lambda: RandomMaskFunc(center_fractions=[0.08, 0.04], accelerations=[4]),
            "center_fractions.*accelerations.*same length",
        ),
        (
            "mask function for too narrow k-space",
            lambda: RandomMaskFunc([0.95], [4], seed=0)((1, 8, 10, 2)),
            "center_fractions entry 0.95 keeps all 10",
        ),
        (
            "mask_type",
            lambda: create_mask_for_mask_type("spiral", [0.08], [4]),
            "mask_type must be one of",
        ),
        ("radial num_spokes", lambda: radial_trajectory(0, 16), "num_spokes >= 1"),
        (
            "trajectory range",
            lambda: check_trajectory(torch.full((2, 4), 4.0)),
            r"\[-pi, pi\)",
        ),
    ]


def _models_cases(tmp_path):
    from deepinv_lab.models import DnCNN, Unet
    from deepinv_lab.models.rcan import RCAN
    from deepinv_lab.models.srgan import SRGANGenerator
    from deepinv_lab.models.vgg import VGG19Features
    from deepinv_lab.models.wrappers import SelfEnsemble

    missing = tmp_path / "missing_vgg19.pth"
    return [
        ("DnCNN num_layers", lambda: DnCNN(num_layers=1), "num_layers must be at least 2"),
        ("RCAN scale", lambda: RCAN(chans=4, num_groups=1, num_blocks=1, scale=5), "scale must"),
        ("SRGANGenerator variant", lambda: SRGANGenerator(variant="esrgan"), "variant must"),
        ("VGG19Features layer", lambda: VGG19Features(layer="conv9_9"), "layer must be one of"),
        (
            "VGG19Features weights file",
            lambda: VGG19Features("conv2_2", weights=str(missing)),
            "missing_vgg19.pth",
        ),
        ("SelfEnsemble mode", lambda: SelfEnsemble(nn.Identity(), mode="x4"), "mode must be"),
        (
            "in_chans against the data's channels",
            lambda: Unet(1, 1, chans=4, num_pool_layers=2)(torch.zeros(2, 3, 8, 8)),
            r"expects input of shape \(B, 1, H, W\), got \(2, 3, 8, 8\); set in_chans to 3",
        ),
    ]


def _optim_cases():
    from deepinv_lab.optim.cg import conjugate_gradient
    from deepinv_lab.optim.data_consistency import ProximalDataConsistency
    from deepinv_lab.optim.deq import DeepEquilibrium
    from deepinv_lab.optim.unroll import Unrolled

    rhs = torch.ones(2, 3)
    return [
        ("CG tol", lambda: conjugate_gradient(lambda x: x, rhs, tol=-1.0), "tol must be"),
        (
            "ProximalDataConsistency max_iter at construction",
            lambda: ProximalDataConsistency(max_iter=-1),
            "max_iter must be an integer >= 0",
        ),
        (
            "ProximalDataConsistency damping",
            lambda: ProximalDataConsistency(damping=0.0),
            "damping must be a number > 0",
        ),
        (
            "DeepEquilibrium anderson_memory",
            lambda: DeepEquilibrium(anderson_memory=0),
            "DeepEquilibrium: anderson_memory must be",
        ),
        (
            "DeepEquilibrium backward_tol",
            lambda: DeepEquilibrium(backward_tol=-1.0),
            "DeepEquilibrium: backward_tol must be",
        ),
        ("DeepEquilibrium on_failure", lambda: DeepEquilibrium(on_failure="panic"), "on_failure"),
        ("Unrolled num_iterations", lambda: Unrolled(nn.Identity(), 0), "num_iterations"),
    ]


def _recons_cases():
    from deepinv_lab.recons import (
        DEQ,
        CGSense,
        Interpolation,
        MoDL,
        SuperResolution,
        ZeroFilled,
    )

    return [
        ("MoDL cg_tol", lambda: MoDL(nn.Identity(), cg_tol=-1.0), "MoDL: cg_tol must be"),
        (
            "MoDL cg_backward",
            lambda: MoDL(nn.Identity(), cg_backward="adjoint"),
            "MoDL: cg_backward must be",
        ),
        ("CGSense max_iter", lambda: CGSense(max_iter=-1), "CGSense: max_iter must be"),
        ("CGSense damping", lambda: CGSense(damping=-1.0), "damping must be a number > 0"),
        ("DEQ iteration", lambda: DEQ(nn.Identity(), iteration="admm"), "iteration must be"),
        (
            "DEQ cg_max_iter",
            lambda: DEQ(nn.Identity(), iteration="modl", cg_max_iter=-1),
            "DEQ: cg_max_iter must be an integer >= 0",
        ),
        ("ZeroFilled combine", lambda: ZeroFilled(combine="sum"), "combine must be"),
        ("Interpolation scale", lambda: Interpolation(scale=0), "scale must be an integer"),
        (
            "SuperResolution self_ensemble",
            lambda: SuperResolution(nn.Identity(), self_ensemble="x3"),
            "self_ensemble must be",
        ),
    ]


def _training_cases():
    from deepinv_lab.training.losses import SSIMLoss, make_loss
    from deepinv_lab.training.metrics import SSIMMetric, VolumeMetrics
    from deepinv_lab.training.perceptual import VGGPerceptualLoss
    from deepinv_lab.training.schedulers import make_scheduler

    return [
        ("loss name", lambda: make_loss("huber"), "loss must be one of.*'huber'"),
        (
            "SSIMLoss win_size",
            lambda: SSIMLoss(win_size=4),
            "SSIMLoss: win_size must be an odd integer",
        ),
        ("SSIMMetric win_size", lambda: SSIMMetric(win_size=1), "SSIMMetric: win_size"),
        ("VolumeMetrics win_size", lambda: VolumeMetrics(win_size=6), "VolumeMetrics: win_size"),
        ("lr_scheduler shorthand", lambda: make_scheduler([2.0, 10]), "lr_scheduler"),
        ("lr_scheduler kind", lambda: make_scheduler("cosine"), "lr_scheduler must be"),
        ("VGGPerceptualLoss weights", lambda: VGGPerceptualLoss(), "give its path as weights"),
    ]


def _save_png(path, pixels):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _write_user_files(tmp_path):
    """The users' files the data cases read: two images, a corrupt image, a fastMRI file with
    real k-space (an unexpected layout)."""
    for name in ("a.png", "b.png"):
        _save_png(tmp_path / "images" / name, np.full((24, 24), 128, dtype=np.uint8))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "garbage.png").write_bytes(b"not a png" * 20)
    (tmp_path / "real_kspace").mkdir()
    with h5py.File(tmp_path / "real_kspace" / "file1000.h5", "w") as f:
        f["kspace"] = np.zeros((2, 4, 8, 6), dtype=np.float32)
        f["ismrmrd_header"] = b"<ismrmrdHeader/>"


def _data_cases(tmp_path):
    from deepinv_lab.data.fastmri import FastMRISliceDataset
    from deepinv_lab.data.fastmri_datamodule import FastMRIDataModule
    from deepinv_lab.data.folder_datamodules import ImageFolderDenoisingDataModule
    from deepinv_lab.data.folders import ImageFolder
    from deepinv_lab.data.presets import BuiltinDenoisingDataModule, SimulatedBrainMRIDataModule
    from deepinv_lab.data.sources import BuiltinPhotos

    images, corrupt, real_kspace = (tmp_path / n for n in ("images", "corrupt", "real_kspace"))

    def fastmri(root, **kwargs):
        return FastMRISliceDataset(root, use_dataset_cache=False, **kwargs)

    return [
        ("fastMRI folder", lambda: fastmri(tmp_path / "nowhere"), "nowhere is missing"),
        ("fastMRI layout", lambda: fastmri(real_kspace), r"file1000\.h5: 'kspace' must be complex"),
        ("fastMRI challenge", lambda: fastmri(real_kspace, challenge="both"), "challenge must"),
        ("fastMRI rate", lambda: fastmri(real_kspace, sample_rate=1.5), "sample_rate must be"),
        (
            "FastMRIDataModule root",
            lambda: FastMRIDataModule(root=str(tmp_path / "x")),
            "data.root",
        ),
        ("ImageFolder root", lambda: ImageFolder(tmp_path / "nothing"), "nothing.*not a folder"),
        ("ImageFolder corrupt image", lambda: ImageFolder(corrupt), r"garbage\.png"),
        (
            "ImageFolder too few images",
            lambda: ImageFolder(images, patch_size=8, num_images=5),
            "num_images is 5, more than the 2 images",
        ),
        (
            "folder DataModule val_root",
            lambda: ImageFolderDenoisingDataModule(
                train_root=str(images), val_root=str(tmp_path / "no_val"), patch_size=8
            ),
            "data.val_root: .*no_val",
        ),
        (
            "folder DataModule train_size",
            lambda: ImageFolderDenoisingDataModule(
                train_root=str(images), val_root=str(images), patch_size=8, train_size=3
            ),
            "data.train_size is 3, more than the 2 images",
        ),
        ("builtin patch_size", lambda: BuiltinPhotos(patch_size=0), "patch_size must be"),
        (
            "builtin DataModule batch_size",
            lambda: BuiltinDenoisingDataModule(batch_size=0),
            "data.batch_size",
        ),
        (
            "simulated MRI noise_sigma",
            lambda: SimulatedBrainMRIDataModule(noise_sigma=-1.0),
            "data.noise_sigma must be >= 0",
        ),
    ]


def _all_cases(tmp_path):
    return (
        _systems_cases()
        + _models_cases(tmp_path)
        + _optim_cases()
        + _recons_cases()
        + _training_cases()
        + _data_cases(tmp_path)
    )


CASE_IDS = [case[0] for case in _all_cases(Path("unused"))]
assert len(set(CASE_IDS)) == len(CASE_IDS), "case names must be unique"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_user_input_raises_user_error_naming_it(case_id, tmp_path):
    _write_user_files(tmp_path)
    _, build, match = {case[0]: case for case in _all_cases(tmp_path)}[case_id]
    with pytest.raises(UserError, match=match):
        build()


def test_domain_errors_are_user_errors_and_divergence_is_not(tmp_path):
    from deepinv_lab.data.fastmri import FastMRIDataError
    from deepinv_lab.data.folders import ImageFolder, TooFewImagesError
    from deepinv_lab.optim.convergence import ConvergenceError

    assert issubclass(FastMRIDataError, UserError) and issubclass(TooFewImagesError, UserError)
    assert not issubclass(ConvergenceError, UserError)  # a diverging solve is not a user mistake
    _write_user_files(tmp_path)
    with pytest.raises(TooFewImagesError) as caught:
        ImageFolder(tmp_path / "images", patch_size=8, num_images=5)
    assert (caught.value.requested, caught.value.available) == (5, 2)


# --- internal checks stay plain: a traceback is what a developer needs ---------------------------


def _internal_cases():
    from deepinv_lab.data.collate import collate_multicoil
    from deepinv_lab.functional import channels_to_complex, fft2c
    from deepinv_lab.optim.cg import conjugate_gradient
    from deepinv_lab.optim.convergence import ConvergenceError, check_convergence
    from deepinv_lab.optim.fixed_point import solve_fixed_point
    from deepinv_lab.systems.mri import KSpaceMask
    from deepinv_lab.training.metrics import ssim

    rhs = torch.ones(2, 3)

    def item(width):
        return {"y": torch.zeros(2, 8, width, dtype=torch.complex64)}

    nan = torch.tensor([float("nan")])
    return [
        (
            "KSpaceMask against mismatched k-space",
            lambda: KSpaceMask(torch.ones(1, 1, 1, 7))(torch.zeros(1, 2, 8, 6, dtype=torch.cfloat)),
            ValueError,
        ),
        ("fft2c of a real tensor", lambda: fft2c(torch.zeros(2, 4, 4)), ValueError),
        (
            "odd channels to complex",
            lambda: channels_to_complex(torch.zeros(1, 3, 2, 2)),
            ValueError,
        ),
        (
            "CG start of another shape",
            lambda: conjugate_gradient(lambda x: x, rhs, x0=torch.zeros(2, 4)),
            ValueError,
        ),
        (
            "fixed-point map changing the shape",
            lambda: solve_fixed_point(lambda x: x[:, :1], torch.zeros(2, 3)),
            ValueError,
        ),
        ("collate of mixed shapes", lambda: collate_multicoil([item(6), item(7)]), ValueError),
        (
            "SSIM of mismatched images",
            lambda: ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9), 1.0),
            ValueError,
        ),
        (
            "non-finite residual",
            lambda: check_convergence("cg", torch.tensor([3]), nan, torch.tensor([False]), 1e-3),
            ConvergenceError,
        ),
    ]


INTERNAL_IDS = [case[0] for case in _internal_cases()]


@pytest.mark.parametrize("case_id", INTERNAL_IDS)
def test_internal_checks_are_not_user_errors(case_id):
    _, call, kind = {case[0]: case for case in _internal_cases()}[case_id]
    with pytest.raises(kind) as caught:
        call()
    assert not isinstance(caught.value, UserError)


# --- discovery: every block constructor raises UserError, never a plain ValueError ---------------

#: Packages (and modules) whose classes are blocks built from configs: their ``__init__``
#: arguments are user input.
BLOCK_PACKAGES = (
    "deepinv_lab.systems",
    "deepinv_lab.models",
    "deepinv_lab.optim",
    "deepinv_lab.recons",
    "deepinv_lab.data",
)
BLOCK_MODULES = (
    "deepinv_lab.training.losses",
    "deepinv_lab.training.metrics",
    "deepinv_lab.training.schedulers",
    "deepinv_lab.training.perceptual",
)
PLAIN_ERRORS = {"ValueError", "TypeError", "KeyError", "FileNotFoundError", "RuntimeError"}
#: Constructors that are not built from configs, with the reason their checks stay internal.
INTERNAL_CONSTRUCTORS = {
    # built by the DataModules from already checked arguments; a mismatch is a bug
    "deepinv_lab.data.samplers.EpochSampler",
}


def _block_modules() -> list[str]:
    names = list(BLOCK_MODULES)
    for package_name in BLOCK_PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package_name + ".")]
    return sorted(set(names))


def _constructors() -> list[tuple[str, type]]:
    found = {}
    for name in _block_modules():
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == name and "__init__" in vars(cls):
                init = vars(cls)["__init__"]
                if inspect.isfunction(init) and init.__code__.co_filename == module.__file__:
                    found[f"{name}.{cls.__qualname__}"] = cls
    return sorted(found.items())


CONSTRUCTORS = _constructors()


def test_discovery_finds_the_blocks():
    names = {name for name, _ in CONSTRUCTORS}
    for expected in (
        "deepinv_lab.systems.noise.GaussianNoise",
        "deepinv_lab.models.dncnn.DnCNN",
        "deepinv_lab.optim.deq.DeepEquilibrium",
        "deepinv_lab.recons.unrolled.MoDL",
        "deepinv_lab.data.fastmri.dataset.FastMRISliceDataset",
        "deepinv_lab.training.metrics.SSIMMetric",
    ):
        assert expected in names
    assert INTERNAL_CONSTRUCTORS <= names  # the allow-list names existing classes


@pytest.mark.parametrize("name, cls", CONSTRUCTORS, ids=[name for name, _ in CONSTRUCTORS])
def test_block_constructors_raise_user_errors(name, cls):
    if name in INTERNAL_CONSTRUCTORS:
        pytest.skip("built internally from checked arguments")
    lines, first = inspect.getsourcelines(vars(cls)["__init__"])
    tree = ast.parse(textwrap.dedent("".join(lines)))
    plain = [
        f"line {first + node.lineno - 1}: raise {node.exc.func.id}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and isinstance(node.exc.func, ast.Name)
        and node.exc.func.id in PLAIN_ERRORS
    ]
    assert not plain, f"{name}.__init__ checks its arguments with plain errors: {plain}"
