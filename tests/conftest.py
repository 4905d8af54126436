import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import tiny

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seeded_generators():
    """Each test starts from the same global random state, whatever ran before it: a test's
    random inputs do not depend on the order or selection of tests."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


@pytest.fixture(autouse=True)
def _fresh_convergence_warnings():
    """Each test sees the first ConvergenceWarning of each solver (they are rate-limited)."""
    from deepinv_lab.optim.convergence import reset_convergence_warnings

    reset_convergence_warnings()


def write_tiny_config(directory: Path) -> Path:
    """``directory/tiny.json``: a VarNet config small enough to fit in seconds, writing logs
    under ``directory/logs``."""
    config = json.loads(Path(__file__).parents[1].joinpath("configs/varnet.json").read_text())
    config["trainer"].update(tiny.TRAINER)
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(directory / "logs")
    config["model"]["init_args"]["recon"]["init_args"] = dict(tiny.VARNET)
    # one baseline, logged as val/baseline_* (named baselines: tests/test_baselines.py)
    config["model"]["init_args"]["baseline"] = {"class_path": "deepinv_lab.recons.ZeroFilled"}
    config["data"]["init_args"].update(downsample=4, num_coils=2)
    path = directory / "tiny.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """A VarNet config small enough to fit in seconds, writing logs under ``tmp_path``."""
    return write_tiny_config(tmp_path)


@pytest.fixture(scope="session")
def make_tiny_config():
    """:func:`write_tiny_config`, for fixtures of a wider scope than ``tiny_config``'s."""
    return write_tiny_config


@pytest.fixture(scope="module")
def mri_batch():
    """A batch of 2 built-in brain slices, 2 coils, 32 x 32, simulated k-space and System."""
    from deepinv_lab.data.presets import SimulatedBrainMRIDataModule

    with torch.random.fork_rng():
        data = SimulatedBrainMRIDataModule(
            batch_size=2, image_size=(64, 64), downsample=2, num_coils=2, train_size=2
        )
        return next(iter(data.train_dataloader()))


@pytest.fixture
def isolated_rng():
    """For tests that seed torch's global generator: later tests see it as if they had not run
    (``pytestmark = pytest.mark.usefixtures("isolated_rng")``)."""
    with torch.random.fork_rng():
        yield


@pytest.fixture
def one_thread():
    """One torch and one BLAS thread for the test: tiny problems (small solves, ESPIRiT's many
    small parallel regions) run many times slower on a loaded 2-core machine with two threads
    waiting for descheduled ones. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
    else:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)
