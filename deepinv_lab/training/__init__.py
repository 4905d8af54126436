"""Training: the ReconModule (LightningModule), losses, metrics and callbacks.

Importing this package pulls in Lightning; block packages never do.
"""
