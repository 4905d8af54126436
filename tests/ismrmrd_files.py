"""Write small synthetic ISMRMRD HDF5 files (2D Cartesian multi-slice) for tests.

The files are written with the ``ismrmrd`` Python package (``ismrmrd.Dataset``,
``ismrmrd.Acquisition``): an XML header (``dataset/xml``) and one acquisition per readout line
(``dataset/data``). The k-space is simulated from coil images ``(S, C, H, W)`` that fill the
reconstruction field of view: the images are zero-padded along ``H`` to the oversampled readout
``oversampling * H`` (centred as :func:`~deepinv_lab.functional.center_crop` crops) and
transformed with the project's centred orthonormal :func:`~deepinv_lab.functional.fft2c`, so
that the RSS of the centre crop of ``ifft2c`` of the k-space is the RSS of the images.

Other test modules import :func:`write_ismrmrd`, :func:`simulated_kspace` and
:func:`brain_coil_images`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ismrmrd
import numpy as np
import torch

from deepinv_lab.functional import fft2c

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"
PIXEL_MM = 2.0
SLICE_THICKNESS_MM = 4.0


def brain_coil_images(
    num_slices: int = 3, num_coils: int = 4, shape: tuple[int, int] = (64, 48)
) -> np.ndarray:
    """Coil images ``(S, C, H, W)`` complex64: validation slices of the built-in brain (with
    their smooth phase) times birdcage coil sensitivities."""
    from deepinv_lab.data.sources.brain import BuiltinBrain
    from deepinv_lab.systems.coils import birdcage_maps

    height, width = shape
    factor = max(1, min(233 // height, 197 // width))
    source = BuiltinBrain(image_size=(height * factor, width * factor), downsample=factor)
    split = source.split("val", complex_images=True)
    indices = np.linspace(0, len(split) - 1, num_slices).round().astype(int)
    images = torch.stack([split.read(int(i))[0]["x"][0] for i in indices])
    maps = birdcage_maps(num_coils, (height, width))
    return (images[:, None] * maps[None]).numpy().astype(np.complex64)


def simulated_kspace(coil_images: np.ndarray, oversampling: int = 2) -> np.ndarray:
    """The k-space ``(S, C, oversampling * H, W)`` complex64 of ``coil_images`` over the
    oversampled readout field of view (module docstring)."""
    images = np.asarray(coil_images, dtype=np.complex64)
    height = images.shape[-2]
    padded_height = oversampling * height
    padded = np.zeros((*images.shape[:-2], padded_height, images.shape[-1]), np.complex64)
    top = (padded_height - height) // 2
    padded[..., top : top + height, :] = images
    return fft2c(torch.from_numpy(padded)).numpy()


def ismrmrd_xml(
    encoded: tuple[int, int, int],
    recon: tuple[int, int],
    *,
    center: int,
    maximum: int,
    num_slices: int,
    averages: int = 1,
    repetitions: int = 1,
    trajectory: str = "cartesian",
    encodings: int = 1,
    protocol_name: str | None = "AXT2",
) -> str:
    """An ISMRMRD XML header for one 2D Cartesian encoding (``encodings`` copies of it)."""
    ex, ey, ez = encoded
    rx, ry = recon
    e2_max = max(ez - 1, 0)
    protocol = (
        ""
        if protocol_name is None
        else f"<measurementInformation><protocolName>{protocol_name}</protocolName>"
        "<patientPosition>HFS</patientPosition></measurementInformation>"
    )
    encoding = f"""
  <encoding>
    <encodedSpace>
      <matrixSize><x>{ex}</x><y>{ey}</y><z>{ez}</z></matrixSize>
      <fieldOfView_mm><x>{ex * PIXEL_MM}</x><y>{ey * PIXEL_MM}</y>
        <z>{SLICE_THICKNESS_MM}</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rx}</x><y>{ry}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{rx * PIXEL_MM}</x><y>{ry * PIXEL_MM}</y>
        <z>{SLICE_THICKNESS_MM}</z></fieldOfView_mm>
    </reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{maximum}</maximum>
        <center>{center}</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>{e2_max}</maximum>
        <center>{e2_max // 2 if ez > 1 else 0}</center></kspace_encoding_step_2>
      <average><minimum>0</minimum><maximum>{averages - 1}</maximum><center>0</center></average>
      <slice><minimum>0</minimum><maximum>{num_slices - 1}</maximum><center>0</center></slice>
      <repetition><minimum>0</minimum><maximum>{repetitions - 1}</maximum>
        <center>0</center></repetition>
    </encodingLimits>
    <trajectory>{trajectory}</trajectory>
  </encoding>"""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="{ISMRMRD_NAMESPACE}">
  {protocol}
  <acquisitionSystemInformation><receiverChannels>8</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>63500000</H1resonanceFrequency_Hz>
  </experimentalConditions>{encoding * encodings}
</ismrmrdHeader>
"""


def _acquisition(
    data: np.ndarray,
    *,
    center_sample: int,
    flags: Sequence[int] = (),
    trajectory_dimensions: int = 0,
    discard: tuple[int, int] = (0, 0),
    **counters: int,
) -> ismrmrd.Acquisition:
    trajectory = None
    if trajectory_dimensions:
        trajectory = np.zeros((data.shape[1], trajectory_dimensions), np.float32)
    acq = ismrmrd.Acquisition.from_array(
        np.ascontiguousarray(data, dtype=np.complex64),
        trajectory=trajectory,
        center_sample=center_sample,
        discard_pre=discard[0],
        discard_post=discard[1],
    )
    for flag in flags:
        acq.set_flag(flag)
    for name, value in counters.items():
        setattr(acq.idx, name, int(value))
    return acq


def write_ismrmrd(
    path: str | Path,
    coil_images: np.ndarray,
    *,
    columns: Sequence[int] | None = None,
    slice_columns: dict[int, Sequence[int]] | None = None,
    oversampling: int = 2,
    averages: int = 1,
    repetitions: int = 1,
    noise_scans: int = 0,
    acs_lines: Sequence[int] | None = None,
    reverse_every_other: bool = False,
    readout_start: int = 0,
    discard: tuple[int, int] = (0, 0),
    padding_left: int = 0,
    trajectory: str = "cartesian",
    trajectory_dimensions: int = 0,
    matrix_z: int = 1,
    encodings: int = 1,
    image_lines: bool = True,
    positions: np.ndarray | None = None,
    orientation: tuple[Sequence[float], Sequence[float], Sequence[float]] = (
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
    ),
    protocol_name: str | None = "AXT2",
) -> np.ndarray:
    """Write an ISMRMRD file of the k-space of ``coil_images`` ``(S, C, H, W)`` and return that
    k-space ``(repetitions, S, C, oversampling * H, W)`` (what a reader should find).

    Args:
        columns: the acquired phase-encode columns (None: all ``W``); ``slice_columns``
            overrides them for some slices.
        oversampling: the readout oversampling: encodedSpace ``x = oversampling * H``,
            reconSpace ``(H, W)``.
        averages: each line is written ``averages`` times, average ``a`` scaled by
            ``1 + 0.5 (a - (averages - 1) / 2)`` (the scales' mean is 1).
        repetitions: repetition ``r`` holds the k-space times ``r + 1``.
        noise_scans: random noise lines (``ACQ_IS_NOISE_MEASUREMENT``) written first.
        acs_lines: calibration columns: those not in ``columns`` are calibration-only lines
            (``ACQ_IS_PARALLEL_CALIBRATION``), those in it are flagged
            ``ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING``.
        reverse_every_other: odd lines are stored time-reversed with ``ACQ_IS_REVERSE``.
        readout_start: an asymmetric echo: the first ``readout_start`` readout samples are not
            acquired (``center_sample`` shrinks accordingly).
        discard: ``(discard_pre, discard_post)`` junk samples added around each line.
        padding_left: column ``c`` is written as ``kspace_encode_step_1 = c - padding_left``,
            with ``encodingLimits`` centre ``W // 2 - padding_left``.
        trajectory: the header's ``encoding/trajectory``.
        trajectory_dimensions: > 0 gives every line a (zero) trajectory of that many dims.
        matrix_z: encodedSpace ``z``; > 1 writes a 3D encoding (``kspace_encode_step_2`` =
            slice index modulo ``matrix_z``).
        encodings: how many ``<encoding>`` elements the header has.
        image_lines: False writes no image lines (only the noise scans, if any).
        positions: ``(S, 3)`` slice centres (mm, LPS); None: ``(0, 0, 5 s)``.
        orientation: ``read_dir``, ``phase_dir``, ``slice_dir``.
        protocol_name: ``measurementInformation/protocolName`` (None: no measurementInformation).
    """
    images = np.asarray(coil_images, dtype=np.complex64)
    num_slices, num_coils, height, width = images.shape
    kspace = simulated_kspace(images, oversampling)
    padded_height = kspace.shape[-2]
    columns = list(range(width)) if columns is None else [int(c) for c in columns]
    acs = [int(c) for c in (acs_lines or [])]
    if positions is None:
        positions = np.stack(
            [np.zeros(num_slices), np.zeros(num_slices), 5.0 * np.arange(num_slices)], 1
        )
    positions = np.asarray(positions, dtype=np.float32)
    center = width // 2 - padding_left
    xml = ismrmrd_xml(
        (padded_height, width, matrix_z),
        (height, width),
        center=center,
        maximum=width - 1 - padding_left,
        num_slices=num_slices,
        averages=averages,
        repetitions=repetitions,
        trajectory=trajectory,
        encodings=encodings,
        protocol_name=protocol_name,
    )
    center_sample = padded_height // 2 - readout_start + discard[0]
    rng = np.random.default_rng(0)
    with ismrmrd.Dataset(str(path), "dataset", create_if_needed=True) as dataset:
        dataset.write_xml_header(xml.encode("utf-8"))
        for _ in range(noise_scans):
            noise = rng.standard_normal((num_coils, padded_height, 2)).astype(np.float32)
            acq = _acquisition(
                noise.view(np.complex64)[..., 0],
                center_sample=0,
                flags=[ismrmrd.ACQ_IS_NOISE_MEASUREMENT],
            )
            dataset.append_acquisition(acq)
        if not image_lines:
            return kspace[None]
        count = 0
        for repetition in range(repetitions):
            for s in range(num_slices):
                acquired = columns if slice_columns is None else slice_columns.get(s, columns)
                lines = sorted(set(acquired) | set(acs))
                for average in range(averages):
                    scale = (repetition + 1) * (1 + 0.5 * (average - (averages - 1) / 2))
                    for column in lines:
                        flags = []
                        if column in acs:
                            flags.append(
                                ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING
                                if column in acquired
                                else ismrmrd.ACQ_IS_PARALLEL_CALIBRATION
                            )
                        data = scale * kspace[s, :, readout_start:, column]
                        junk = [np.full((num_coils, n), 7 + 7j, np.complex64) for n in discard]
                        data = np.concatenate([junk[0], data, junk[1]], axis=1)
                        if reverse_every_other and count % 2:
                            flags.append(ismrmrd.ACQ_IS_REVERSE)
                            data = data[:, ::-1]
                        count += 1
                        acq = _acquisition(
                            data,
                            center_sample=center_sample,
                            flags=flags,
                            trajectory_dimensions=trajectory_dimensions,
                            discard=discard,
                            kspace_encode_step_1=column - padding_left,
                            kspace_encode_step_2=s % matrix_z if matrix_z > 1 else 0,
                            slice=s,
                            average=average,
                            repetition=repetition,
                        )
                        acq.position[:] = tuple(float(p) for p in positions[s])
                        acq.read_dir[:] = tuple(orientation[0])
                        acq.phase_dir[:] = tuple(orientation[1])
                        acq.slice_dir[:] = tuple(orientation[2])
                        dataset.append_acquisition(acq)
    return np.stack([(r + 1) * kspace for r in range(repetitions)])
