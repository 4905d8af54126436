"""Subclassing a block: an E2E-VarNet whose cascades share one regulariser.

Run it from a config by naming the class (this folder must be importable):

    PYTHONPATH=examples deepinv-lab fit --config configs/varnet.json \
        --model.init_args.recon.class_path shared_weight_varnet.SharedWeightVarNet

or from Python:

    PYTHONPATH=examples python examples/shared_weight_varnet.py
"""

from __future__ import annotations

import torch

from deepinv_lab.recons import VarNet


class SharedWeightVarNet(VarNet):
    """VarNet with one NormUnet reused by every cascade: the unrolling depth of ``num_cascades``
    with the regulariser parameters of one cascade (each cascade keeps its own ``dc_weight``)."""

    def __init__(self, num_cascades: int = 4, **kwargs):
        super().__init__(num_cascades=num_cascades, **kwargs)
        shared = self.cascades[0].model
        for cascade in self.cascades[1:]:
            cascade.model = shared


if __name__ == "__main__":
    from deepinv_lab.data import SimulatedBrainMRIDataModule

    # the first validation slice of the built-in brain MRI, measured, as a batch of one
    batch = SimulatedBrainMRIDataModule(downsample=4, num_coils=4).example_batch()
    shared = SharedWeightVarNet(
        num_cascades=4, chans=8, num_pool_layers=2, sens_chans=4, sens_num_pool_layers=2
    )
    plain = VarNet(num_cascades=4, chans=8, num_pool_layers=2, sens_chans=4, sens_num_pool_layers=2)
    with torch.no_grad():
        image = shared(batch["y"], batch["system"])
    count = sum(p.numel() for p in shared.parameters())
    print(
        f"reconstruction {tuple(image.shape)}; parameters: shared {count:,} "
        f"vs plain {sum(p.numel() for p in plain.parameters()):,}"
    )
