"""Offline evaluation of generative models: Fréchet distance, KID, diversity and class consistency on learned features.

Nothing here touches the network. The features come from a small CNN trained on the *real* images on the spot:

* labelled data (conditional mode): :func:`train_classifier` fits a :class:`SmallClassifier`; its held-out accuracy
  says how much to trust it, :func:`class_consistency` asks it whether generated images show their intended class,
  and its :meth:`SmallClassifier.features` feed the distances below;
* unlabelled data (noise mode): :func:`train_rotation_features` trains the same network to tell which of four
  rotations was applied (RotNet, Gidaris et al. 2018), a self-supervised task whose features separate image content.

On those features the distances of :mod:`pix2gan.evaluation.distances` compare real and generated sets. These numbers
are only comparable between runs that share one feature network (same data, seed and settings), and are not the
published FID/KID: for those, :mod:`pix2gan.evaluation.inception` wraps an InceptionV3 from a weights file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


__all__ = ["SmallClassifier", "class_consistency", "extract_features", "train_classifier", "train_rotation_features"]

_SHIFT = 2  # random translation of the augmentation, in pixels
_MIN_SIZE = 8  # three 2x max-pools need at least 8 pixels


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SmallClassifier(nn.Module):
    """A compact CNN: three blocks of (Conv3x3-BN-ReLU x 2, max-pool 2), global average pool, dropout, linear.

    The channels of the six convolutions are ``w/2, w/2 | w, w | 2w, 4w`` (``w = width``): the first block works at
    full resolution, so it is kept narrow (it dominates the cost on CPU), and the last convolution widens to the
    feature size ``F = 4 * width`` (128 by default).

    Args:
        in_channels: image channels C (1 for gray, 3 for RGB).
        num_classes: number of outputs of :meth:`forward` (at least 2).
        width: base width w (even, at least 2); the feature size is ``4 * width``.

    Shape:
        - Input: (B, C, S, S) in [-1, 1], S >= 8 (made for S in {28, 32, 64, 128}; the cost grows as S^2).
        - :meth:`features`: (B, 4 * width); :meth:`forward`: (B, num_classes) logits.

    Example:
        >>> net = SmallClassifier(in_channels=1, num_classes=10, width=8)
        >>> net.feature_dim, tuple(net.features(torch.zeros(2, 1, 28, 28)).shape), tuple(net(torch.zeros(2, 1, 32, 32)).shape)
        (32, (2, 32), (2, 10))
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.width = width
        self.feature_dim = 4 * width
        h = width // 2
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, h), *_conv_bn_relu(h, h), nn.MaxPool2d(2),  # (B, w/2, S/2, S/2)
            *_conv_bn_relu(h, width), *_conv_bn_relu(width, width), nn.MaxPool2d(2),  # (B, w, S/4, S/4)
            *_conv_bn_relu(width, 2 * width), *_conv_bn_relu(2 * width, 4 * width), nn.MaxPool2d(2),  # (B, 4w, S/8, S/8)
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.feature_dim, num_classes))
        # channels-last runs the convolutions and batch norms about twice as fast on CPU (oneDNN's native layout)
        self.to(memory_format=torch.channels_last)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images of shape (B, {self.in_channels}, S, S), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < _MIN_SIZE:
            raise ValueError(f"images must be at least {_MIN_SIZE}x{_MIN_SIZE} pixels, got {tuple(x.shape[-2:])}")

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled activations of the last block: (B, C, S, S) -> (B, 4 * width)."""
        self._check(x)
        return self.body(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits: (B, C, S, S) -> (B, num_classes)."""
        return self.head(self.features(x))


# ----------------------------------------------------------------------------------------------------------- training


def _check_images(images: Tensor, name: str = "images") -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"{name} must have shape (N, C, S, S), got {tuple(images.shape)}")
    if images.shape[-1] < _MIN_SIZE:
        raise ValueError(f"{name} must be at least {_MIN_SIZE}x{_MIN_SIZE} pixels, got {tuple(images.shape[-2:])}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be floating point in [-1, 1], got dtype {images.dtype}")


def _check_settings(epochs: int, batch_size: int, lr: float) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (batch norm), got {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")


def _shift(x: Tensor, generator: torch.Generator) -> Tensor:
    """Translate each image by its own random offset in [-2, 2] pixels (replicate padding, then crop)."""
    b, _, s, _ = x.shape
    padded = F.pad(x, (_SHIFT,) * 4, mode="replicate")  # (B, C, S+4, S+4)
    dy, dx = torch.randint(0, 2 * _SHIFT + 1, (2, b, 1), generator=generator)
    rows = (torch.arange(s) + dy).to(x.device)  # (B, S)
    cols = (torch.arange(s) + dx).to(x.device)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # advanced indices on dims 0, 2, 3 with a slice on dim 1 put the channel last: (B, S, S, C)
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def _rotate(x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Rotate each image by k * 90 degrees, k drawn per image; returns the rotated batch and k (the RotNet target)."""
    k = torch.randint(0, 4, (x.shape[0],), generator=generator)
    out = x.clone()
    for turns in (1, 2, 3):
        sel = (k == turns).to(x.device)
        if sel.any():
            out[sel] = torch.rot90(x[sel], turns, dims=(2, 3))
    return out, k.to(x.device)


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if generator is None or len(idx) > 1:  # a training batch of one breaks batch norm: skip it
            yield idx


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _fit(
    model: SmallClassifier,
    images: Tensor,
    labels: Tensor | None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    device: torch.device,
) -> None:
    """Adam with a cosine learning-rate decay, shift augmentation; ``labels=None`` trains on the rotation task."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * max(1, math.ceil(len(images) / batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    for _ in range(epochs):
        for idx in _batches(len(images), batch_size, generator):
            x = _shift(images[idx].to(device, torch.float32), generator)  # (B, C, S, S)
            if labels is None:
                x, y = _rotate(x, generator)
            else:
                y = labels[idx].to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def _predict(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Predicted classes (N,) on the CPU, in eval mode (the model's mode is restored)."""
    was_training, device = model.training, _model_device(model)
    model.eval()
    try:
        out = [
            model(images[i : i + batch_size].to(device, torch.float32)).argmax(1).cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def train_classifier(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 1e-3,
    holdout: float = 0.1,
    seed: int = 0,
    width: int = 32,
    device: str | torch.device = "cpu",
) -> tuple[SmallClassifier, float]:
    """Train a :class:`SmallClassifier` on real labelled images and measure it on a held-out part.

    The split, the initial weights, the batch order, the augmentation and dropout all derive from ``seed``, so a
    call is repeatable on one machine (the global RNG state is left as it was). Augmentation: random shifts of up to
    2 pixels (replicate padding + crop). Cost: 10k 32x32 gray images x 8 epochs (width 32) took about 100 s on one
    CPU thread; on a CPU shared with other jobs, ``torch.set_num_threads(1)`` can be several times faster than 2.

    Args:
        images: (N, C, S, S) float images in [-1, 1] (real data only).
        labels: (N,) integer classes in [0, num_classes).
        num_classes: number of classes (at least 2).
        epochs: passes over the training part.
        batch_size: images per step (at least 2).
        lr: Adam learning rate (decayed to 0 along a cosine).
        holdout: fraction of images kept out of training to measure accuracy, in [0, 1); with 0 the accuracy is NaN.
        seed: seed of everything random.
        width: base width of the network (feature size ``4 * width``).
        device: where to train; the model is returned there.

    Returns:
        ``(model, accuracy)``: the model in eval mode and its accuracy (0..1) on the held-out images.

    Example:
        >>> x = torch.full((40, 1, 16, 16), -1.0); x[:20, :, :8] = 1.0  # class 0: bright top half
        >>> y = torch.tensor([0] * 20 + [1] * 20)
        >>> net, acc = train_classifier(x, y, 2, epochs=1, holdout=0.25, width=4)
        >>> net.training, 0.0 <= acc <= 1.0
        (False, True)
    """
    _check_images(images)
    _check_settings(epochs, batch_size, lr)
    if not isinstance(labels, Tensor) or labels.shape != (len(images),):
        raise ValueError(f"labels must be a tensor of shape ({len(images)},), got {getattr(labels, 'shape', labels)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer classes, got dtype {labels.dtype}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{int(labels.min())}, {int(labels.max())}]")
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    n_hold = math.ceil(len(images) * holdout) if holdout > 0 else 0
    if len(images) - n_hold < 2:
        raise ValueError(f"need at least 2 training images after holding out {n_hold}, got {len(images)} images")

    device = torch.device(device)
    labels = labels.long()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    hold, train = order[:n_hold], order[n_hold:]
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)  # weights and dropout
        model = SmallClassifier(images.shape[1], num_classes, width)
        _fit(
            model,
            images[train],
            labels[train],
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            generator=gen,
            device=device,
        )
    accuracy = class_consistency(model, images[hold], labels[hold]) if n_hold else float("nan")
    return model, accuracy


def train_rotation_features(
    images: Tensor,
    *,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 32,
    device: str | torch.device = "cpu",
) -> SmallClassifier:
    """Train a feature network on unlabelled images by predicting their rotation (RotNet, Gidaris et al. 2018).

    Each image of a batch is turned by k x 90 degrees (k drawn per image, per epoch) after a random shift of up to 2
    pixels, and the 4-way classifier learns k; recognising orientation requires recognising content, so its
    :meth:`SmallClassifier.features` are a usable embedding for :func:`frechet_distance`, :func:`kid` and
    :func:`diversity` when no labels exist. Repeatable for a seed, like :func:`train_classifier`.

    Args:
        images: (N, C, S, S) float images in [-1, 1] (real data only; square, so rotations keep the shape).
        epochs: passes over the images.
        batch_size: images per step (at least 2).
        lr: Adam learning rate (decayed to 0 along a cosine).
        seed: seed of everything random.
        width: base width of the network (feature size ``4 * width``).
        device: where to train; the model is returned there.

    Returns:
        The network (``num_classes=4``) in eval mode.

    Example:
        >>> net = train_rotation_features(torch.rand(16, 1, 16, 16) * 2 - 1, epochs=1, width=4)
        >>> net.num_classes, net.feature_dim
        (4, 16)
    """
    _check_images(images)
    _check_settings(epochs, batch_size, lr)
    if len(images) < 2:
        raise ValueError(f"need at least 2 images, got {len(images)}")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)
        model = SmallClassifier(images.shape[1], 4, width)
        _fit(model, images, None, epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, device=device)
    return model


@torch.no_grad()
def extract_features(
    model: nn.Module | Callable[[Tensor], Tensor], images: Tensor, batch_size: int = 256
) -> np.ndarray:
    """Features of every image, batch by batch, in eval mode (a module's mode is restored afterwards).

    Args:
        model: a module with a ``features`` method (:class:`SmallClassifier`, :class:`InceptionFeatures`), or any
            callable mapping (B, C, S, S) to (B, F).
        images: (N, C, S, S) images in [-1, 1].
        batch_size: images per forward pass.

    Returns:
        (N, F) float64 array.

    Example:
        >>> extract_features(SmallClassifier(1, 2, width=4), torch.zeros(5, 1, 8, 8), batch_size=2).shape
        (5, 16)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor of shape (N, C, S, S), got {getattr(images, 'shape', images)}")
    fn = model.features if hasattr(model, "features") else model
    is_module = isinstance(model, nn.Module)
    was_training = is_module and model.training
    device = _model_device(model) if is_module else images.device
    if is_module:
        model.eval()
    try:
        out = [
            fn(images[i : i + batch_size].to(device, torch.float32)).double().cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        if is_module:
            model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, getattr(model, "feature_dim", 0)))


def class_consistency(classifier: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Fraction of images that the classifier assigns to their intended label (generated images, asked-for classes).

    Args:
        classifier: a trained classifier (e.g. from :func:`train_classifier`); evaluated in eval mode.
        images: (N, C, S, S) images in [-1, 1].
        labels: (N,) intended classes.

    Returns:
        Accuracy in [0, 1].

    Example:
        >>> net = SmallClassifier(1, 2, width=4).eval()
        >>> 0.0 <= class_consistency(net, torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])) <= 1.0
        True
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor of shape (N, C, S, S), got {getattr(images, 'shape', images)}")
    labels = torch.as_tensor(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
    if len(images) == 0:
        raise ValueError("class_consistency needs at least one image, got 0")
    pred = _predict(classifier, images)
    return float((pred == labels.cpu().long()).double().mean())


# ------------------------------------------------------------------------------------------------------------ metrics
