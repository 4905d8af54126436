"""Write small synthetic HDF5 files in the exact layout of the fastMRI data (for tests).

The layout is that of the public fastMRI knee/brain files (Zbontar et al., arXiv:1811.08839):

* ``kspace``: complex64 ``(slices, coils, H, W)`` (multicoil) or ``(slices, H, W)`` (singlecoil),
  ``H`` the (oversampled) readout direction, ``W`` the phase-encode direction; the columns outside
  the acquired phase encodes (``[padding_left, padding_right)``) are zero.
* ``reconstruction_rss`` (multicoil) / ``reconstruction_esc`` (singlecoil): float32
  ``(slices, rh, rw)``, the root-sum-of-squares (or magnitude) image center-cropped to the
  header's ``reconSpace`` matrix size; absent from test-set files.
* ``ismrmrd_header``: the ISMRMRD XML (namespace ``http://www.ismrm.org/ISMRMRD``) as bytes.
* ``mask``: bool ``(W,)``, test-set files only (their k-space is already undersampled).
* attributes: ``acquisition``, ``patient_id``, and ``max``/``norm`` of the reconstruction when
  there is one; test-set files have ``acceleration`` and ``num_low_frequency`` instead.

Other test modules import :func:`write_fastmri_volume` and :func:`write_fastmri_dir`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"


def ismrmrd_header(
    encoded: tuple[int, int, int],
    recon: tuple[int, int, int],
    center: int,
    maximum: int,
) -> bytes:
    """A minimal ISMRMRD XML header with the elements fastMRI reads.

    Args:
        encoded: encodedSpace matrix size ``(x, y, z)`` = ``(H, W, 1)``.
        recon: reconSpace matrix size ``(x, y, z)`` = ``(rh, rw, 1)``.
        center, maximum: ``encodingLimits/kspace_encoding_step_1`` center and maximum.
    """
    ex, ey, ez = encoded
    rx, ry, rz = recon
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="{ISMRMRD_NAMESPACE}" xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <studyInformation><studyTime>12:00:00</studyTime></studyInformation>
  <acquisitionSystemInformation>
    <systemVendor>SIEMENS</systemVendor>
    <systemFieldStrength_T>2.89362</systemFieldStrength_T>
    <receiverChannels>4</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>123251815</H1resonanceFrequency_Hz>
  </experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{ex}</x><y>{ey}</y><z>{ez}</z></matrixSize>
      <fieldOfView_mm><x>280</x><y>140</y><z>4.5</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rx}</x><y>{ry}</y><z>{rz}</z></matrixSize>
      <fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm>
    </reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1>
        <minimum>0</minimum><maximum>{maximum}</maximum><center>{center}</center>
      </kspace_encoding_step_1>
      <kspace_encoding_step_2>
        <minimum>0</minimum><maximum>0</maximum><center>0</center>
      </kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>0</maximum><center>0</center></slice>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>
""".encode()


def _fft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    x = np.fft.ifftshift(x, axes=axes)
    return np.fft.fftshift(np.fft.fft2(x, axes=axes, norm="ortho"), axes=axes)


def _ifft2c(k: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    k = np.fft.ifftshift(k, axes=axes)
    return np.fft.fftshift(np.fft.ifft2(k, axes=axes, norm="ortho"), axes=axes)


def _center_crop(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = x.shape[-2:]
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


def write_fastmri_volume(
    path: str | Path,
    *,
    num_slices: int = 3,
    num_coils: int = 4,
    height: int = 32,
    width: int = 24,
    challenge: str = "multicoil",
    acquisition: str = "CORPD_FBK",
    seed: int = 0,
    with_rss: bool = True,
    recon_size: tuple[int, int] = (16, 16),
    padding: int = 2,
    with_mask: bool = False,
    acceleration: int = 4,
    num_low_frequency: int = 4,
    patient_id: str | None = None,
) -> Path:
    """Write one synthetic fastMRI volume to ``path`` (parent folders are created).

    Args:
        num_slices, num_coils, height, width: k-space shape ``(slices, coils, H=height, W=width)``
            (``num_coils`` is ignored for ``challenge="singlecoil"``: ``(slices, H, W)``).
        challenge: ``"multicoil"`` (target ``reconstruction_rss``) or ``"singlecoil"``
            (``reconstruction_esc``).
        acquisition: the ``acquisition`` attribute.
        seed: seeds the random smooth coil images.
        with_rss: write the target reconstruction and the ``max``/``norm`` attributes (False: a
            test-set file).
        recon_size: ``(rh, rw)``, the header's reconSpace matrix size and the target's shape.
        padding: zero columns on each side of k-space outside the acquired phase encodes; the
            header's encoding limits say so (fastMRI's ``padding_left = padding``,
            ``padding_right = W - padding``).
        with_mask: write a test-set ``mask`` ``(W,)`` (every ``acceleration``-th column plus
            ``num_low_frequency`` center columns), undersample k-space with it and write the
            ``acceleration``/``num_low_frequency`` attributes.
        patient_id: the ``patient_id`` attribute (default derived from the file name).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if challenge not in ("multicoil", "singlecoil"):
        raise ValueError(f"challenge must be 'multicoil' or 'singlecoil', got {challenge!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    coils = num_coils if challenge == "multicoil" else 1

    # Smooth random complex coil images: random low-frequency k-space, zero elsewhere.
    kspace = np.zeros((num_slices, coils, height, width), dtype=np.complex128)
    ch, cw = height // 2, width // 2
    low = (
        rng.standard_normal((num_slices, coils, 7, 7))
        + 1j * rng.standard_normal((num_slices, coils, 7, 7))
    ) * 10
    kspace[..., ch - 3 : ch + 4, cw - 3 : cw + 4] = low
    kspace += 0.05 * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    kspace[..., :padding] = 0
    kspace[..., width - padding :] = 0

    num_acquired = width - 2 * padding
    center = width // 2 - padding  # padding_left = W // 2 - center = padding
    header = ismrmrd_header(
        (height, width, 1), (*recon_size, 1), center=center, maximum=num_acquired - 1
    )

    images = _ifft2c(kspace)
    target = np.sqrt((np.abs(images) ** 2).sum(axis=1))
    target = _center_crop(target, recon_size).astype(np.float32)

    if with_mask:
        mask = np.zeros(width, dtype=bool)
        mask[padding::acceleration] = True
        start = (width - num_low_frequency + 1) // 2
        mask[start : start + num_low_frequency] = True
        mask[:padding] = False
        mask[width - padding :] = False
        kspace = kspace * mask

    if challenge == "singlecoil":
        kspace = kspace[:, 0]
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace.astype(np.complex64))
        f.create_dataset("ismrmrd_header", data=header, dtype=h5py.string_dtype("utf-8"))
        if with_rss:
            key = "reconstruction_rss" if challenge == "multicoil" else "reconstruction_esc"
            f.create_dataset(key, data=target)
            f.attrs["max"] = float(target.max())
            f.attrs["norm"] = float(np.linalg.norm(target))
        if with_mask:
            f.create_dataset("mask", data=mask)
            f.attrs["acceleration"] = acceleration
            f.attrs["num_low_frequency"] = num_low_frequency
        f.attrs["acquisition"] = acquisition
        f.attrs["patient_id"] = patient_id or f"patient_{path.stem}"
    return path


def write_fastmri_dir(
    root: str | Path,
    num_volumes: int,
    *,
    prefix: str = "file",
    first_id: int = 1000,
    acquisitions: tuple[str, ...] = ("CORPD_FBK",),
    seed: int = 0,
    **volume_args,
) -> list[Path]:
    """Write ``num_volumes`` volumes ``root/{prefix}{first_id + i}.h5`` (as fastMRI names them).

    Args:
        root: the folder (created if missing).
        num_volumes: how many files.
        prefix, first_id: file names ``file1000.h5``, ``file1001.h5``, ...
        acquisitions: cycled over the volumes (``acquisitions[i % len(acquisitions)]``).
        seed: volume ``i`` uses seed ``seed + i``.
        **volume_args: passed to :func:`write_fastmri_volume` (shapes, challenge, ...).

    Returns:
        the paths written, sorted.
    """
    root = Path(root)
    return [
        write_fastmri_volume(
            root / f"{prefix}{first_id + i}.h5",
            acquisition=acquisitions[i % len(acquisitions)],
            seed=seed + i,
            **volume_args,
        )
        for i in range(num_volumes)
    ]


def write_brain_volume(
    path: str | Path,
    slices: list[int],
    shape: tuple[int, int] = (96, 80),
    recon_size: tuple[int, int] = (64, 64),
    coils: int = 8,
) -> Path:
    """A fastMRI file of real anatomy: the built-in brain's axial ``slices`` (2 mm, 116 x 98,
    zero-padded or center-cropped to the k-space matrix ``shape``) with a smooth phase, times
    ``coils`` birdcage maps, at the scale of fastMRI's k-space (1e-4); the target is their
    root-sum-of-squares cropped to ``recon_size``."""
    import torch

    from deepinv_lab.data.builtin import load_template_slices
    from deepinv_lab.functional import center_crop, fft2c, rss
    from deepinv_lab.systems.coils import birdcage_maps

    magnitude = torch.nn.functional.avg_pool2d(
        torch.from_numpy(load_template_slices()[slices]).float()[:, None], 2
    )[:, 0]
    pad_h, pad_w = max(shape[0] - magnitude.shape[-2], 0), max(shape[1] - magnitude.shape[-1], 0)
    magnitude = torch.nn.functional.pad(
        magnitude, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    )
    magnitude = center_crop(magnitude, shape) * 1e-4
    phase = torch.linspace(-1, 1, shape[1])[None, None].expand_as(magnitude)
    coil_images = birdcage_maps(coils, shape)[None] * torch.polar(magnitude, phase)[:, None]
    target = center_crop(rss(coil_images, dim=1), recon_size).numpy()
    header = ismrmrd_header((*shape, 1), (*recon_size, 1), shape[1] // 2, shape[1] - 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["kspace"] = fft2c(coil_images).numpy().astype(np.complex64)
        f.create_dataset("ismrmrd_header", data=header, dtype=h5py.string_dtype("utf-8"))
        f["reconstruction_rss"] = target
        f.attrs["max"] = float(target.max())
        f.attrs["norm"] = float(np.linalg.norm(target))
        f.attrs["acquisition"] = "AXT1"
        f.attrs["patient_id"] = f"patient_{path.stem}"
    return path


def cropped_nmse(output, target) -> float:
    """NMSE of a reconstruction center-cropped to the target's size, as the training module
    scores it (``sum (x - t)^2 / sum t^2`` over the batch)."""
    from deepinv_lab.functional import center_crop

    output = center_crop(output, target.shape[-2:])
    return float(((output - target) ** 2).sum() / (target**2).sum())
