"""The fastMRI file layout (Zbontar et al., arXiv:1811.08839): its vocabulary and its error.

A fastMRI volume is one HDF5 file (``file1000.h5``) holding

* ``kspace``: complex64 ``(slices, coils, H, W)`` (multicoil) or ``(slices, H, W)``
  (singlecoil); ``H`` is the (oversampled) readout direction, ``W`` the phase-encode direction,
  whose columns outside ``[padding_left, padding_right)`` were never acquired (zero);
* ``reconstruction_rss`` (multicoil) / ``reconstruction_esc`` (singlecoil): the float32 target
  ``(slices, rh, rw)``; absent from test-set files;
* ``ismrmrd_header``: the ISMRMRD XML header, from which the encoded and reconstructed matrix
  sizes and the acquired phase encodes (hence the padding) are read;
* ``mask`` (test-set files only): the ``(W,)`` mask the k-space was undersampled with;
* attributes ``max`` (the target volume's maximum, the SSIM data range), ``norm``,
  ``acquisition`` (``CORPD_FBK``, ``AXT2``, ...), ``patient_id``.
"""

from __future__ import annotations

from deepinv_lab.errors import UserError

CHALLENGES = ("multicoil", "singlecoil")
SPLITS = ("train", "val", "test")
#: The target dataset of each challenge.
TARGET_KEYS = {"multicoil": "reconstruction_rss", "singlecoil": "reconstruction_esc"}


class FastMRIDataError(UserError):
    """A fastMRI file (or folder) that cannot be used; the message names it."""
