"""Inference on the user's own files: ``deepinv-lab reconstruct`` (:mod:`.command`), the
checkpoint's Recon and settings (:mod:`.setup`), the inputs (:mod:`.inputs`) and the
slice-by-slice (:mod:`.raw`) and image (:mod:`.images`) reconstructions."""
