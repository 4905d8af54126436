"""Cartesian MRI System blocks, assembled from primitives.

Multicoil Cartesian MRI is ``A = M F S``:

* ``S`` (:class:`CoilSensitivity`): ``(B, 1, H, W)`` image -> ``(B, coils, H, W)`` coil images,
* ``F`` (:class:`FFT2`): centered orthonormal 2D FFT of each coil image,
* ``M`` (:class:`KSpaceMask`): keeps the sampled k-space locations.

All tensors are native complex; masks are real (0/1) and broadcast against k-space, e.g.
``(B, 1, 1, W)`` for fastMRI-style column masks.

Volumes: :class:`FFT3` is the centered 3D FFT, :class:`CoilSensitivity` and :class:`KSpaceMask`
take volumes ``(B, coils, X, Y, Z)`` as well, and
:class:`~deepinv_lab.systems.mri3d.MultiCoilMRI3D` assembles 3D Cartesian MRI from them.
"""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional.fft import fft2c, fft3c, ifft2c, ifft3c
from deepinv_lab.systems.base import Composition, LinearSystem, real_dtype


class FFT2(LinearSystem):
    """Centered orthonormal 2D FFT over the last two dimensions; unitary, so ``A^H = A^{-1}``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fft2c(x)

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        return ifft2c(k)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        return cls(), torch.randn(batch_size, 3, 8, 7, dtype=dtype)


class FFT3(LinearSystem):
    """Centered orthonormal 3D FFT over the last three dimensions (fastMRI's conventions:
    ``fftshift(fftn(ifftshift(x), norm="ortho"))``); unitary, so ``A^H = A^{-1}``.

    Shapes: complex ``(..., X, Y, Z)`` -> the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fft3c(x)

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        return ifft3c(k)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        return cls(), torch.randn(batch_size, 2, 6, 5, 4, dtype=dtype)


class KSpaceMask(LinearSystem):
    """``M k = mask * k``: keeps sampled k-space locations (self-adjoint, idempotent for 0/1 masks).

    Args:
        mask: real tensor broadcastable against k-space, e.g. ``(B, 1, 1, W)`` or ``(B, 1, H, W)``.
        num_low_frequencies: the width of the fully sampled centre (the ACS/calibration
            columns) that the acquisition reserved, an int or a per-sample ``(B,)`` tensor, as
            fastMRI's mask functions and files give it; ``None`` when unknown (VarNet then
            derives it from the mask). Side information for Recons, not part of ``M``.
    """

    def __init__(self, mask: torch.Tensor, num_low_frequencies: int | torch.Tensor | None = None):
        super().__init__()
        if mask.is_complex():
            raise UserError(f"KSpaceMask expects a real 0/1 mask, got dtype {mask.dtype}")
        self.register_buffer("mask", mask)
        self.register_buffer(
            "num_low_frequencies", _acs_widths(num_low_frequencies, mask.shape[-1])
        )

    def with_mask(self, mask: torch.Tensor) -> KSpaceMask:
        """The same sampling with another mask (self-supervised splits); the ACS width is kept."""
        return type(self)(mask, self.num_low_frequencies)

    def _check(self, k: torch.Tensor) -> None:
        try:
            broadcast = torch.broadcast_shapes(self.mask.shape, k.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != k.shape:
            raise ValueError(
                f"KSpaceMask: mask of shape {tuple(self.mask.shape)} does not broadcast against "
                f"k-space of shape {tuple(k.shape)}"
            )

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        self._check(k)
        return k * self.mask

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        return self.forward(k)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        mask = (torch.rand(batch_size, 1, 1, 7) > 0.5).to(real_dtype(dtype))
        return cls(mask), torch.randn(batch_size, 3, 8, 7, dtype=dtype)

    @classmethod
    def example_3d(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        """A ky-kz mask ``(B, 1, 1, 6, 5)`` on volume k-space ``(B, 3, 4, 6, 5)``."""
        mask = (torch.rand(batch_size, 1, 1, 6, 5) > 0.5).to(real_dtype(dtype))
        return cls(mask), torch.randn(batch_size, 3, 4, 6, 5, dtype=dtype)


def _acs_widths(widths: int | torch.Tensor | None, width: int) -> torch.Tensor | None:
    """``num_low_frequencies`` as a ``(B,)`` (or ``(1,)``) long tensor, checked against the
    k-space width; ``None`` stays ``None``."""
    if widths is None:
        return None
    if isinstance(widths, torch.Tensor) and (widths.is_complex() or widths.is_floating_point()):
        if not torch.equal(widths, widths.round()):
            raise UserError(f"num_low_frequencies must be integers, got {widths.tolist()}")
    given = torch.as_tensor(widths).to(torch.long).reshape(-1)
    if given.numel() == 0 or bool((given < 0).any()) or bool((given > width).any()):
        raise UserError(
            f"num_low_frequencies must lie in [0, {width}] (the k-space width), got "
            f"{given.tolist()}"
        )
    return given


class CoilSensitivity(LinearSystem):
    """``S x = coil_maps * x``: expands one image into per-coil images.

    ``S^H`` combines coil images with the conjugate maps: ``sum_c conj(s_c) y_c``.

    Args:
        coil_maps: complex ``(B, coils, H, W)`` sensitivity maps, or ``(B, coils, X, Y, Z)`` for
            volumes (the number of spatial dimensions follows from the maps).
    """

    def __init__(self, coil_maps: torch.Tensor):
        super().__init__()
        if coil_maps.ndim not in (4, 5) or not coil_maps.is_complex():
            raise UserError(
                "CoilSensitivity expects complex coil maps of shape (B, coils, H, W) or "
                f"(B, coils, X, Y, Z), got dtype {coil_maps.dtype} with shape "
                f"{tuple(coil_maps.shape)}"
            )
        self.register_buffer("coil_maps", coil_maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.coil_maps
        spatial = maps.shape[2:]
        if not x.is_complex():
            raise ValueError(
                f"CoilSensitivity expects a complex image (B, 1, {', '.join(map(str, spatial))})"
                f", got dtype {x.dtype}; make it complex first, e.g. x.to(torch.complex64)"
            )
        if (
            x.ndim != maps.ndim
            or x.shape[1] != 1
            or x.shape[2:] != spatial
            or (x.shape[0] not in (1, maps.shape[0]) and maps.shape[0] != 1)
        ):
            raise ValueError(
                f"CoilSensitivity: image of shape {tuple(x.shape)} does not fit coil maps of shape "
                f"{tuple(maps.shape)}; expected (B, 1, {', '.join(map(str, spatial))})"
            )
        return maps * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        maps = self.coil_maps
        if y.ndim != maps.ndim or y.shape[1:] != maps.shape[1:]:
            raise ValueError(
                f"CoilSensitivity: coil images of shape {tuple(y.shape)} do not fit coil maps of "
                f"shape {tuple(maps.shape)}"
            )
        return (maps.conj() * y).sum(dim=1, keepdim=True)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        maps = torch.randn(batch_size, 3, 8, 7, dtype=dtype)
        return cls(maps), torch.randn(batch_size, 1, 8, 7, dtype=dtype)

    @classmethod
    def example_3d(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        """A volume instance: maps ``(B, 3, 4, 6, 5)``, input ``(B, 1, 4, 6, 5)``."""
        maps = torch.randn(batch_size, 3, 4, 6, 5, dtype=dtype)
        return cls(maps), torch.randn(batch_size, 1, 4, 6, 5, dtype=dtype)


class MaskedComposition(Composition):
    """A Composition whose outermost System is a :class:`KSpaceMask`: the Cartesian MRI Systems.
    It exposes the sampling (``mask``, ``num_low_frequencies``, ``sampling``) of that mask."""

    @property
    def mask(self) -> torch.Tensor:
        return self.systems[0].mask

    @property
    def num_low_frequencies(self) -> torch.Tensor | None:
        return self.systems[0].num_low_frequencies

    @property
    def sampling(self) -> KSpaceMask:
        return self.systems[0]


class MultiCoilMRI(MaskedComposition):
    """Multicoil Cartesian MRI ``A = M F S`` (mask after FFT after coil sensitivities).

    Args:
        coil_maps: complex ``(B, coils, H, W)`` sensitivity maps.
        mask: real mask broadcastable against ``(B, coils, H, W)`` k-space, e.g. ``(B, 1, 1, W)``.
        num_low_frequencies: ACS width of the acquisition, see :class:`KSpaceMask`.

    Shapes: ``forward``: ``(B, 1, H, W)`` complex image -> ``(B, coils, H, W)`` masked k-space;
    ``adjoint``: the reverse (SENSE coil combination of the zero-filled coil images).
    """

    def __init__(
        self,
        coil_maps: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor | None = None,
    ):
        if coil_maps.ndim == 5:
            raise UserError(
                f"MultiCoilMRI: coil maps of shape {tuple(coil_maps.shape)} are volumes; use "
                "deepinv_lab.systems.mri3d.MultiCoilMRI3D for (B, coils, X, Y, Z)"
            )
        coils = CoilSensitivity(coil_maps)
        sampling = KSpaceMask(mask, num_low_frequencies)
        kspace_shape = coil_maps.shape
        try:
            fits = torch.broadcast_shapes(mask.shape, kspace_shape) == kspace_shape
        except RuntimeError:
            fits = False
        if not fits:
            raise UserError(
                f"MultiCoilMRI: mask of shape {tuple(mask.shape)} does not broadcast against "
                f"k-space of shape {tuple(kspace_shape)} (the coil maps' shape)"
            )
        super().__init__([sampling, FFT2(), coils])

    @property
    def coil_maps(self) -> torch.Tensor:
        return self.systems[2].coil_maps

    def with_mask(self, mask: torch.Tensor) -> MultiCoilMRI:
        """The same coil maps with another sampling mask (self-supervised splits); the ACS
        width is kept."""
        return MultiCoilMRI(self.coil_maps, mask, self.num_low_frequencies)

    @property
    def coil_sensitivity(self) -> CoilSensitivity:
        return self.systems[2]

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x = S^H F^H M F S x``, computed with as few passes as the maths allows
        (:func:`masked_sense_normal`: for a column mask ``(B, 1, 1, W)``, 1D FFTs along ``W``)."""
        maps = self.coil_maps
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[-2:] != maps.shape[-2:] or not x.is_complex():
            return super().normal(x)  # the primitives raise their errors
        return masked_sense_normal(maps, self.mask, x)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        maps = torch.randn(batch_size, 4, 8, 7, dtype=dtype)
        # soft weights with zeros: A^H A must carry mask^2, which a 0/1 mask would not test
        sampled = torch.rand(batch_size, 1, 1, 7) > 0.5
        mask = (sampled * (0.25 + torch.rand(batch_size, 1, 1, 7))).to(real_dtype(dtype))
        return cls(maps, mask), torch.randn(batch_size, 1, 8, 7, dtype=dtype)


def masked_sense_normal(maps: torch.Tensor, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``S^H F^H M^H M F S x`` for centered FFTs over the spatial dimensions of ``maps``
    (``(B, coils, *spatial)``, 2 or 3 spatial dimensions) and a mask broadcastable against them.

    ``F^H M F`` is a circular convolution, so it commutes with the cyclic shifts of the centered
    FFT: ``ifftc(M fftc(z)) = ifft(ifftshift(M) fft(z))`` with plain FFTs and only the (small)
    mask shifted. And it only needs transforms along the axes the mask varies on: the transforms
    along the others cancel (for a column mask ``(B, 1, 1, W)`` 1D FFTs along ``W`` remain; for a
    ky-kz mask ``(B, 1, 1, Y, Z)`` of a volume, 2D FFTs along ``Y, Z``).
    """
    weights = mask.square()  # M^H M: the mask itself only for 0/1 masks
    spatial = range(-(maps.ndim - 2), 0)
    dims = tuple(d for d in spatial if weights.shape[d] != 1)
    coil_images = maps * x
    if not dims:  # one weight per sample: no transform at all
        return torch.linalg.vecdot(maps, coil_images.mul_(weights), dim=1).unsqueeze(1)
    kspace = torch.fft.fftn(coil_images, dim=dims, norm="ortho")
    # in place on a fresh tensor: fft's backward needs none of it
    kspace.mul_(torch.fft.ifftshift(weights, dim=dims))
    coil_images = torch.fft.ifftn(kspace, dim=dims, norm="ortho")
    return torch.linalg.vecdot(maps, coil_images, dim=1).unsqueeze(1)


class MultiCoilFourier(MaskedComposition):
    """Coil-by-coil Cartesian MRI without coil maps, ``A = M F``, for raw multicoil k-space.

    fastMRI files hold coil k-space but no sensitivity maps, so the System of their batches acts
    on coil images: each coil is Fourier transformed and masked independently. Reconstructions
    that need no maps use it (VarNet reads ``.mask`` and estimates maps itself;
    ``ZeroFilled(combine="rss")`` combines the coil images).

    Args:
        mask: real mask broadcastable against ``(B, coils, H, W)`` k-space, e.g. ``(B, 1, 1, W)``
            (fastMRI column masks) or ``(B, 1, H, W)``; a leading 1 broadcasts over the batch.
        num_low_frequencies: ACS width of the acquisition, see :class:`KSpaceMask`.

    Shapes: ``forward``: ``(B, coils, H, W)`` complex coil images -> ``(B, coils, H, W)`` masked
    k-space; ``adjoint``: the reverse (the zero-filled coil images).
    """

    def __init__(self, mask: torch.Tensor, num_low_frequencies: int | torch.Tensor | None = None):
        if mask.is_complex() or mask.ndim != 4:
            raise UserError(
                f"{type(self).__name__} expects a real mask of shape (B, 1, 1, W) or "
                f"(B, 1, H, W), got dtype {mask.dtype} with shape {tuple(mask.shape)}"
            )
        super().__init__([KSpaceMask(mask, num_low_frequencies), FFT2()])

    def with_mask(self, mask: torch.Tensor) -> MultiCoilFourier:
        """The same System with another sampling mask (self-supervised splits); the ACS width
        is kept."""
        return type(self)(mask, self.num_low_frequencies)

    def _check(self, t: torch.Tensor, what: str) -> None:
        if not t.is_complex() or t.ndim != 4:
            raise ValueError(
                f"MultiCoilFourier: expected complex {what} of shape (B, coils, H, W), got dtype "
                f"{t.dtype} with shape {tuple(t.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "image")
        return super().forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self._check(y, "k-space")
        return super().adjoint(y)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        mask = (torch.rand(batch_size, 1, 1, 7) > 0.5).to(real_dtype(dtype))
        return cls(mask), torch.randn(batch_size, 3, 8, 7, dtype=dtype)


class SingleCoilMRI(MultiCoilFourier):
    """Single-coil Cartesian MRI ``A = M F`` (mask after the centered orthonormal FFT).

    Args:
        mask: real 0/1 mask of shape ``(B, 1, H, W)`` (2D patterns, e.g.
            :func:`~deepinv_lab.systems.sampling.poisson_disc_mask`) or ``(B, 1, 1, W)``
            (fastMRI column masks); a leading 1 broadcasts over the batch.
        num_low_frequencies: ACS width of the acquisition, see :class:`KSpaceMask`.

    Shapes: ``forward``: ``(B, 1, H, W)`` complex image -> ``(B, 1, H, W)`` masked k-space;
    ``adjoint``: the reverse (the zero-filled image). ``A^H A = F^H M F`` is a projection for a
    0/1 mask, and the identity when every location is sampled.
    """

    def __init__(self, mask: torch.Tensor, num_low_frequencies: int | torch.Tensor | None = None):
        if mask.is_complex() or mask.ndim != 4 or mask.shape[1] != 1:
            raise UserError(
                "SingleCoilMRI expects a real mask of shape (B, 1, H, W) or (B, 1, 1, W), got "
                f"dtype {mask.dtype} with shape {tuple(mask.shape)}"
            )
        super().__init__(mask, num_low_frequencies)

    def _check(self, t: torch.Tensor, what: str) -> None:
        mask_shape = tuple(self.mask.shape)
        if not t.is_complex():
            raise ValueError(
                f"SingleCoilMRI: expected a complex {what} of shape (B, 1, H, W), got dtype "
                f"{t.dtype} with shape {tuple(t.shape)}; convert 2-channel real data with "
                "deepinv_lab.functional.channels_to_complex first"
            )
        try:
            fits = t.ndim == 4 and t.shape[1] == 1
            fits = fits and torch.broadcast_shapes(mask_shape, t.shape) == t.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"SingleCoilMRI: {what} of shape {tuple(t.shape)} does not fit the mask of shape "
                f"{mask_shape}; expected (B, 1, H, W) that the mask broadcasts against"
            )

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        mask = (torch.rand(batch_size, 1, 8, 7) > 0.5).to(real_dtype(dtype))
        return cls(mask), torch.randn(batch_size, 1, 8, 7, dtype=dtype)
