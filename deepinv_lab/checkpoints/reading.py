"""Reading a checkpoint file the user names, with one plain error for every way it can be
wrong: missing, a folder, not a torch file, truncated, not a dict of weights."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from deepinv_lab.errors import UserError


def read_checkpoint(path: str | Path, option: str = "--ckpt_path") -> dict[str, Any]:
    """The contents of the checkpoint ``path`` (tensors on the CPU, memory-mapped when the file
    allows it, so reading a large file to look at its config costs little).

    Accepts a Lightning checkpoint (a dict with ``state_dict``) or a plain state dict. A
    :class:`~deepinv_lab.errors.UserError` starting with ``option`` (the option that named the
    file, e.g. ``init_from``) says what is wrong with the file.
    """
    path = Path(path)
    where = f"{option}: {path}"
    if not path.exists():
        raise UserError(f"{where}: no such file")
    if not path.is_file():
        raise UserError(f"{where}: is a directory, not a checkpoint file")
    try:
        checkpoint = _load(path)
    except Exception as error:  # noqa: BLE001 - whatever torch says, the file is not usable
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        hint = (
            " (the file looks truncated: was it copied or written completely?)"
            if _truncated_zip(path)
            else ""
        )
        raise UserError(f"{where}: not a readable checkpoint{hint}: {reason[:200]}") from None
    if not isinstance(checkpoint, dict):
        raise UserError(f"{where}: not a checkpoint (it holds a {type(checkpoint).__name__})")
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{where}: not a checkpoint (no 'state_dict' of weights in it)")
    return checkpoint


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # noqa: BLE001 - a legacy or broken file: read it plainly, or say why not
        return torch.load(path, map_location="cpu", weights_only=False)


def _truncated_zip(path: Path) -> bool:
    """True for a file that starts as a zip archive (torch.save's format) but lacks the
    directory a complete archive ends with: a partial copy or an interrupted write."""
    with open(path, "rb") as file:
        starts_as_zip = file.read(4) == b"PK\x03\x04"
    return starts_as_zip and not zipfile.is_zipfile(path)
