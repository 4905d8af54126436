"""Non-Cartesian MRI: the NUFFT System blocks and their backends.

* :mod:`.operator`: :class:`NUFFT` and :class:`MultiCoilNUFFT`, the System blocks;
* :mod:`.backends`: which library computes them (FINUFFT/cuFINUFFT or torchkbnufft);
* :mod:`.finufft_backend`, :mod:`.torchkbnufft_backend`: the two backends;
* :mod:`.toeplitz`: the Toeplitz embedding of the normal operator.
"""

from deepinv_lab.systems.nufft.backends import BACKENDS
from deepinv_lab.systems.nufft.operator import NUFFT, MultiCoilNUFFT

__all__ = ["BACKENDS", "NUFFT", "MultiCoilNUFFT"]
