"""Weight-space interpolation of two generators of one architecture: the realism dial of a warm-up run.

A run trained with ``--gan-warmup`` keeps its generator at the end of the regression warm-up (``generator_regression``
in every later checkpoint) besides the adversarial one. :func:`blend_state_dicts` gives
θ = (1 - A) θ_regression + A θ_adversarial, weight by weight: every floating-point entry of the state dict is
interpolated, normalisation statistics (batch norm's running mean and variance) included; integer buffers (batch
norm's ``num_batches_tracked``) cannot be interpolated and are the adversarial model's. The two ends are exact: A = 0
gives the regression state dict itself, A = 1 the adversarial one.

Example:
    >>> a = {"w": torch.zeros(2), "n": torch.tensor(3)}
    >>> b = {"w": torch.tensor([2.0, 4.0]), "n": torch.tensor(7)}
    >>> blended = blend_state_dicts(a, b, 0.25)
    >>> blended["w"].tolist(), int(blended["n"])
    ([0.5, 1.0], 7)
    >>> blend_state_dicts(a, b, 0.0) is a, blend_state_dicts(a, b, 1.0) is b
    (True, True)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["blend_state_dicts"]


def blend_state_dicts(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float
) -> Mapping[str, torch.Tensor]:
    """``(1 - alpha) * a + alpha * b`` entry by entry (``torch.lerp``); non-float entries are ``b``'s.

    Args:
        a: the state dict at ``alpha`` 0 (the regression snapshot).
        b: the state dict at ``alpha`` 1 (the adversarial generator), with the same keys, shapes and dtypes.
        alpha: in [0, 1]; at 0 ``a`` and at 1 ``b`` are returned themselves (bit for bit).

    Returns:
        A new state dict (or ``a`` / ``b`` at the ends), for ``load_state_dict``.

    Raises:
        ValueError: ``alpha`` outside [0, 1], or the two state dicts do not describe the same network.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend_state_dicts: alpha must be in [0, 1], got {alpha}")
    if a.keys() != b.keys():
        differ = sorted(set(a) ^ set(b))
        raise ValueError(f"blend_state_dicts: the state dicts hold different entries ({', '.join(differ[:3])})")
    for key, x in a.items():
        y = b[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            raise ValueError(f"blend_state_dicts: {key} is {tuple(x.shape)} {x.dtype} in one, "
                             f"{tuple(y.shape)} {y.dtype} in the other")  # fmt: skip
    if alpha == 0.0:
        return a
    if alpha == 1.0:
        return b
    return {key: torch.lerp(x, b[key], alpha) if x.is_floating_point() else b[key] for key, x in a.items()}
