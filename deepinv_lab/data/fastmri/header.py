"""The ISMRMRD XML header of a fastMRI file: the geometry fastMRI reads from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepinv_lab.data.fastmri.layout import FastMRIDataError

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"


def _header_int(root: ET.Element, path: Sequence[str], source: str) -> int:
    """The integer text of the first element at ``path`` (each step a descendant, as fastMRI's
    ``et_query``) in the ISMRMRD namespace."""
    query = "." + "".join(f"//{{{ISMRMRD_NAMESPACE}}}{name}" for name in path)
    element = root.find(query)
    if element is None or element.text is None:
        raise FastMRIDataError(
            f"{source}: the ISMRMRD header has no element {'/'.join(path)} (namespace "
            f"{ISMRMRD_NAMESPACE}); the header is incomplete"
        )
    try:
        return int(element.text.strip())
    except ValueError:
        raise FastMRIDataError(
            f"{source}: the ISMRMRD header element {'/'.join(path)} is {element.text!r}, "
            "not an integer"
        ) from None


def parse_ismrmrd_header(header: bytes | str, source: str = "ismrmrd_header") -> dict[str, Any]:
    """The geometry fastMRI reads from an ISMRMRD XML header.

    Args:
        header: the XML, as stored in a file's ``ismrmrd_header`` dataset.
        source: what to name in error messages (the file).

    Returns:
        ``encoding_size`` and ``recon_size`` (the encoded and reconstructed matrix sizes
        ``(x, y, z)``; ``x`` is the readout ``H``, ``y`` the phase-encode ``W``), and
        ``padding_left = encoding_size[1] // 2 - center``,
        ``padding_right = padding_left + maximum + 1`` from
        ``encodingLimits/kspace_encoding_step_1``: the acquired columns are
        ``[padding_left, padding_right)``.

    Raises:
        FastMRIDataError: unparsable XML or a missing/non-integer element, naming ``source``.
    """
    if isinstance(header, np.ndarray):
        header = header.item()
    if isinstance(header, (bytes, np.bytes_)):
        header = bytes(header)
    try:
        root = ET.fromstring(header)
    except ET.ParseError as error:
        raise FastMRIDataError(f"{source}: the ISMRMRD header is not valid XML ({error})") from None
    encoded = ("encoding", "encodedSpace", "matrixSize")
    recon = ("encoding", "reconSpace", "matrixSize")
    limits = ("encoding", "encodingLimits", "kspace_encoding_step_1")
    encoding_size = tuple(_header_int(root, (*encoded, axis), source) for axis in "xyz")
    recon_size = tuple(_header_int(root, (*recon, axis), source) for axis in "xyz")
    center = _header_int(root, (*limits, "center"), source)
    maximum = _header_int(root, (*limits, "maximum"), source)
    padding_left = encoding_size[1] // 2 - center
    return {
        "encoding_size": encoding_size,
        "recon_size": recon_size,
        "padding_left": padding_left,
        "padding_right": padding_left + maximum + 1,
    }
