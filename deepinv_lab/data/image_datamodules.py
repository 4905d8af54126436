"""LightningDataModules over the built-in natural images (:mod:`deepinv_lab.data.images`).

``train_size`` is the number of **distinct training patches**: with it, the training set is a fixed
pool of ``train_size`` crops (positions drawn once from ``seed``, the 11 training images taken in
turn), while flips/rotations and noise are still drawn anew at every epoch. A scaling-law study in
the manner of Klug & Heckel (who vary the number of training images) varies ``train_size``: with 11
training images the number of images offers too few points, the number of patches spans orders of
magnitude (the pool of the largest sizes overlaps, as crops of few images must). Without
``train_size`` every epoch sees ``patches_per_image`` fresh random crops per image: an
effectively unlimited training set.
"""

from __future__ import annotations

from deepinv_lab.data.datamodule import TrainValDataModule, check_batch_size
from deepinv_lab.data.images import BuiltinDenoising, BuiltinSuperResolution
from deepinv_lab.data.microct import BuiltinMicroCT
from deepinv_lab.errors import UserError


class _BuiltinImageDataModule(TrainValDataModule):
    """The argument checks shared by the built-in image DataModules."""

    def _configure(
        self,
        batch_size: int,
        num_workers: int,
        train_size: int | None,
        patches_per_image: int | None,
    ) -> None:
        """Check the loader arguments and keep them."""
        self._check(batch_size, train_size, patches_per_image)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_size = train_size

    def _check(
        self, batch_size: int, train_size: int | None, patches_per_image: int | None
    ) -> None:
        check_batch_size(batch_size)
        if train_size is not None:
            if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1:
                raise UserError(
                    f"data.train_size (distinct training patches) must be an integer >= 1, "
                    f"got {train_size!r}"
                )
            if patches_per_image is not None:
                raise UserError(
                    f"give either data.train_size ({train_size}, a fixed pool of training "
                    f"patches) or data.patches_per_image ({patches_per_image}, fresh random "
                    "patches every epoch), not both"
                )


class BuiltinDenoisingDataModule(_BuiltinImageDataModule):
    """Gaussian denoising on the built-in natural images
    (:class:`~deepinv_lab.data.images.BuiltinDenoising`).

    Args:
        batch_size: patches per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        train_size: number of distinct training patches, a fixed pool (module docstring);
            None = fresh random patches every epoch.
        patches_per_image: training patches per image and epoch when ``train_size`` is None
            (default 64).
        val_patches_per_image: fixed validation crops per image (default 8).
        **dataset_args: the other arguments of :class:`BuiltinDenoising` (``patch_size``,
            ``sigma`` or ``sigma_range``, ``grayscale``, ``seed``), shared by both splits.

    Batches: ``y``, ``target`` ``(B, C, P, P)``, ``max_value`` ``(B,)``, ``sigma`` ``(B,)`` and
    ``system``, a ``GaussianNoise`` with the per-sample levels. The validation set doubles as the
    test and predict set.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_size: int | None = None,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        **dataset_args,
    ):
        super().__init__()
        self._configure(batch_size, num_workers, train_size, patches_per_image)
        # Built now so that bad arguments fail at start-up, not after the first epoch.
        self.train_set = BuiltinDenoising(
            "train", patches_per_image=patches_per_image, num_patches=train_size, **dataset_args
        )
        self.val_set = BuiltinDenoising(
            "val", patches_per_image=val_patches_per_image, **dataset_args
        )
        self.collate_fn = self.train_set.collate_fn


class BuiltinSuperResolutionDataModule(_BuiltinImageDataModule):
    """Super-resolution on the built-in natural images
    (:class:`~deepinv_lab.data.images.BuiltinSuperResolution`).

    Args:
        batch_size, num_workers, train_size, patches_per_image, val_patches_per_image: as in
            :class:`BuiltinDenoisingDataModule`.
        **dataset_args: the other arguments of :class:`BuiltinSuperResolution` (``patch_size``,
            ``scale``, ``filter``, ``grayscale``, ``seed``), shared by both splits.

    Batches: ``y`` ``(B, C, P/scale, P/scale)``, ``target`` ``(B, C, P, P)``, ``max_value``
    ``(B,)`` and ``system``, one ``Downsampling(scale, filter)``. The validation set doubles as
    the test and predict set.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_size: int | None = None,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        **dataset_args,
    ):
        super().__init__()
        self._configure(batch_size, num_workers, train_size, patches_per_image)
        # Explicit constructor calls: jsonargparse reads the accepted **dataset_args from them.
        self.train_set = BuiltinSuperResolution(
            "train", patches_per_image=patches_per_image, num_patches=train_size, **dataset_args
        )
        self.val_set = BuiltinSuperResolution(
            "val", patches_per_image=val_patches_per_image, **dataset_args
        )
        self.collate_fn = self.train_set.collate_fn


class BuiltinMicroCTDataModule(_BuiltinImageDataModule):
    """x4 super-resolution of a real granular texture, the built-in stand-in for rock micro-CT
    (:class:`~deepinv_lab.data.microct.BuiltinMicroCT`; training and validation crops from
    separate rows of one photograph).

    Args: those of :class:`BuiltinSuperResolutionDataModule`; ``train_size`` is a fixed pool of
    distinct training crops. Validation ``patch_size`` must be at most 128 (the validation rows).
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_size: int | None = None,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        **dataset_args,
    ):
        super().__init__()
        self._configure(batch_size, num_workers, train_size, patches_per_image)
        self.train_set = BuiltinMicroCT(
            "train", patches_per_image=patches_per_image, num_patches=train_size, **dataset_args
        )
        self.val_set = BuiltinMicroCT(
            "val", patches_per_image=val_patches_per_image, **dataset_args
        )
        self.collate_fn = self.train_set.collate_fn
