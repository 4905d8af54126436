"""A SLURM job-array script for a grid: one array task per point, each running
``deepinv-lab grid ... --index $SLURM_ARRAY_TASK_ID``.

Tasks are requeueable: a preempted task starts again and its run resumes from its newest
checkpoint; a task whose run completed returns at once.
"""

from __future__ import annotations

import shlex
from pathlib import Path

#: sbatch options every script gets unless the user gives the same option
DEFAULT_OPTIONS = ("--gres=gpu:1", "--cpus-per-task=8", "--requeue", "--open-mode=append")


def slurm_script(
    job_name: str,
    numbers: list[int],
    command: list[str],
    out: Path,
    workdir: Path,
    options: list[str] = (),
) -> str:
    """The text of the sbatch script.

    Args:
        job_name: SLURM's ``--job-name``.
        numbers: the points' numbers (the array's task ids).
        command: the grid command without ``--index`` (the task id is appended).
        out: the grid's directory; task output goes to ``out/slurm/``, which must exist before
            the job starts (SLURM opens the output file before the script runs).
        workdir: where the tasks run (relative paths of the configs resolve from there).
        options: extra sbatch options (``--partition=gpu``, ``--time=24:00:00``); one given here
            replaces a default of the same name (``--gres=gpu:a100:1``).
    """
    from deepinv_lab.grid.spec import number_ranges

    given = {option.split("=", 1)[0] for option in options}
    defaults = [o for o in DEFAULT_OPTIONS if o.split("=", 1)[0] not in given]
    header = [
        f"--job-name={job_name}",
        f"--array={number_ranges(sorted(numbers))}",
        f"--output={out / 'slurm' / '%x-%A_%a.out'}",
        f"--chdir={workdir}",
        *defaults,
        *options,
    ]
    lines = ["#!/bin/bash", *(f"#SBATCH {option}" for option in header), ""]
    lines += [
        "# One grid point per array task; resubmitting skips completed points.",
        "srun " + shlex.join(command) + ' --index "$SLURM_ARRAY_TASK_ID"',
        "",
    ]
    return "\n".join(lines)
