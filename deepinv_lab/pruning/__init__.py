"""Structured pruning of the networks inside Recons and what follows it: channel pruning
(:mod:`.structured`), measurements and the report
(:mod:`.measure`, :mod:`.report`), the ``deepinv-lab prune`` command (:mod:`.command`,
:mod:`.options`). Fine-tuning uses the training objectives of
:mod:`deepinv_lab.training.objectives`; a pruned architecture's record in checkpoints lives in
:mod:`deepinv_lab.checkpoints.structure`; see docs/pruning.md."""
