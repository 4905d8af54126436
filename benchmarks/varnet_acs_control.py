"""The quick VarNet config with VarNet deriving the ACS width from the mask, as fastMRI does when
it is not given: the batches' Systems are built without the dataset's ``num_low_frequencies``.
Everything else is ``deepinv-lab fit --config configs/varnet.json``; the difference between the
two runs' metrics is what passing the ACS width changes.

    OMP_NUM_THREADS=2 python benchmarks/varnet_acs_control.py --out acs_control
"""

from __future__ import annotations

import argparse
import sys

import deepinv_lab.data.collate as collate
from deepinv_lab.cli import main
from deepinv_lab.systems.mri import MultiCoilMRI


def without_acs_width(coil_maps, mask, num_low_frequencies=None) -> MultiCoilMRI:
    return MultiCoilMRI(coil_maps, mask)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="acs_control")
    options = parser.parse_args()
    collate.MultiCoilMRI = without_acs_width
    sys.exit(main(["fit", "--config", "configs/varnet.json", "--trainer.enable_progress_bar",
                   "false", "--trainer.logger.init_args.save_dir", options.out]))  # fmt: skip
