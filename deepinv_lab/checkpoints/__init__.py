"""Checkpoints: the one place that reads them, loads a Recon's weights from them (pruned
architectures included) and finds where an interrupted run resumes.

Every consumer goes through here: ``--ckpt_path`` and ``--model.init_args.init_from`` of the
CLI, ``Refinement(recon_checkpoint=...)``, ``GANModule(generator_checkpoint=...)``, the input
and the distillation teacher of ``deepinv-lab prune``, the grid's resumed and tested runs.
Plain torch, no Lightning: Recons (a lower layer than training) load weights through it too.
"""

from deepinv_lab.checkpoints.reading import read_checkpoint
from deepinv_lab.checkpoints.runs import RESUME_NAMES, resumable_runs, resume_checkpoint
from deepinv_lab.checkpoints.structure import (
    STRUCTURE_KEY,
    apply_structure,
    has_pruned_architecture,
    mark_pruned_architecture,
    structure_of,
)
from deepinv_lab.checkpoints.weights import (
    load_recon_weights,
    load_state_checked,
    recon_state,
    state_mismatch,
)

__all__ = [
    "RESUME_NAMES",
    "STRUCTURE_KEY",
    "apply_structure",
    "has_pruned_architecture",
    "load_recon_weights",
    "load_state_checked",
    "mark_pruned_architecture",
    "read_checkpoint",
    "recon_state",
    "resumable_runs",
    "resume_checkpoint",
    "state_mismatch",
    "structure_of",
]
