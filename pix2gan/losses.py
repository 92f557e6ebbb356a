"""GAN objectives and the L1 reconstruction term, each as a plain function and a thin ``nn.Module``.

Discriminators return logits; the loss owns the activation (``vanilla`` applies the sigmoid inside
``binary_cross_entropy_with_logits``, ``lsgan`` regresses the logits straight onto the labels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2gan.config import GanLoss

__all__ = ["gan_loss", "GANLoss", "l1_loss", "L1Loss", "mask_weighted_l1", "ssim_loss", "diff_augment"]


def gan_loss(
    logits: torch.Tensor,
    target_is_real: bool,
    kind: GanLoss | str = GanLoss.LSGAN,
    real_label: float = 1.0,
    *,
    for_discriminator: bool = True,
) -> torch.Tensor:
    """Adversarial loss of discriminator logits against an all-real or all-fake label.

    Args:
        logits: discriminator output, any shape (one logit per patch for a PatchGAN).
        target_is_real: compare with ``real_label`` (True) or 0 (False).
        kind: ``lsgan`` (mean squared error, Mao et al. 2017), ``vanilla`` (BCE with logits, Goodfellow et al.) or
            ``hinge`` (D: relu(1 - real) + relu(1 + fake); G: -mean(logits)).
        real_label: value of the real label (1; below 1 for one-sided label smoothing; ignored by ``hinge``).
        for_discriminator: only matters for ``hinge``, whose generator loss is not a margin loss.

    Returns:
        Scalar loss, averaged over every element.

    Example:
        >>> gan_loss(torch.ones(2, 1, 6, 6), True, "lsgan").item()
        0.0
        >>> round(gan_loss(torch.zeros(4), False, "vanilla").item(), 4)  # log 2
        0.6931
        >>> gan_loss(torch.tensor([2.0, 0.5]), True, "hinge").item()  # only the logit inside the margin counts
        0.25
    """
    kind = GanLoss(kind)
    if kind == GanLoss.NONE:
        raise ValueError("gan_loss: kind 'none' means no adversarial term; there is no loss to compute")
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"gan_loss: logits must be a tensor, got {type(logits).__name__}")
    if kind == GanLoss.HINGE:
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()
    target = torch.full_like(logits, real_label if target_is_real else 0.0)
    if kind == GanLoss.LSGAN:
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


class GANLoss(nn.Module):
    """Module form of :func:`gan_loss`.

    Example:
        >>> GANLoss("vanilla")(torch.full((3,), 20.0), True).item() < 1e-6
        True
    """

    def __init__(self, kind: GanLoss | str = GanLoss.LSGAN, real_label: float = 1.0) -> None:
        super().__init__()
        self.kind = GanLoss(kind)
        self.real_label = real_label

    def forward(self, logits: torch.Tensor, target_is_real: bool, *, for_discriminator: bool = True) -> torch.Tensor:
        return gan_loss(logits, target_is_real, self.kind, self.real_label, for_discriminator=for_discriminator)


def l1_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error, optionally over the voxels where ``mask`` is true.

    Shape:
        ``prediction`` and ``target`` the same shape; ``mask`` broadcastable to it.

    Example:
        >>> l1_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])).item()
        1.5
        >>> l1_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), torch.tensor([True, False])).item()
        1.0
    """
    if prediction.shape != target.shape:
        raise ValueError(f"l1_loss: shapes differ, {tuple(prediction.shape)} vs {tuple(target.shape)}")
    if mask is None:
        return F.l1_loss(prediction, target)
    weight = mask.to(prediction.dtype).expand_as(prediction)
    return ((prediction - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def mask_weighted_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, inside: float) -> torch.Tensor:
    """L1 with the voxels inside ``mask`` weighted ``inside`` and the others ``1 - inside`` (a weighted mean).

    With ``inside = 0.5`` it is the plain L1; with 0.95 the body dominates and the air around it still counts a
    little (as in MR -> CT work that weights the loss by the body mask).

    Example:
        >>> p, t, m = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), torch.tensor([True, False])
        >>> mask_weighted_l1(p, t, m, 0.5).item(), round(mask_weighted_l1(p, t, m, 0.9).item(), 4)
        (1.5, 1.1)
    """
    if prediction.shape != target.shape:
        raise ValueError(f"mask_weighted_l1: shapes differ, {tuple(prediction.shape)} vs {tuple(target.shape)}")
    weight = torch.where(mask, inside, 1.0 - inside).to(prediction.dtype).expand_as(prediction)
    return ((prediction - target).abs() * weight).sum() / weight.sum().clamp_min(1e-12)


def ssim_loss(prediction: torch.Tensor, target: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Structural dissimilarity (1 - SSIM) / 2 of images in [-1, 1] (kornia's ``ssim_loss`` of the images mapped to
    [0, 1], data range 1: kornia's SSIM expects non-negative images).

    Example:
        >>> x = torch.rand(1, 1, 16, 16) * 2 - 1
        >>> ssim_loss(x, x).item() < 1e-6, ssim_loss(x, -x).item() > 0.9
        (True, True)
    """
    from kornia.losses import ssim_loss as kornia_ssim_loss  # imported when used: kornia takes a while to import

    return kornia_ssim_loss((prediction + 1) * 0.5, (target + 1) * 0.5, window_size=window, max_val=1.0)


class L1Loss(nn.Module):
    """Module form of :func:`l1_loss`."""

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return l1_loss(prediction, target, mask)


def diff_augment(x: torch.Tensor, *, translation: float = 0.125, cutout: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Differentiable augmentation of discriminator inputs (DiffAugment, Zhao et al. 2020).

    Applied to real *and* generated images before the discriminator, it keeps D from memorising a small training
    set (which otherwise ends in D winning and G collapsing), and gradients still reach G through it. Each image gets
    a random brightness and contrast change, a random translation by up to ``translation`` of its size (zero padding)
    and a random square cutout of side ``cutout`` of its size.

    Shape:
        (B, C, H, W) -> (B, C, H, W).

    Example:
        >>> x = torch.zeros(2, 1, 8, 8, requires_grad=True)
        >>> diff_augment(x).shape
        torch.Size([2, 1, 8, 8])
    """
    b, _, h, w = x.shape
    dev, dt = x.device, x.dtype

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev, dt)

    x = x + (rand(b, 1, 1, 1) - 0.5) * 0.4  # brightness, in [-1, 1] units
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (rand(b, 1, 1, 1) * 0.6 + 0.7) + mean  # contrast 0.7 .. 1.3
    # translation: integer shifts through a sampling grid (differentiable in x)
    shift = ((rand(b, 2) * 2 - 1) * translation * torch.tensor([w, h], device=dev, dtype=dt)).round()
    theta = torch.zeros(b, 2, 3, device=dev, dtype=dt)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2 * shift[:, 0] / w
    theta[:, 1, 2] = -2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    # cutout: one square per image set to 0
    ch, cw = int(h * cutout + 0.5), int(w * cutout + 0.5)
    cy = (rand(b) * (h + 1 - ch % 2)).long()
    cx = (rand(b) * (w + 1 - cw % 2)).long()
    ys = torch.arange(h, device=dev)[None, :, None]
    xs = torch.arange(w, device=dev)[None, None, :]
    keep = ~(((ys - cy[:, None, None]).abs() <= ch // 2) & ((xs - cx[:, None, None]).abs() <= cw // 2))
    return x * keep[:, None].to(dt)
