"""Where the slices of a reconstructed 2D multi-slice stack lie in the scanner.

ISMRMRD and DICOM give positions and directions in the patient coordinate system LPS (x to the
patient's Left, y to Posterior, z to Superior, in mm); NIfTI's affine is in RAS (x to the Right,
y to Anterior), the same axes with the first two negated.

A reconstructed stack is an array ``(S, H, W)``: ``H`` runs along the readout direction
(``read_dir``), ``W`` along the phase-encode direction (``phase_dir``) and ``S`` through the
slices. The image of a centred inverse FFT has the centre of its field of view at pixel index
``N // 2`` along each axis; a centre crop keeps it there, so :meth:`SliceGeometry.affine` holds for
any centre crop of the encoded image.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np

#: LPS -> RAS: negate x and y
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _vector(values: Sequence[float], name: str, size: int = 3) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be {size} finite numbers, got {values!r}")
    return array


@dataclasses.dataclass(frozen=True)
class SliceGeometry:
    """The geometry of a stack ``(S, H, W)`` of 2D slices (module docstring).

    Attributes:
        positions: ``(S, 3)`` the centre of each slice's field of view, mm, LPS, in the order
            of the stack.
        read_dir: ``(3,)`` the unit direction of increasing ``H`` index (LPS).
        phase_dir: ``(3,)`` the unit direction of increasing ``W`` index.
        slice_dir: ``(3,)`` the unit slice normal.
        pixel_spacing: ``(mm along H, mm along W)``.
        slice_thickness: mm.
    """

    positions: np.ndarray
    read_dir: np.ndarray
    phase_dir: np.ndarray
    slice_dir: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_thickness: float

    def __post_init__(self) -> None:
        positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        object.__setattr__(self, "positions", positions)
        for name in ("read_dir", "phase_dir", "slice_dir"):
            object.__setattr__(self, name, _vector(getattr(self, name), name))
        spacing = tuple(float(s) for s in self.pixel_spacing)
        if len(spacing) != 2 or not all(s > 0 for s in spacing):
            raise ValueError(f"pixel_spacing must be two positive numbers, got {spacing}")
        object.__setattr__(self, "pixel_spacing", spacing)
        object.__setattr__(self, "slice_thickness", float(self.slice_thickness))

    @property
    def num_slices(self) -> int:
        return int(self.positions.shape[0])

    def slice_step(self) -> np.ndarray:
        """The vector (mm, LPS) from one slice's centre to the next: the mean step between the
        first and the last slice, or ``slice_dir * slice_thickness`` for a single slice."""
        if self.num_slices > 1:
            return (self.positions[-1] - self.positions[0]) / (self.num_slices - 1)
        return self.slice_dir * self.slice_thickness

    def corner(self, index: int, shape: Sequence[int]) -> np.ndarray:
        """The centre (mm, LPS) of pixel ``(0, 0)`` of slice ``index`` of images ``(H, W)``."""
        height, width = (int(n) for n in shape[-2:])
        dx, dy = self.pixel_spacing
        return (
            self.positions[index]
            - self.read_dir * dx * (height // 2)
            - self.phase_dir * dy * (width // 2)
        )

    def affine(self, shape: Sequence[int], ras: bool = True) -> np.ndarray:
        """The 4x4 map from voxel indices ``(h, w, s, 1)`` of images ``(H, W)`` (``shape``'s last
        two numbers) to mm: RAS (NIfTI) when ``ras``, else LPS."""
        dx, dy = self.pixel_spacing
        affine = np.eye(4)
        affine[:3, 0] = self.read_dir * dx
        affine[:3, 1] = self.phase_dir * dy
        affine[:3, 2] = self.slice_step()
        affine[:3, 3] = self.corner(0, shape)
        return LPS_TO_RAS @ affine if ras else affine

    def select(self, indices: Sequence[int]) -> SliceGeometry:
        """The geometry of the slices ``indices`` (in that order)."""
        return dataclasses.replace(self, positions=self.positions[list(indices)])

    def to_json(self) -> str:
        return json.dumps(
            {
                "positions": self.positions.tolist(),
                "read_dir": self.read_dir.tolist(),
                "phase_dir": self.phase_dir.tolist(),
                "slice_dir": self.slice_dir.tolist(),
                "pixel_spacing": list(self.pixel_spacing),
                "slice_thickness": self.slice_thickness,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SliceGeometry:
        return cls(**json.loads(text))
