"""The fastMRI data (Zbontar et al., arXiv:1811.08839): one item per slice of the HDF5 volumes.

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

:class:`FastMRISliceDataset` indexes a folder of such files once (reading only headers and
shapes; the index is cached, :func:`default_cache_file`), and each item reads one slice.
Measurements are simulated as fastMRI's ``VarNetDataTransform`` does: a column mask (from
:mod:`deepinv_lab.systems.sampling`, bit-identical to fastMRI's) with the unacquired columns
zeroed multiplies the fully sampled k-space. Validation and test masks are seeded with
``tuple(map(ord, fname))`` as in fastMRI, so they are fixed per volume and equal fastMRI's;
training masks are drawn afresh at every read, reproducibly given the project's samplers
(:func:`deepinv_lab.data.samplers.item_generator`).

Errors name the file (and slice): a file that is not readable HDF5, a missing dataset, an
unparsable header fail when the dataset is built; a file that breaks after indexing fails in the
DataLoader worker with a :class:`FastMRIDataError` naming file and slice. Files are only ever
opened read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from deepinv_lab.data.samplers import item_generator
from deepinv_lab.errors import UserError
from deepinv_lab.files import write_json_atomic
from deepinv_lab.functional import center_crop
from deepinv_lab.systems.mri import MultiCoilFourier, SingleCoilMRI
from deepinv_lab.systems.sampling import create_mask_for_mask_type, to_column_mask

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"
CHALLENGES = ("multicoil", "singlecoil")
SPLITS = ("train", "val", "test")
#: The target dataset of each challenge.
TARGET_KEYS = {"multicoil": "reconstruction_rss", "singlecoil": "reconstruction_esc"}
#: Bumped when :class:`VolumeInfo` changes, which invalidates every cached index.
INDEX_VERSION = 1


class FastMRIDataError(UserError):
    """A fastMRI file (or folder) that cannot be used; the message names it."""


# --- header ----------------------------------------------------------------------------------


def _header_int(root: ET.Element, path: Sequence[str], source: str) -> int:
    """The integer text of the first element at ``path`` (each step a descendant, as fastMRI's
    ``et_query``) in the ISMRMRD namespace."""
    query = "." + "".join(f"//{{{ISMRMRD_NAMESPACE}}}{name}" for name in path)
    element = root.find(query)
    if element is None or element.text is None:
        raise FastMRIDataError(
            f"{source}: the ISMRMRD header has no element {'/'.join(path)} (namespace "
            f"{ISMRMRD_NAMESPACE}); the header is incomplete"
        )
    try:
        return int(element.text.strip())
    except ValueError:
        raise FastMRIDataError(
            f"{source}: the ISMRMRD header element {'/'.join(path)} is {element.text!r}, "
            "not an integer"
        ) from None


def parse_ismrmrd_header(header: bytes | str, source: str = "ismrmrd_header") -> dict[str, Any]:
    """The geometry fastMRI reads from an ISMRMRD XML header.

    Args:
        header: the XML, as stored in a file's ``ismrmrd_header`` dataset.
        source: what to name in error messages (the file).

    Returns:
        ``encoding_size`` and ``recon_size`` (the encoded and reconstructed matrix sizes
        ``(x, y, z)``; ``x`` is the readout ``H``, ``y`` the phase-encode ``W``), and
        ``padding_left = encoding_size[1] // 2 - center``,
        ``padding_right = padding_left + maximum + 1`` from
        ``encodingLimits/kspace_encoding_step_1``: the acquired columns are
        ``[padding_left, padding_right)``.

    Raises:
        FastMRIDataError: unparsable XML or a missing/non-integer element, naming ``source``.
    """
    if isinstance(header, np.ndarray):
        header = header.item()
    if isinstance(header, (bytes, np.bytes_)):
        header = bytes(header)
    try:
        root = ET.fromstring(header)
    except ET.ParseError as error:
        raise FastMRIDataError(f"{source}: the ISMRMRD header is not valid XML ({error})") from None
    encoded = ("encoding", "encodedSpace", "matrixSize")
    recon = ("encoding", "reconSpace", "matrixSize")
    limits = ("encoding", "encodingLimits", "kspace_encoding_step_1")
    encoding_size = tuple(_header_int(root, (*encoded, axis), source) for axis in "xyz")
    recon_size = tuple(_header_int(root, (*recon, axis), source) for axis in "xyz")
    center = _header_int(root, (*limits, "center"), source)
    maximum = _header_int(root, (*limits, "maximum"), source)
    padding_left = encoding_size[1] // 2 - center
    return {
        "encoding_size": encoding_size,
        "recon_size": recon_size,
        "padding_left": padding_left,
        "padding_right": padding_left + maximum + 1,
    }


# --- one volume's metadata -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    """What the index knows about one file, read without touching k-space.

    Attributes:
        path: absolute path of the file.
        num_slices: number of slices.
        kspace_shape: one slice's k-space shape, ``(coils, H, W)`` or ``(H, W)`` (singlecoil).
        encoding_size, recon_size, padding_left, padding_right: from the header
            (:func:`parse_ismrmrd_header`).
        target_shapes: one slice's shape ``(rh, rw)`` of each reconstruction dataset present
            (``reconstruction_rss``, ``reconstruction_esc``).
        has_mask: the file holds a ``mask`` (a test-set file, k-space already undersampled).
        datasets: the names of the file's datasets (for error messages).
        attrs: the HDF5 attributes (``max``, ``norm``, ``acquisition``, ``patient_id``, ...) as
            plain JSON values.
    """

    path: str
    num_slices: int
    kspace_shape: tuple[int, ...]
    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int
    target_shapes: dict[str, tuple[int, ...]]
    has_mask: bool
    datasets: tuple[str, ...]
    attrs: dict[str, Any]

    @property
    def acquisition(self) -> str:
        return str(self.attrs.get("acquisition", ""))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VolumeInfo:
        data = dict(data)
        for key in ("kspace_shape", "encoding_size", "recon_size", "datasets"):
            data[key] = tuple(data[key])
        data["target_shapes"] = {k: tuple(v) for k, v in data["target_shapes"].items()}
        return cls(**data)


def _json_value(value: Any) -> Any:
    """An HDF5 attribute as a JSON value (None when it has no simple equivalent)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return None


def _missing_key(path: str, key: str, keys: Sequence[str], hint: str = "") -> FastMRIDataError:
    return FastMRIDataError(
        f"{path}: no dataset {key!r} (the file has {sorted(keys)}); this is not a complete "
        f"fastMRI file{hint}"
    )


def read_volume_info(path: str | Path) -> VolumeInfo:
    """Index one fastMRI file: its header, dataset shapes and attributes (no k-space is read).

    Raises:
        FastMRIDataError: the file is not readable HDF5 (corrupt or truncated), lacks ``kspace``
            or ``ismrmrd_header``, or its header cannot be parsed; the message names the file.
    """
    path = str(Path(path).absolute())
    try:
        with h5py.File(path, "r") as f:
            keys = list(f.keys())
            for key in ("kspace", "ismrmrd_header"):
                if key not in f:
                    raise _missing_key(path, key, keys)
            kspace = f["kspace"]
            if kspace.ndim not in (3, 4) or not np.issubdtype(kspace.dtype, np.complexfloating):
                raise FastMRIDataError(
                    f"{path}: 'kspace' must be complex (slices, coils, H, W) or (slices, H, W), "
                    f"got dtype {kspace.dtype} with shape {kspace.shape}"
                )
            geometry = parse_ismrmrd_header(f["ismrmrd_header"][()], path)
            target_shapes = {
                key: tuple(int(n) for n in f[key].shape[1:])
                for key in TARGET_KEYS.values()
                if key in f
            }
            for key in target_shapes:
                if f[key].shape[0] != kspace.shape[0]:
                    raise FastMRIDataError(
                        f"{path}: {key!r} has {f[key].shape[0]} slices but 'kspace' has "
                        f"{kspace.shape[0]}"
                    )
            attrs = {str(k): _json_value(v) for k, v in f.attrs.items()}
            return VolumeInfo(
                path=path,
                num_slices=int(kspace.shape[0]),
                kspace_shape=tuple(int(n) for n in kspace.shape[1:]),
                target_shapes=target_shapes,
                has_mask="mask" in f,
                datasets=tuple(sorted(keys)),
                attrs={k: v for k, v in attrs.items() if v is not None},
                **geometry,
            )
    except FastMRIDataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        raise FastMRIDataError(
            f"{path}: cannot be read as a fastMRI HDF5 file ({type(error).__name__}: {error}); "
            "it is probably corrupt or truncated -- re-download it, or move it out of the "
            "folder (or leave it out of the list of files)"
        ) from error


# --- index cache -----------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where deepinv_lab caches things: ``$DEEPINV_LAB_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/deepinv_lab``, else ``~/.cache/deepinv_lab``."""
    if os.environ.get("DEEPINV_LAB_CACHE_DIR"):
        return Path(os.environ["DEEPINV_LAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepinv_lab"


def default_cache_file(root: str | Path | Sequence[str | Path]) -> Path:
    """The index cache of a data folder (or a list of files): a JSON file in
    :func:`default_cache_dir` named by a hash of the absolute path(s), never inside the data."""
    if isinstance(root, (str, Path)):
        key = str(Path(root).absolute())
        name = Path(root).absolute().name
    else:
        key = "\n".join(sorted(str(Path(p).absolute()) for p in root))
        name = "files"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return default_cache_dir() / "fastmri_index" / f"{name}-{digest}.json"


def _file_stamp(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


def load_index_cache(cache_file: str | Path) -> dict[str, dict[str, Any]]:
    """Entries ``{path: {"mtime_ns", "size", "info"}}`` of a cache file; ``{}`` when it is
    missing, unreadable or of another version (it is then rebuilt)."""
    cache_file = Path(cache_file)
    if not cache_file.is_file():
        return {}
    try:
        data = json.loads(cache_file.read_text())
    except (OSError, ValueError) as error:
        warnings.warn(
            f"ignoring the unreadable fastMRI index cache {cache_file}: {error}", stacklevel=2
        )
        return {}
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def save_index_cache(cache_file: str | Path, entries: dict[str, dict[str, Any]]) -> None:
    """Write the cache atomically (a temporary file in the same folder, then ``os.replace``), so
    that concurrent processes (DDP ranks) never see a partial file. A folder that cannot be
    written only warns: the cache is an optimisation."""
    cache_file = Path(cache_file)
    try:
        write_json_atomic(cache_file, {"version": INDEX_VERSION, "files": entries})
    except OSError as error:
        warnings.warn(
            f"could not write the fastMRI index cache {cache_file}: {error}", stacklevel=2
        )


def index_volumes(
    files: Sequence[str | Path], cache_file: str | Path | None = None
) -> list[VolumeInfo]:
    """:func:`read_volume_info` of every file, through the cache ``cache_file`` (None: no cache).

    A cached entry is used while the file's modification time and size are unchanged; entries
    of other files in the cache are kept. The cache is rewritten only when something changed.
    """
    entries = load_index_cache(cache_file) if cache_file is not None else {}
    changed = False
    infos = []
    for file in files:
        path = str(Path(file).absolute())
        if not Path(path).is_file():
            raise FastMRIDataError(f"{path}: no such fastMRI file (missing, or not a file)")
        mtime_ns, size = _file_stamp(path)
        entry = entries.get(path)
        info = None
        if entry and entry.get("mtime_ns") == mtime_ns and entry.get("size") == size:
            try:
                info = VolumeInfo.from_json(entry["info"])
            except (KeyError, TypeError, ValueError):
                info = None
        if info is None:
            info = read_volume_info(path)
            entries[path] = {"mtime_ns": mtime_ns, "size": size, "info": info.to_json()}
            changed = True
        infos.append(info)
    if cache_file is not None and changed:
        save_index_cache(cache_file, entries)
    return infos


def list_h5_files(root: str | Path | Sequence[str | Path]) -> list[Path]:
    """The ``.h5`` files of a folder (not recursive, hidden files skipped) or of a list of files,
    sorted by path.

    Raises:
        FastMRIDataError: a missing folder or file, or a folder without ``.h5`` files.
    """
    if isinstance(root, (str, Path)):
        folder = Path(root)
        if not folder.is_dir():
            kind = "a file, not a folder" if folder.exists() else "missing"
            raise FastMRIDataError(f"fastMRI data folder {folder} is {kind}")
        files = sorted(
            p for p in folder.iterdir() if p.suffix == ".h5" and not p.name.startswith(".")
        )
        if not files:
            raise FastMRIDataError(
                f"fastMRI data folder {folder} has no .h5 files (expected files like "
                "file1000.h5 of a fastMRI split folder such as knee_multicoil_train)"
            )
        return files
    files = sorted(Path(p) for p in root)
    if not files:
        raise FastMRIDataError("the list of fastMRI files (root) is empty")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FastMRIDataError(f"fastMRI files not found: {missing[:5]}")
    return files


# --- per-slice transform ---------------------------------------------------------------------


class FastMRISliceTransform:
    """Raw slice -> item tensors, as fastMRI's ``VarNetDataTransform``.

    Args:
        mask_func: a column mask function of :mod:`deepinv_lab.systems.sampling`.
        crop_size: center-crop the target to ``(h, w)``; None keeps the stored target
            (``(rh, rw)``, the reconstruction matrix of the header).

    ``__call__`` returns ``y`` (masked k-space ``(coils, H, W)`` complex64, ``(1, H, W)`` for
    singlecoil), ``mask`` ``(1, 1, W)`` float32 with the unacquired columns zeroed,
    ``num_low_frequencies`` and, when a target is given, ``target`` ``(1, h, w)`` float32.
    """

    def __init__(self, mask_func: Callable, crop_size: Sequence[int] | None = None):
        self.mask_func = mask_func
        self.crop_size = None if crop_size is None else tuple(int(n) for n in crop_size)

    def __call__(
        self,
        kspace: np.ndarray,
        target: np.ndarray | None,
        stored_mask: np.ndarray | None,
        info: VolumeInfo,
        mask_seed: int | tuple[int, ...],
    ) -> dict[str, torch.Tensor]:
        kspace_t = torch.from_numpy(np.ascontiguousarray(kspace)).to(torch.complex64)
        if kspace_t.ndim == 2:  # singlecoil (H, W) -> (1, H, W)
            kspace_t = kspace_t[None]
        height, width = kspace_t.shape[-2:]
        if stored_mask is not None:  # test-set file: k-space already undersampled with it
            mask = torch.from_numpy(np.asarray(stored_mask, dtype=np.float32).reshape(1, 1, -1))
            num_low_frequencies = int(info.attrs.get("num_low_frequency", 0))
        else:
            mask, num_low_frequencies = self.mask_func((1, height, width, 2), seed=mask_seed)
            mask = to_column_mask(mask).clone()
        if mask.shape[-1] != width:
            raise FastMRIDataError(
                f"{info.path}: mask of {mask.shape[-1]} columns for k-space of {width} columns"
            )
        # fastMRI zeroes the mask outside the acquired phase encodes (clamped to [0, W]).
        mask[..., : max(info.padding_left, 0)] = 0
        mask[..., max(min(info.padding_right, width), 0) :] = 0
        item = {
            "y": kspace_t * mask + 0.0,  # + 0.0: no negative zeros, as fastMRI's apply_mask
            "mask": mask,
            "num_low_frequencies": torch.tensor(num_low_frequencies),
        }
        if target is not None:
            target_t = torch.from_numpy(np.asarray(target, dtype=np.float32))[None]
            if self.crop_size is not None:
                target_t = center_crop(target_t, self.crop_size)
            item["target"] = target_t
        return item


# --- the dataset -----------------------------------------------------------------------------


def _check_rate(name: str, value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise UserError(f"{name} must be in (0, 1], got {value}")


class FastMRISliceDataset(Dataset):
    """Slices of fastMRI HDF5 volumes, with simulated (or, for test files, stored) masks.

    Args:
        root: a folder of ``.h5`` volumes (e.g. ``knee_multicoil_val``), or a list of files.
        challenge: ``"multicoil"`` (target ``reconstruction_rss``) or ``"singlecoil"``
            (``reconstruction_esc``).
        split: ``"train"`` (a fresh mask at every read), ``"val"`` or ``"test"`` (the mask of a
            volume seeded with ``tuple(map(ord, fname))``, fastMRI's). ``"test"`` alone accepts
            files without a target (items then have no ``target``/``max_value``).
        mask_type, center_fractions, accelerations, allow_any_combination: the mask function,
            :func:`~deepinv_lab.systems.sampling.create_mask_for_mask_type`. Files with a stored
            ``mask`` (fastMRI test sets) use it instead.
        acquisitions: keep only volumes whose ``acquisition`` attribute is in the list (e.g.
            ``["CORPD_FBK"]``); None keeps all.
        sample_rate: keep this fraction of the slices, ``round(rate * slices)``.
        volume_sample_rate: keep this fraction of the volumes (all their slices).
        train_size: keep exactly this many slices or volumes (``train_size_unit``); an error
            names both numbers if fewer are available.
        train_size_unit: ``"slices"`` or ``"volumes"``.
        seed: seeds which slices/volumes the three options above keep: the first ones of a
            permutation seeded by ``seed``, so subsets are reproducible and nested (a larger
            ``train_size`` contains the smaller). At most one of the three may be set.
        crop_size: center-crop targets to ``(h, w)``; None keeps the stored ``(rh, rw)``.
        use_dataset_cache: cache the index (header, shapes, attributes of every file) in
            ``cache_file``; entries are invalidated when a file's mtime or size changes.
        cache_file: the cache's path; None: :func:`default_cache_file` of ``root`` (in
            ``~/.cache/deepinv_lab``, or ``$DEEPINV_LAB_CACHE_DIR``), never in the data folder.

    Items are dicts: ``y`` masked k-space complex64 ``(coils, H, W)`` (``(1, H, W)``
    singlecoil), ``mask`` float32 ``(1, 1, W)``, ``target`` float32 ``(1, rh, rw)``,
    ``max_value`` (the volume's ``max`` attribute, SSIM data range), ``num_low_frequencies``,
    ``slice_num``, ``volume_id`` (index of the file in :attr:`files`), ``fname`` (e.g.
    ``"file1000.h5"``) and ``acquisition``. Batch them with :func:`collate_fastmri`.

    Attributes:
        files: the sorted files found (before filtering); ``volume_id`` indexes it.
        volumes: their :class:`VolumeInfo`.
        samples: ``(volume_id, slice_num)`` of every item.
    """

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        challenge: str = "multicoil",
        split: str = "train",
        mask_type: str = "random",
        center_fractions: Sequence[float] = (0.08,),
        accelerations: Sequence[float] = (4,),
        allow_any_combination: bool = False,
        acquisitions: Sequence[str] | None = None,
        sample_rate: float | None = None,
        volume_sample_rate: float | None = None,
        train_size: int | None = None,
        train_size_unit: str = "slices",
        seed: int = 0,
        crop_size: Sequence[int] | None = None,
        use_dataset_cache: bool = True,
        cache_file: str | Path | None = None,
    ):
        if challenge not in CHALLENGES:
            raise UserError(f"challenge must be one of {CHALLENGES}, got {challenge!r}")
        if split not in SPLITS:
            raise UserError(f"split must be one of {SPLITS}, got {split!r}")
        if train_size_unit not in ("slices", "volumes"):
            raise UserError(
                f"train_size_unit must be 'slices' or 'volumes', got {train_size_unit!r}"
            )
        chosen = [
            name
            for name, value in (
                ("sample_rate", sample_rate),
                ("volume_sample_rate", volume_sample_rate),
                ("train_size", train_size),
            )
            if value is not None
        ]
        if len(chosen) > 1:
            raise UserError(
                f"set at most one of sample_rate, volume_sample_rate and train_size, got {chosen}"
            )
        _check_rate("sample_rate", sample_rate)
        _check_rate("volume_sample_rate", volume_sample_rate)
        if train_size is not None and (isinstance(train_size, bool) or int(train_size) < 1):
            raise UserError(f"train_size must be an integer >= 1, got {train_size!r}")
        if crop_size is not None and len(crop_size) != 2:
            raise UserError(f"crop_size must be (h, w), got {crop_size!r}")
        self.challenge = challenge
        self.split = split
        self.target_key = TARGET_KEYS[challenge]
        self.seed = int(seed)
        mask_func = create_mask_for_mask_type(
            mask_type, center_fractions, accelerations, allow_any_combination
        )
        self.transform = FastMRISliceTransform(mask_func, crop_size)

        self.files = list_h5_files(root)
        if use_dataset_cache and cache_file is None:
            cache_file = default_cache_file(root)
        self.cache_file = Path(cache_file) if use_dataset_cache else None
        self.volumes = index_volumes(self.files, self.cache_file)
        self._check_volumes(crop_size)

        kept = list(range(len(self.volumes)))
        if acquisitions is not None:
            wanted = set(acquisitions)
            kept = [v for v in kept if self.volumes[v].acquisition in wanted]
            if not kept:
                found = sorted({info.acquisition for info in self.volumes})
                raise UserError(
                    f"acquisitions: no volume of {self._describe(root)} has an acquisition in "
                    f"{sorted(wanted)}; the acquisitions found are {found}"
                )
        self.samples: list[tuple[int, int]] = [
            (v, s) for v in kept for s in range(self.volumes[v].num_slices)
        ]
        self.samples = self._subset(
            root, kept, sample_rate, volume_sample_rate, train_size, train_size_unit
        )

    # --- construction helpers

    @staticmethod
    def _describe(root: str | Path | Sequence[str | Path]) -> str:
        return str(root) if isinstance(root, (str, Path)) else f"the {len(root)} files given"

    def _check_volumes(self, crop_size: Sequence[int] | None) -> None:
        coil_dims = 3 if self.challenge == "multicoil" else 2
        self.has_target = all(self.target_key in info.target_shapes for info in self.volumes)
        for info in self.volumes:
            if len(info.kspace_shape) != coil_dims:
                other = "singlecoil" if self.challenge == "multicoil" else "multicoil"
                raise FastMRIDataError(
                    f"{info.path}: k-space slices of shape {info.kspace_shape} are {other} data, "
                    f"but challenge={self.challenge!r}; set challenge={other!r}"
                )
            if self.split != "test":
                if self.target_key not in info.target_shapes:
                    raise FastMRIDataError(
                        f"{info.path}: no dataset {self.target_key!r} (the {self.challenge} "
                        f"target; the file has {list(info.datasets)}); test-set files have no "
                        "target: use split='test'"
                    )
                if "max" not in info.attrs:
                    raise FastMRIDataError(
                        f"{info.path}: no attribute 'max' (the SSIM data range), found "
                        f"{sorted(info.attrs)}"
                    )
            if self.has_target and crop_size is not None:
                shape = info.target_shapes[self.target_key]
                if not (crop_size[0] <= shape[0] and crop_size[1] <= shape[1]):
                    raise UserError(
                        f"crop_size {tuple(crop_size)} is larger than the target {shape} of "
                        f"{info.path}"
                    )

    def _subset(
        self,
        root: str | Path | Sequence[str | Path],
        kept: list[int],
        sample_rate: float | None,
        volume_sample_rate: float | None,
        train_size: int | None,
        unit: str,
    ) -> list[tuple[int, int]]:
        by_volume = volume_sample_rate is not None or (train_size is not None and unit == "volumes")
        available = len(kept) if by_volume else len(self.samples)
        if sample_rate is not None:
            count = round(sample_rate * available)
            what = f"sample_rate={sample_rate} of {available} slices"
        elif volume_sample_rate is not None:
            count = round(volume_sample_rate * available)
            what = f"volume_sample_rate={volume_sample_rate} of {available} volumes"
        elif train_size is not None:
            count = int(train_size)
            if count > available:
                raise UserError(
                    f"train_size={count} {unit} requested, but only {available} {unit} are "
                    f"available in {self._describe(root)} (after the acquisitions filter)"
                )
            what = ""
        else:
            return self.samples
        if count < 1:
            raise UserError(f"{what} keeps no data; use a larger rate")
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(available, generator=generator)[:count].tolist()
        if by_volume:
            volumes = {kept[i] for i in chosen}
            return [sample for sample in self.samples if sample[0] in volumes]
        return [self.samples[i] for i in sorted(chosen)]

    # --- access

    def __len__(self) -> int:
        return len(self.samples)

    def bucket_keys(self) -> list[tuple[int, ...]]:
        """One shape key per item, from the index (no file is read): ``(coils, H, W)`` of ``y``,
        followed by the target's ``(h, w)`` when items have targets. Items of one key batch."""
        keys = []
        for volume_id, _ in self.samples:
            info = self.volumes[volume_id]
            shape = info.kspace_shape if len(info.kspace_shape) == 3 else (1, *info.kspace_shape)
            if self.has_target:
                target = self.transform.crop_size or info.target_shapes[self.target_key]
                shape = (*shape, *target)
            keys.append(tuple(shape))
        return keys

    def mask_seed(self, index: int, fname: str) -> int | tuple[int, ...]:
        """The mask seed of an item: fastMRI's ``tuple(map(ord, fname))`` for val/test (fixed per
        volume); for train a fresh draw from :func:`~deepinv_lab.data.samplers.item_generator`."""
        if self.split != "train":
            return tuple(map(ord, fname))
        generator = item_generator(index)
        return int(torch.randint(0, 2**31 - 1, (), generator=generator))

    def __getitem__(self, index: int) -> dict[str, Any]:
        volume_id, slice_num = self.samples[int(index)]
        info = self.volumes[volume_id]
        fname = Path(info.path).name
        with_target = self.has_target
        try:
            with h5py.File(info.path, "r") as f:
                kspace = f["kspace"][slice_num]
                target = f[self.target_key][slice_num] if with_target else None
                stored_mask = f["mask"][()] if info.has_mask else None
        except Exception as error:
            raise FastMRIDataError(
                f"{info.path}, slice {slice_num}: reading failed ({type(error).__name__}: "
                f"{error}); the file changed or was corrupted after it was indexed -- "
                "re-download it or remove it from the data"
            ) from error
        item = self.transform(kspace, target, stored_mask, info, self.mask_seed(index, fname))
        if with_target:
            item["max_value"] = torch.tensor(float(info.attrs["max"]), dtype=torch.float32)
        # The size reconstructions are cropped to when there is no target (fastMRI test sets):
        # the crop size, else the header's reconstruction matrix (within the k-space matrix).
        if "target" in item:
            crop = tuple(item["target"].shape[-2:])
        elif self.transform.crop_size is not None:
            crop = self.transform.crop_size
        else:
            height, width = item["y"].shape[-2:]
            crop = (min(info.recon_size[0], height), min(info.recon_size[1], width))
        item["crop_size"] = torch.tensor(crop)
        item.update(
            slice_num=torch.tensor(slice_num),
            volume_id=torch.tensor(volume_id),
            fname=fname,
            acquisition=info.acquisition,
        )
        return item


# --- batching --------------------------------------------------------------------------------


def collate_fastmri(samples: Sequence[dict], challenge: str | None = None) -> dict[str, Any]:
    """Stack fastMRI items (strings become lists) and add ``"system"``.

    The System is :class:`~deepinv_lab.systems.mri.MultiCoilFourier` of the masks
    ``(B, 1, 1, W)`` for multicoil data and :class:`~deepinv_lab.systems.mri.SingleCoilMRI` for
    singlecoil; ``challenge`` None infers it from the coil count (1: singlecoil; both Systems
    are the same operator then).

    Raises:
        ValueError: items of different shapes, naming them (batch by
            :meth:`FastMRISliceDataset.bucket_keys` to avoid it).
    """
    if challenge is not None and challenge not in CHALLENGES:
        raise UserError(f"challenge must be one of {CHALLENGES}, got {challenge!r}")
    for key in ("y", "target"):
        shapes = {tuple(s[key].shape) for s in samples if key in s}
        if len(shapes) > 1:
            raise ValueError(
                f"collate_fastmri: the items of one batch must share the {key!r} shape, got "
                f"{sorted(shapes)}; use batch_size 1 or a bucketing sampler "
                "(FastMRISliceDataset.bucket_keys)"
            )
    batch = default_collate(list(samples))
    if challenge is None:
        challenge = "singlecoil" if batch["y"].shape[1] == 1 else "multicoil"
    system = MultiCoilFourier if challenge == "multicoil" else SingleCoilMRI
    batch["system"] = system(batch["mask"])
    return batch
