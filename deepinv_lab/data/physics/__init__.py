"""Physics of simulated data: the System that measures the ground truth, how its per-sample
parameters are drawn (masks, trajectories, coil maps), and the noise; config blocks of
``data.init_args.physics`` (:class:`~deepinv_lab.data.simulation_datamodule.SimulationDataModule`).
"""

from deepinv_lab.data.physics.base import NOISE_SEED, Params, Physics
from deepinv_lab.data.physics.draws import (
    BirdcageCoils,
    CartesianMask,
    CoilCompression,
    EspiritEstimate,
    LowResolutionMaps,
    RadialTrajectory,
)
from deepinv_lab.data.physics.image import (
    CompressedSensingPhysics,
    DenoisingPhysics,
    InpaintingPhysics,
    LinearPhysics,
)
from deepinv_lab.data.physics.mri import (
    CartesianMRIPhysics,
    NonCartesianMRIPhysics,
    SingleCoilMRIPhysics,
)
from deepinv_lab.data.physics.mri3d import BirdcageCoils3D, Cartesian3DMRIPhysics
from deepinv_lab.data.physics.noise import Gaussian, NoiseModel, Poisson

__all__ = [
    "NOISE_SEED",
    "BirdcageCoils",
    "BirdcageCoils3D",
    "Cartesian3DMRIPhysics",
    "CartesianMRIPhysics",
    "CartesianMask",
    "CoilCompression",
    "CompressedSensingPhysics",
    "DenoisingPhysics",
    "EspiritEstimate",
    "Gaussian",
    "InpaintingPhysics",
    "LinearPhysics",
    "LowResolutionMaps",
    "NoiseModel",
    "NonCartesianMRIPhysics",
    "Params",
    "Physics",
    "Poisson",
    "RadialTrajectory",
    "SingleCoilMRIPhysics",
]
