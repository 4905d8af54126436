"""Image files of users' folders: finding them, reading their headers, decoding them.

Conventions (``docs/data.md``, "Image folders"):

* **Discovery**: every file under a folder (recursively, following symbolic links) whose extension
  is one of ``IMAGE_EXTENSIONS`` (case-insensitive); hidden files and folders (names starting with
  ``"."``, e.g. macOS ``._*`` files) are skipped. Sub-folders (ImageNet's class folders) only
  organise the files. The list is sorted by relative path (POSIX form), so it is the same on every
  machine.
* **Intensities** are float32 in ``[0, 1]``: 8-bit images are divided by 255, 16-bit ones (PNG/TIFF
  modes ``I;16*``, and ``I`` as older Pillow versions open 16-bit PNGs) by 65535. Pillow reads
  16-bit *colour* PNGs as 8-bit RGB; those are therefore 8-bit here. Alpha channels are dropped,
  palette and CMYK images converted to RGB; floating-point images (mode ``F``) are refused. EXIF
  orientation is not applied (the pixels as stored).
* **Grayscale** (default): colour images are reduced to full-range ITU-R BT.601 luma in float,
  ``Y = 0.299 R + 0.587 G + 0.114 B``, as the built-in images (:mod:`deepinv_lab.data.images`);
  images are ``(1, H, W)``. With ``grayscale=False`` images are ``(3, H, W)`` RGB, grayscale files
  repeated over the three channels.

A file that cannot be identified or decoded raises a :class:`~deepinv_lab.errors.UserError`
naming it. Files are only ever read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepinv_lab.errors import UserError

#: File extensions taken as images (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

#: Pillow modes read as 16-bit (divided by 65535).
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
#: Pillow modes read as 8-bit grayscale (after conversion to ``"L"``).
_GRAY = ("1", "L", "LA", "La")
#: Pillow modes read as 8-bit RGB (after conversion to ``"RGB"``).
_COLOUR = ("P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")
SUPPORTED_MODES: tuple[str, ...] = _GRAY + _SIXTEEN_BIT + _COLOUR
#: ITU-R BT.601 luma weights of R, G, B.
LUMA_601 = (0.299, 0.587, 0.114)


def to_channels(pixels: np.ndarray, grayscale: bool) -> np.ndarray:
    """``(H, W)`` gray or ``(H, W, 3)`` RGB values in [0, 1] -> float32 ``(C, H, W)``, clipped to
    [0, 1]: BT.601 luma ``(1, H, W)`` if ``grayscale``, else RGB ``(3, H, W)`` (gray repeated)."""
    if pixels.ndim == 2:  # (H, W) grayscale
        pixels = pixels[None] if grayscale else np.repeat(pixels[None], 3, axis=0)
    else:  # (H, W, 3) RGB
        pixels = pixels.transpose(2, 0, 1)
        if grayscale:
            weights = np.asarray(LUMA_601, dtype=np.float32)[:, None, None]
            pixels = (weights * pixels).sum(0, keepdims=True)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)


def _extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extensions, str) or not extensions:
        raise UserError(f"extensions must be a non-empty list such as ['.png'], got {extensions!r}")
    return tuple("." + str(e).lower().lstrip(".") for e in extensions)


def find_images(
    root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """The image files under ``root``, recursively, sorted by relative path.

    Args:
        root: a folder.
        extensions: accepted file extensions (case-insensitive, with or without the dot).

    Returns:
        Absolute paths, sorted by their POSIX path relative to ``root``; hidden files and folders
        (names starting with ``"."``) are skipped, symbolic links followed.

    Raises:
        UserError: ``root`` is not a folder, or holds no image (the message names the folder and
            the extensions).
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"image folder {str(root)!r} does not exist or is not a folder")
    base = base.resolve()
    accepted = _extensions(extensions)
    found: list[tuple[str, Path]] = []
    for folder, subfolders, names in os.walk(base, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in accepted:
                continue
            path = Path(folder) / name
            found.append((path.relative_to(base).as_posix(), path))
    if not found:
        raise UserError(
            f"no images found under {str(base)!r} (searched recursively for the extensions "
            f"{', '.join(accepted)}, case-insensitive)"
        )
    found.sort(key=lambda entry: entry[0])
    return [path for _, path in found]


def image_header(path: str | os.PathLike) -> tuple[int, int, str]:
    """``(height, width, mode)`` of an image file, from its header only (nothing decoded).

    Raises:
        UserError: the file is not an image Pillow can identify, or its mode is unsupported;
            the message names the file.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, struct.error...)
        raise UserError(f"cannot read the image file {str(path)!r}: {error}") from error
    if mode not in SUPPORTED_MODES:
        raise UserError(
            f"image file {str(path)!r} has the unsupported pixel mode {mode!r} (supported: 8-bit "
            "grayscale or colour, 16-bit grayscale; not floating point)"
        )
    return height, width, mode


def read_image(path: str | os.PathLike, grayscale: bool = True) -> np.ndarray:
    """One image file as a float32 ``(C, H, W)`` array in ``[0, 1]``.

    ``C`` is 1 (BT.601 luma of colour images) if ``grayscale``, else 3 (grayscale repeated).
    8-bit images are divided by 255, 16-bit grayscale ones by 65535 (module docstring).

    Raises:
        UserError: the file cannot be decoded (truncated, corrupt, not an image) or has an
            unsupported mode; the message names the file.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in SUPPORTED_MODES:
                raise UserError(f"unsupported pixel mode {mode!r}")
            image.load()
            if mode in _SIXTEEN_BIT:
                pixels = np.asarray(image).astype(np.float32)
                low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0, 0)
                if low < 0 or high > 65535:
                    raise UserError(
                        f"mode {mode!r} values in [{low:g}, {high:g}] are not 16-bit (0..65535)"
                    )
                pixels /= 65535.0
            elif mode in _GRAY:
                pixels = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
            else:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except Exception as error:  # PIL raises many types; always name the file
        raise UserError(f"cannot read the image file {str(path)!r}: {error}") from error
    return to_channels(pixels, grayscale)
