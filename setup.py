"""deepinv-lab: a PyTorch Lightning framework for deep-learning inverse problems in imaging."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="deepinv-lab",
    version="0.1.0",
    description="PyTorch Lightning framework for deep-learning inverse problems in imaging",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["deepinv_lab", "deepinv_lab.*"]),
    # Open ranges so that GPU users keep their own torch; constraints.txt pins this machine's.
    install_requires=[
        "torch>=2.2",
        "pytorch-lightning>=2.2",
        "torchmetrics>=1.3",
        "jsonargparse[signatures]>=4.27",
        "tensorboard>=2.14",
        "numpy>=1.24",
        "nibabel>=5.0",
        # Multi-page TIFF volume stacks (deepinv_lab/data/volumes.py).
        "tifffile>=2022.5",
        # Ships the MNI152 T1 template used as built-in data (deepinv_lab/data/builtin.py).
        "nilearn>=0.10",
        # NUFFT (systems/nufft/): FINUFFT on the CPU; torchkbnufft for devices FINUFFT lacks.
        "finufft>=2.5",  # Plan.execute_adjoint
        "torchkbnufft>=1.4",
        # Poisson-disc masks (systems/sampling/poisson.py); the reference of the ESPIRiT tests.
        "sigpy>=0.1.25",
        # Ship the built-in denoising / SR images, read with Pillow (deepinv_lab/data/images.py).
        "scikit-image>=0.21",
        "pillow>=9",
        # fastMRI HDF5 files (data/fastmri/) and fastMRI-format predictions.
        "h5py>=3.8",
        # Scaling-law plots (deepinv-lab scaling).
        "matplotlib>=3.7",
        # Structured channel pruning (deepinv_lab/pruning): its DependencyGraph.
        "torch-pruning>=1.5",
        # ISMRMRD raw data (deepinv_lab/io/ismrmrd.py: deepinv-lab convert and reconstruct).
        "ismrmrd>=1.14",
        # DICOM output of deepinv-lab reconstruct (deepinv_lab/io/).
        "pydicom>=2.4",
        # Progress bars of convert and reconstruct (Lightning's own dependency too).
        "tqdm>=4.60",
    ],
    extras_require={
        # cuFINUFFT, the NUFFT backend on CUDA (systems/nufft/); it needs a CUDA 12 runtime.
        "cuda": ["cufinufft>=2.4"],
        # ONNX export and its check (deepinv-lab export --format onnx, deepinv_lab/export/).
        "onnx": ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],
        # fastmri (reference code for parity tests) is installed apart with --no-deps: README.
        "test": [
            "pytest>=7",
            "pandas",
            "runstats",
            "requests",
            "ruff",
            # reference GRAPPA for tests/test_grappa.py and benchmarks/bench_grappa.py
            "pygrappa",
            # reference wavelet transform for tests/test_wavelet.py
            "PyWavelets",
            # the ONNX export tests (tests/test_export.py)
            "onnx",
            "onnxscript",
            "onnxruntime",
        ],
    },
    entry_points={"console_scripts": ["deepinv-lab=deepinv_lab.cli:main"]},
)
