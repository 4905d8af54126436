"""Reading ISMRMRD HDF5 raw data (2D Cartesian multi-slice) into :class:`RawVolume` s in the
fastMRI layout.

An ISMRMRD file (https://ismrmrd.readthedocs.io) is an HDF5 file with a group ``dataset``
holding ``xml`` (the XML header) and ``data``, one record per acquired readout line: its
header (flags, encoding counters ``idx``, ``center_sample``, slice position and directions) and
its samples ``(channels, number_of_samples)``. The file is only ever opened read-only.

The lines are placed as fastMRI does (:mod:`deepinv_lab.data.fastmri.layout`):

* ``H`` is ``encodedSpace/matrixSize/x`` (the readout with its oversampling): the samples left
  after ``discard_pre``/``discard_post`` are placed so that ``center_sample`` lands at index
  ``H // 2`` (an asymmetric echo leaves zeros at the start); ``ACQ_IS_REVERSE`` lines are
  flipped along the readout first (``center_sample``, ``discard_pre`` and ``discard_post``
  then apply to the flipped line, as to a forward one).
* ``W`` is ``encodedSpace/matrixSize/y``: a line's column is
  ``kspace_encode_step_1 + padding_left`` with
  ``padding_left = W // 2 - encodingLimits/kspace_encoding_step_1/center``.
* the slice is ``idx.slice`` (slices in increasing order); a line acquired several times
  (``idx.average``) is averaged; each combination of repetition, contrast, phase and set is a
  volume of its own.

Noise, navigator, phase-correction, feedback, dummy-scan, surface-coil-correction and
phase-stabilisation lines are skipped. Parallel-imaging calibration-only lines
(``ACQ_IS_PARALLEL_CALIBRATION`` without ``..._AND_IMAGING``) fill the columns the imaging lines
left empty (``calibration="merge"``) or are dropped (``"drop"``).

Refused, with one :class:`~deepinv_lab.errors.UserError` line naming the file: a missing file, a
file that is not HDF5 or has no ``dataset`` group, a non-Cartesian trajectory, a 3D encoding or
several encodings, a file without imaging lines, and slices that acquired different columns.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np

from deepinv_lab.errors import UserError
from deepinv_lab.io.geometry import SliceGeometry
from deepinv_lab.io.raw import RawVolume

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"
CALIBRATION_MODES = ("merge", "drop")

# ISMRMRD acquisition flags: bit numbers, counted from 1 (ismrmrd.ACQ_* in the Python package)
ACQ_IS_NOISE_MEASUREMENT = 19
ACQ_IS_PARALLEL_CALIBRATION = 20
ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING = 21
ACQ_IS_REVERSE = 22
ACQ_IS_NAVIGATION_DATA = 23
ACQ_IS_PHASECORR_DATA = 24
ACQ_IS_HPFEEDBACK_DATA = 26
ACQ_IS_DUMMYSCAN_DATA = 27
ACQ_IS_RTFEEDBACK_DATA = 28
ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA = 29
ACQ_IS_PHASE_STABILIZATION_REFERENCE = 30
ACQ_IS_PHASE_STABILIZATION = 31

#: the flags of lines that are not image data, and what to call them in messages
SKIPPED_FLAGS = {
    ACQ_IS_NOISE_MEASUREMENT: "noise",
    ACQ_IS_NAVIGATION_DATA: "navigator",
    ACQ_IS_PHASECORR_DATA: "phase-correction",
    ACQ_IS_HPFEEDBACK_DATA: "HP feedback",
    ACQ_IS_RTFEEDBACK_DATA: "RT feedback",
    ACQ_IS_DUMMYSCAN_DATA: "dummy-scan",
    ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA: "surface-coil correction",
    ACQ_IS_PHASE_STABILIZATION_REFERENCE: "phase-stabilisation reference",
    ACQ_IS_PHASE_STABILIZATION: "phase-stabilisation",
}

#: the encoding counters that split a file into volumes, and their name suffixes
VOLUME_COUNTERS = (("repetition", "rep"), ("contrast", "con"), ("phase", "phs"), ("set", "set"))


def flag_bit(flag: int) -> int:
    """The mask of ISMRMRD flag ``flag`` (bit numbers count from 1) in a header's ``flags``."""
    return 1 << (flag - 1)


def central_run_width(mask: np.ndarray) -> int:
    """The width of the contiguous run of acquired (nonzero) columns around column ``W // 2``
    of ``mask`` ``(W,)``; 0 when the centre column is not acquired."""
    acquired = np.asarray(mask).reshape(-1) > 0
    center = acquired.size // 2
    if acquired.size == 0 or not acquired[center]:
        return 0
    left = center
    while left > 0 and acquired[left - 1]:
        left -= 1
    right = center
    while right + 1 < acquired.size and acquired[right + 1]:
        right += 1
    return right - left + 1


# --- the XML header


def _find(element: ET.Element | None, path: str) -> ET.Element | None:
    """The first element at ``path`` (slash-separated child names in the ISMRMRD namespace)."""
    if element is None:
        return None
    query = "/".join(f"{{{ISMRMRD_NAMESPACE}}}{name}" for name in path.split("/"))
    return element.find(query)


def _text(element: ET.Element | None, path: str) -> str | None:
    found = _find(element, path)
    return None if found is None or found.text is None else found.text.strip()


def _number(element: ET.Element | None, path: str, source: Path, kind: type = int) -> float:
    text = _text(element, path)
    if text is None:
        raise UserError(f"{source}: the ISMRMRD header has no encoding/{path}")
    try:
        return kind(text) if kind is float else int(float(text))
    except ValueError:
        raise UserError(
            f"{source}: the ISMRMRD header's encoding/{path} is {text!r}, not a number"
        ) from None


def _parse_header(xml: str, source: Path) -> dict:
    """What the reader needs of the XML header: matrix sizes, fields of view, the phase-encode
    centre, the protocol name; refuses non-Cartesian, 3D and multi-encoding headers."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as error:
        raise UserError(f"{source}: the ISMRMRD XML header is not valid XML ({error})") from None
    encodings = root.findall(f"{{{ISMRMRD_NAMESPACE}}}encoding")
    if not encodings:
        raise UserError(
            f"{source}: the ISMRMRD XML header has no <encoding> (namespace {ISMRMRD_NAMESPACE})"
        )
    if len(encodings) > 1:
        raise UserError(
            f"{source}: the header has {len(encodings)} encodings; multiple encodings (or 3D) "
            "are not supported, only one 2D Cartesian encoding"
        )
    encoding = encodings[0]
    trajectory = _text(encoding, "trajectory") or "cartesian"
    if trajectory.lower() != "cartesian":
        raise UserError(
            f"{source}: the trajectory is {trajectory!r}; only Cartesian data is supported "
            "(non-Cartesian trajectories are not)"
        )
    matrix = [_number(encoding, f"encodedSpace/matrixSize/{a}", source) for a in "xyz"]
    fov = [_number(encoding, f"encodedSpace/fieldOfView_mm/{a}", source, float) for a in "xyz"]
    recon = [_number(encoding, f"reconSpace/matrixSize/{a}", source) for a in "xy"]
    limits = _find(encoding, "encodingLimits")
    center = _text(limits, "kspace_encoding_step_1/center")
    e2_maximum = _text(limits, "kspace_encoding_step_2/maximum")
    if matrix[2] > 1 and e2_maximum is not None and int(float(e2_maximum)) > 0:
        raise UserError(
            f"{source}: a 3D encoding (encodedSpace matrixSize z = {matrix[2]}, "
            f"kspace_encoding_step_2 up to {e2_maximum}); 3D (or multiple encodings) is not "
            "supported, only 2D multi-slice"
        )
    if min(matrix[:2]) < 1 or min(recon) < 1:
        raise UserError(
            f"{source}: the header's matrix sizes must be positive, got encodedSpace "
            f"{matrix[:2]} and reconSpace {recon}"
        )
    width = int(matrix[1])
    padding_left = 0 if center is None else width // 2 - int(float(center))
    return {
        "height": int(matrix[0]),
        "width": width,
        "fov": fov,
        "recon_size": (int(recon[0]), int(recon[1])),
        "padding_left": padding_left,
        "protocol": _text(root, "measurementInformation/protocolName") or "",
    }


# --- the acquisitions


def _open(path: Path, dataset_name: str) -> tuple[str, np.ndarray]:
    """The XML header and all acquisition records of ``path`` (opened read-only)."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an ISMRMRD file")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise UserError(
            f"{path}: not an HDF5 file, so not an ISMRMRD file ({type(error).__name__}: {error})"
        ) from None
    with file:
        if dataset_name not in file or not isinstance(file[dataset_name], h5py.Group):
            groups = sorted(file.keys())
            hint = " (it looks like a fastMRI file)" if "kspace" in groups else ""
            raise UserError(
                f"{path}: no group {dataset_name!r}, so not an ISMRMRD file; the file has "
                f"{groups}{hint}"
            )
        group = file[dataset_name]
        if "xml" not in group:
            raise UserError(
                f"{path}: the ISMRMRD group {dataset_name!r} has no 'xml' header (it has "
                f"{sorted(group.keys())})"
            )
        xml = group["xml"][()] if group["xml"].shape in ((), None) else group["xml"][0]
        xml = xml.decode("utf-8", errors="replace") if isinstance(xml, bytes) else str(xml)
        if "data" not in group or group["data"].size == 0:
            raise UserError(f"{path}: no acquisitions (no imaging data) in {dataset_name}/data")
        try:
            records = group["data"][()]
        except (OSError, TypeError, ValueError) as error:
            raise UserError(
                f"{path}: {dataset_name}/data cannot be read as ISMRMRD acquisitions "
                f"({type(error).__name__}: {error})"
            ) from None
    return xml, records


def _describe_skipped(flags: np.ndarray) -> str:
    counts = []
    for flag, name in SKIPPED_FLAGS.items():
        count = int(np.count_nonzero(flags & np.uint64(flag_bit(flag))))
        if count:
            counts.append(f"{count} {name}")
    return ", ".join(counts) if counts else "none of them image lines"


def _check_lines(head: np.ndarray, used: np.ndarray, header: dict, path: Path) -> None:
    """Refuse non-Cartesian, 3D and multi-encoding acquisitions among the ``used`` lines."""
    if np.any(head["trajectory_dimensions"][used] > 0):
        raise UserError(
            f"{path}: acquisitions carry a k-space trajectory (trajectory_dimensions > 0); "
            "only Cartesian data is supported (non-Cartesian trajectories are not)"
        )
    if np.any(head["encoding_space_ref"][used] != 0):
        raise UserError(
            f"{path}: acquisitions refer to several encodings (encoding_space_ref != 0); "
            "multiple encodings (or 3D) are not supported"
        )
    if np.any(head["idx"]["kspace_encode_step_2"][used] != 0):
        raise UserError(
            f"{path}: acquisitions use kspace_encode_step_2 (a 3D encoding); 3D (or multiple "
            "encodings) is not supported, only 2D multi-slice"
        )
    channels = np.unique(head["active_channels"][used])
    if channels.size != 1:
        raise UserError(
            f"{path}: the image lines have different numbers of active channels "
            f"{channels.tolist()}; all must have the same coils"
        )
    columns = head["idx"]["kspace_encode_step_1"][used].astype(np.int64) + header["padding_left"]
    if columns.min() < 0 or columns.max() >= header["width"]:
        raise UserError(
            f"{path}: phase encodes kspace_encode_step_1 + padding_left run from "
            f"{columns.min()} to {columns.max()}, outside the encoded matrix y = "
            f"{header['width']} (padding_left {header['padding_left']})"
        )


def _line(record: np.void, reverse: bool, height: int, path: Path, number: int) -> np.ndarray:
    """One acquisition's samples ``(C, H)`` placed along the readout (module docstring)."""
    head = record["head"]
    channels = int(head["active_channels"])
    samples = int(head["number_of_samples"])
    data = np.asarray(record["data"], dtype=np.float32).view(np.complex64)
    if data.size != channels * samples:
        raise UserError(
            f"{path}: acquisition {number} holds {data.size} samples, not active_channels x "
            f"number_of_samples = {channels} x {samples}"
        )
    data = data.reshape(channels, samples)
    if reverse:
        data = data[:, ::-1]
    first = int(head["discard_pre"])
    last = samples - int(head["discard_post"])
    start = height // 2 - int(head["center_sample"]) + first
    stop = start + (last - first)
    if last <= first or start < 0 or stop > height:
        raise UserError(
            f"{path}: acquisition {number}: {samples} samples (discard_pre {first}, "
            f"discard_post {samples - last}) centred at center_sample {int(head['center_sample'])} "
            f"do not fit the encoded readout matrix x = {height}"
        )
    line = np.zeros((channels, height), dtype=np.complex64)
    line[:, start:stop] = data[:, first:last]
    return line


def _volume_name(stem: str, key: tuple[int, ...], varying: list[int]) -> str:
    if not varying:
        return stem
    return stem + "".join(f"_{VOLUME_COUNTERS[i][1]}{key[i]}" for i in varying)


def _geometry(
    head: np.ndarray, lines: np.ndarray, slices: list[int], header: dict
) -> SliceGeometry | None:
    """The slices' geometry from the first line of each slice; None when the acquisitions
    carry no directions (a simulated file) or the header has no field of view."""
    first = head[lines[0]]
    directions = [
        np.asarray(first[f"{name}_dir"], dtype=np.float64) for name in ("read", "phase", "slice")
    ]
    if any(not np.isfinite(d).all() or np.linalg.norm(d) < 1e-6 for d in directions):
        return None
    fov_x, fov_y, fov_z = header["fov"]
    if fov_x <= 0 or fov_y <= 0:
        return None
    slice_numbers = head["idx"]["slice"][lines]
    positions = np.stack(
        [np.asarray(head[lines[np.argmax(slice_numbers == s)]]["position"]) for s in slices]
    ).astype(np.float64)
    return SliceGeometry(
        positions=positions,
        read_dir=directions[0],
        phase_dir=directions[1],
        slice_dir=directions[2],
        pixel_spacing=(fov_x / header["height"], fov_y / header["width"]),
        slice_thickness=fov_z,
    )


def read_ismrmrd(
    path: str | Path, calibration: str = "merge", dataset_name: str = "dataset"
) -> list[RawVolume]:
    """Read an ISMRMRD HDF5 file of 2D Cartesian multi-slice k-space (module docstring).

    Args:
        path: the ``.h5`` file; it is opened read-only and never modified.
        calibration: ``"merge"``: calibration-only lines fill the columns the imaging lines did
            not acquire (in-place ACS); ``"drop"``: they are ignored.
        dataset_name: the HDF5 group holding the ISMRMRD dataset.

    Returns:
        One :class:`RawVolume` per combination of repetition, contrast, phase and set that has
        image lines, in increasing order of ``(repetition, contrast, phase, set)``; named after
        the file's stem, with ``_rep<r>``, ``_con<c>``, ``_phs<p>``, ``_set<s>`` for the
        counters that vary in the file. ``kspace`` is ``(S, C, H, W)`` complex64 with ``H`` the
        encoded readout (its oversampling kept) and ``W`` the encoded phase encodes;
        ``recon_size`` is the header's ``reconSpace`` matrix ``(x, y)``.

    Raises:
        UserError: one line naming the file: missing, not HDF5/ISMRMRD, non-Cartesian, 3D or
            multiple encodings, no image lines, lines that do not fit the encoded matrix, or
            slices that acquired different columns.
    """
    if calibration not in CALIBRATION_MODES:
        raise UserError(f"calibration must be one of {CALIBRATION_MODES}, got {calibration!r}")
    path = Path(path)
    xml, records = _open(path, dataset_name)
    header = _parse_header(xml, path)
    head = records["head"]
    flags = head["flags"].astype(np.uint64)
    skip_mask = np.uint64(sum(flag_bit(flag) for flag in SKIPPED_FLAGS))
    kept = (flags & skip_mask) == 0
    calibration_only = ((flags & np.uint64(flag_bit(ACQ_IS_PARALLEL_CALIBRATION))) != 0) & (
        (flags & np.uint64(flag_bit(ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING))) == 0
    )
    imaging = kept & ~calibration_only
    calibrating = kept & calibration_only
    if not imaging.any():
        raise UserError(
            f"{path}: no imaging acquisitions among its {len(records)} acquisitions "
            f"({_describe_skipped(flags)}{', calibration only' if calibrating.any() else ''})"
        )
    if calibration == "drop":
        calibrating[:] = False
    _check_lines(head, imaging | calibrating, header, path)

    height, width = header["height"], header["width"]
    channels = int(head["active_channels"][imaging][0])
    keys = np.stack([head["idx"][name] for name, _ in VOLUME_COUNTERS], axis=1).astype(np.int64)
    volume_keys = sorted({tuple(int(k) for k in key) for key in keys[imaging]})
    varying = [i for i in range(len(VOLUME_COUNTERS)) if len({k[i] for k in volume_keys}) > 1]
    reverse = (flags & np.uint64(flag_bit(ACQ_IS_REVERSE))) != 0
    columns = head["idx"]["kspace_encode_step_1"].astype(np.int64) + header["padding_left"]
    slice_numbers = head["idx"]["slice"].astype(np.int64)

    volumes = []
    for key in volume_keys:
        in_volume = np.all(keys == np.asarray(key), axis=1)
        lines = np.flatnonzero(imaging & in_volume)
        slices = sorted({int(s) for s in slice_numbers[lines]})
        slice_of = {s: i for i, s in enumerate(slices)}
        shape = (len(slices), channels, height, width)
        sums = {
            "image": np.zeros(shape, np.complex64),
            "calibration": np.zeros(shape, np.complex64),
        }
        counts = {
            "image": np.zeros(shape[::3], np.int64),
            "calibration": np.zeros(shape[::3], np.int64),
        }
        for kind, selected in (
            ("image", lines),
            ("calibration", np.flatnonzero(calibrating & in_volume)),
        ):
            for number in selected:
                s = slice_of.get(int(slice_numbers[number]))
                if s is None:  # a calibration line of a slice without image lines
                    continue
                column = int(columns[number])
                sums[kind][s, :, :, column] += _line(
                    records[number], bool(reverse[number]), height, path, int(number)
                )
                counts[kind][s, column] += 1
        fill = (counts["image"] == 0) & (counts["calibration"] > 0)
        total = np.where(fill, counts["calibration"], counts["image"])
        kspace = np.where(fill[:, None, None, :], sums["calibration"], sums["image"])
        kspace /= np.maximum(total, 1)[:, None, None, :].astype(np.float32)
        acquired = total > 0
        differing = [
            slices[i] for i in range(len(slices)) if not np.array_equal(acquired[i], acquired[0])
        ]
        name = _volume_name(path.stem, key, varying)
        if differing:
            raise UserError(
                f"{path}: volume {name}: slices {differing} acquired other phase-encode columns "
                f"than slice {slices[0]} ({int(acquired[0].sum())} columns); all slices must "
                "acquire the same columns"
            )
        mask = acquired[0].astype(np.float32)
        volumes.append(
            RawVolume(
                kspace=kspace.astype(np.complex64, copy=False),
                mask=mask,
                num_low_frequencies=central_run_width(mask),
                header=xml,
                recon_size=header["recon_size"],
                geometry=_geometry(head, lines, slices, header),
                name=name,
                source=path,
                acquisition=header["protocol"],
            )
        )
    return volumes
