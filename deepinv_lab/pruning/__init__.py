"""Structured pruning of the networks inside Recons (:mod:`.structured`); a pruned
architecture's record in checkpoints lives in :mod:`deepinv_lab.training.structure`."""
