"""The index of a folder (or list) of fastMRI files: the files, their
:class:`~deepinv_lab.data.fastmri.volumes.VolumeInfo`, and the JSON cache that spares re-reading
every header (outside the data, keyed by path, invalidated by modification time and size).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepinv_lab.data.fastmri.layout import FastMRIDataError
from deepinv_lab.data.fastmri.volumes import VolumeInfo, read_volume_info
from deepinv_lab.files import write_json_atomic

#: Bumped when :class:`~deepinv_lab.data.fastmri.volumes.VolumeInfo` changes, which invalidates
#: every cached index.
INDEX_VERSION = 1


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
    """:func:`~deepinv_lab.data.fastmri.volumes.read_volume_info` of every file, through the
    cache ``cache_file`` (None: no cache).

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
