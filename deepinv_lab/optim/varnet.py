"""One cascade of the end-to-end variational network (E2E-VarNet) in k-space.

A. Sriram et al., "End-to-end variational networks for accelerated MRI reconstruction",
MICCAI 2020. Parameter names follow fastMRI's ``VarNetBlock`` (``model``, ``dc_weight``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Operator = Callable[[torch.Tensor], torch.Tensor]


class VarNetCascade(nn.Module):
    """One gradient-like step with learned soft data consistency and a learned regulariser:

    ``k_next = k - dc_weight * M (k - k_ref) - E(model(R(k)))``

    where ``M`` is the sampling mask, ``E = F S`` expands an image into coil k-spaces and
    ``R = (F S)^H`` reduces coil k-spaces to one image (``S`` the coil sensitivities, ``F`` the
    centered FFT). ``E`` and ``R`` are passed to :meth:`forward` as callables, e.g. a
    ``FFT2() @ CoilSensitivity(maps)`` System and its ``adjoint``, so the cascade knows no physics.

    Args:
        model: the regulariser, ``(B, 1, H, W)`` complex -> ``(B, 1, H, W)`` complex
            (a :class:`~deepinv_lab.models.NormUnet` in E2E-VarNet).

    ``dc_weight`` is a learned scalar (shape ``(1,)``, initialised to 1).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.dc_weight = nn.Parameter(torch.ones(1))

    def forward(
        self,
        kspace: torch.Tensor,
        ref_kspace: torch.Tensor,
        mask: torch.Tensor,
        expand: Operator,
        reduce: Operator,
    ) -> torch.Tensor:
        """One cascade.

        Args:
            kspace: current estimate ``k``, ``(B, coils, H, W)`` complex.
            ref_kspace: measured k-space ``k_ref``, ``(B, coils, H, W)`` complex.
            mask: real 0/1 sampling mask broadcastable against k-space, e.g. ``(B, 1, 1, W)``.
            expand: ``E``, image ``(B, 1, H, W)`` -> coil k-space ``(B, coils, H, W)``.
            reduce: ``R = E^H``, coil k-space -> image.

        Returns:
            the next estimate, ``(B, coils, H, W)`` complex.
        """
        soft_dc = self.dc_weight * (mask * (kspace - ref_kspace))
        regulariser = expand(self.model(reduce(kspace)))
        return kspace - soft_dc - regulariser
