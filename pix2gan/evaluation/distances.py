"""Distances between real and generated feature sets: Fréchet distance (the FID formula), KID (the unbiased MMD
estimator with a cubic polynomial kernel) and diversity (mean pairwise distance, which collapses with the generator).

Example:
    >>> rng = np.random.default_rng(0)
    >>> real, fake = rng.normal(size=(500, 4)), rng.normal(size=(500, 4)) + [2.0, 0.0, 0.0, 0.0]
    >>> round(frechet_distance(real, real), 6), 3.5 < frechet_distance(real, fake) < 4.5
    (0.0, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["frechet_distance", "kid", "diversity"]


def _check_pair(feats_a: np.ndarray, feats_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    for name, f in (("feats_a", a), ("feats_b", b)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{name} must have shape (N, F) with N >= 2, got {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"{name} holds NaN or Inf values")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    return a, b


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues -> 0)."""
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` with sample covariances (``ddof=1``, as FID). The
    trace of the matrix square root is computed from the symmetric, PSD form ``sqrt(S_a) S_b sqrt(S_a)`` (same
    eigenvalues as ``S_a S_b``) by ``eigh``, so it is real and stable even for singular covariances; the result is
    clamped at 0.

    Args:
        feats_a, feats_b: (N_a, F) and (M, F) features, at least 2 rows each.

    Returns:
        The distance (>= 0; 0 up to rounding for identical sets).

    Example:
        >>> a = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> round(frechet_distance(a, a + [3.0, 4.0]), 9)  # same covariance: the squared mean shift
        25.0
    """
    a, b = _check_pair(feats_a, feats_b)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    dist = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)
    scale = float(np.trace(cov_a) + np.trace(cov_b)) + 1.0
    return 0.0 if dist < 1e-12 * scale else dist


def kid(feats_a: np.ndarray, feats_b: np.ndarray, subsets: int = 10, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance estimator on any features: unbiased MMD^2, cubic polynomial kernel, subset mean.

    ``k(x, y) = (x . y / F + 1)^3``; each of ``subsets`` rounds draws ``m = min(subset_size, N_a, M)`` rows of each
    set without replacement and computes the unbiased MMD^2 (Binkowski et al. 2018); the result is their mean (it may
    be slightly negative when the sets match).

    Args:
        feats_a, feats_b: (N_a, F) and (M, F) features, at least 2 rows each.
        subsets: number of random subsets (at least 1).
        subset_size: rows drawn from each set per subset (at least 2).
        seed: seed of the subset draws.

    Returns:
        The mean MMD^2 over the subsets.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> x = rng.normal(size=(300, 8))
        >>> abs(kid(x, rng.normal(size=(300, 8)), subset_size=100)) < 0.05 < kid(x, x + 1.0, subset_size=100)
        True
    """
    a, b = _check_pair(feats_a, feats_b)
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    m, d = min(subset_size, len(a), len(b)), a.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
        off_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        total += off_xx + off_yy - 2 * k_xy.mean()
    return float(total / subsets)


def diversity(feats: np.ndarray, max_pairs: int = 20000, seed: int = 0) -> float:
    """Mean Euclidean distance between pairs of distinct samples: low when a generator collapses.

    With at most ``max_pairs`` pairs in all (N <= ~200 for the default) every pair is used; otherwise ``max_pairs``
    random pairs ``(i, j)``, ``i != j``, are drawn with ``seed``.

    Args:
        feats: (N, F) features, N >= 2.
        max_pairs: most pairs to average (at least 1).
        seed: seed of the pair draws.

    Returns:
        The mean pairwise distance.

    Example:
        >>> diversity(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]))  # pairs: 5, 0, 5
        3.3333333333333335
    """
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feats must have shape (N, F) with N >= 2, got {f.shape}")
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be at least 1, got {max_pairs}")
    n = len(f)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_pairs)
        j = (i + rng.integers(1, n, max_pairs)) % n  # never i
    chunk = max(1, 2**22 // max(1, f.shape[1]))  # bound the (pairs, F) temporary to ~32 MB
    total = sum(
        float(np.linalg.norm(f[i[s : s + chunk]] - f[j[s : s + chunk]], axis=1).sum()) for s in range(0, len(i), chunk)
    )
    return total / len(i)


# ---------------------------------------------------------------------------------------------------------- inception
