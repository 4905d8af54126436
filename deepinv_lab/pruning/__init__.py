"""Structured pruning of the networks inside Recons and what follows it: channel pruning
(:mod:`.structured`), fine-tuning strategies (:mod:`.finetune`), measurements and the report
(:mod:`.measure`, :mod:`.report`), the ``deepinv-lab prune`` command (:mod:`.command`,
:mod:`.options`). A pruned architecture's record in checkpoints lives in
:mod:`deepinv_lab.checkpoints.structure`; see docs/pruning.md."""
