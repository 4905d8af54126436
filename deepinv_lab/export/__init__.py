"""Exporting a trained Recon's System-independent part: ``deepinv-lab export`` (:mod:`.command`),
the tensor-only wrappers that build the System inside ``forward`` (:mod:`.wrappers`) and the file
formats, ``torch.export`` (``.pt2``) and ONNX (:mod:`.formats`)."""

from deepinv_lab.export.formats import (
    FORMATS,
    ExportResult,
    OnnxRecon,
    export_recon,
    load_exported,
    relative_difference,
)
from deepinv_lab.export.wrappers import ImageRecon, KSpaceRecon, TensorRecon, exportable

__all__ = [
    "FORMATS",
    "ExportResult",
    "ImageRecon",
    "KSpaceRecon",
    "OnnxRecon",
    "TensorRecon",
    "export_recon",
    "exportable",
    "load_exported",
    "relative_difference",
]
