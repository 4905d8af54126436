"""Baselines: the untrained reference Recons a ReconModule evaluates beside its Recon, their
names, and the names of the metrics they are logged under.

Light on purpose (no torch, no Lightning at import): ``deepinv-lab collect`` sorts its columns
with :func:`is_baseline_metric`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from deepinv_lab.errors import UserError

if TYPE_CHECKING:
    from deepinv_lab.recons.base import Recon

#: The per-volume image metrics logged for the Recon (``val/<metric>``) and for every baseline
#: (``val/<name>_<metric>``).
METRIC_NAMES = ("ssim", "psnr", "nmse")
#: The name of a baseline given alone (not in a mapping): logged as ``val/baseline_*``.
SINGLE = "baseline"
#: Names a baseline may not take: its metrics would read as the Recon's own.
RESERVED = (*METRIC_NAMES, "loss")

_BASELINE_METRIC = re.compile(
    rf"^(?:val|test)/\w+_(?:{'|'.join(METRIC_NAMES)})(?:_final|_best)?$", re.ASCII
)


def baselines_by_name(baseline: Recon | Mapping[str, Recon] | None) -> dict[str, Recon]:
    """The baselines of ``ReconModule(baseline=...)`` by name: ``{}`` for ``None``,
    ``{"baseline": recon}`` for one Recon, the mapping itself (in its order) once every name is
    checked: a Python identifier, none of :data:`RESERVED`. A bad name or value raises one
    UserError naming the key ``model.baseline``."""
    if baseline is None:
        return {}
    if not isinstance(baseline, Mapping):
        _require_module(baseline, "model.baseline")
        return {SINGLE: baseline}
    for name, recon in baseline.items():
        if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
            raise UserError(
                f"model.baseline: the baseline name {name!r} is not an identifier (letters, "
                "digits and underscores, not starting with a digit): it becomes the prefix of "
                "its logged metrics, val/<name>_ssim"
            )
        if name in RESERVED:
            raise UserError(
                f"model.baseline: the baseline name {name!r} is reserved: its metrics "
                f"val/{name}_* would read as the Recon's own; not one of {list(RESERVED)}"
            )
        _require_module(recon, f"model.baseline.{name}")
    return dict(baseline)


def is_baseline_metric(tag: str) -> bool:
    """Whether a logged tag or a ``deepinv-lab collect`` column (``val/<name>_ssim``,
    ``val/<name>_psnr_best``, ``test/<name>_nmse``) is a baseline's metric rather than the
    Recon's (``val/ssim``), its loss or its diagnostics (``val/<block>/<quantity>``)."""
    return _BASELINE_METRIC.match(tag) is not None


def _require_module(recon: object, key: str) -> None:
    from torch import nn

    if not isinstance(recon, nn.Module):
        raise UserError(
            f"{key}: a baseline must be a Recon (a class_path), got {type(recon).__name__}"
        )
