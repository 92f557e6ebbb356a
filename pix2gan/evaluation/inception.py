"""FID/KID in InceptionV3 space, from a weights file the user supplies: torchvision is imported lazily and nothing is
ever downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2gan.errors import InputError

__all__ = ["INCEPTION_SKIPPED", "InceptionFeatures", "load_inception"]

INCEPTION_SKIPPED = "FID/KID skipped: no InceptionV3 weights given (--inception-weights PATH)"


class InceptionFeatures(nn.Module):
    """2048-d pool features of a torchvision InceptionV3 (its ``fc`` replaced by identity), for FID/KID.

    Images in [-1, 1] with 1 or 3 channels and any size are mapped to [0, 1], gray is repeated to RGB, resized
    (bilinear) to 299 x 299 and normalised with the ImageNet mean and std; the network is built with
    ``transform_input=True``, as torchvision does for its ImageNet weights. Build it with :func:`load_inception`.

    Shape:
        - Input: (B, 1 or 3, H, W) in [-1, 1]; output: (B, 2048).
    """

    feature_dim = 2048
    _MEAN = (0.485, 0.456, 0.406)
    _STD = (0.229, 0.224, 0.225)

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(self._MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self._STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1 or 3, H, W), got {tuple(x.shape)}")
        x = (x.float().clamp(-1, 1) + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std).flatten(1)  # (B, 2048)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def load_inception(weights: str | Path | None) -> InceptionFeatures | None:
    """Build the InceptionV3 feature extractor from a local weights file; never downloads.

    Args:
        weights: path to a torchvision ``inception_v3`` state dict (e.g. the ``inception_v3_google-*.pth`` file
            from torchvision's ImageNet weights, fetched by the user), or None to skip FID/KID.

    Returns:
        An :class:`InceptionFeatures` in eval mode on the CPU, or None when ``weights`` is None (the caller reports
        :data:`INCEPTION_SKIPPED`).

    Raises:
        InputError: the file does not exist or cannot be loaded, or torchvision cannot be imported.

    Example:
        >>> load_inception(None) is None
        True
    """
    if weights is None:
        return None
    path = Path(weights)
    if not path.is_file():
        raise InputError(f"{path}: InceptionV3 weights not found")
    try:
        import torchvision  # optional and heavy: only here
    except Exception as exc:
        raise InputError(
            f"{path}: FID/KID need torchvision, which cannot be imported ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no message'}); install the torchvision build matching "
            f"torch {torch.__version__} (pip install torchvision)"
        ) from exc
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        net.load_state_dict(state)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not loadable InceptionV3 weights ({type(exc).__name__}: {first})") from exc
    net.fc = nn.Identity()
    return InceptionFeatures(net).eval()
