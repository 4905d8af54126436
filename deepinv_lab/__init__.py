"""deepinv-lab: deep-learning inverse problems in imaging with PyTorch Lightning.

A reconstruction (:class:`~deepinv_lab.recons.base.Recon`) is composed of System blocks (forward
models, :mod:`deepinv_lab.systems`), Model blocks (networks, :mod:`deepinv_lab.models`) and
Optimization blocks (:mod:`deepinv_lab.optim`); :mod:`deepinv_lab.training` wraps it in a
LightningModule and ``deepinv-lab`` (:mod:`deepinv_lab.cli`) drives it from JSON configs.

Importing this package is cheap: subpackages load when used.
"""

__version__ = "0.1.0"
