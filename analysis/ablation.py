"""Unit ablation (Kim et al. 2024, analysis 8): which pooled units matter for non-music sounds.

The model side (zeroing channels with a forward hook) lives in ``models.kim_cnn.KimCNN.ablated``;
here a scoring callable is enough, so the analysis stays model-agnostic.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from analysis.selectivity import MS_FRACTION, n_selected, rank_units
from harness.errors import UserError


def average_precision_per_class(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of every column, vectorised (NaN for columns without positives).

    Ties are broken by sort order (as a ranking metric without interpolation); for continuous
    scores this equals ``sklearn.metrics.average_precision_score`` per class.

    Parameters
    ----------
    y_true : np.ndarray, bool, shape (n_clips, n_classes)
    scores : np.ndarray, float, shape (n_clips, n_classes)
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, np.float64)
    if y.shape != s.shape or y.ndim != 2:
        raise UserError(f"labels and scores must both be [clips, classes], got {y.shape} and {s.shape}")
    order = np.argsort(-s, axis=0, kind="stable")
    hits = np.take_along_axis(y, order, axis=0).astype(np.float64)
    tp = np.cumsum(hits, axis=0)
    precision = tp / np.arange(1, len(y) + 1)[:, None]
    n_pos = hits.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, (precision * hits).sum(axis=0) / n_pos, np.nan)


def mean_average_precision(y_true: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Mean AP over the chosen classes (bool mask or indices) that have positives."""
    y = np.asarray(y_true)
    s = np.asarray(scores)
    if classes is not None:
        y, s = y[:, classes], s[:, classes]
    return float(np.nanmean(average_precision_per_class(y, s)))


def ablation_groups(msi: np.ndarray, l1_norm: np.ndarray, fraction: float = MS_FRACTION) -> dict:
    """The unit groups Kim et al. ablate, each ``fraction`` of the units (32 of 256).

    Returns
    -------
    dict
        ``top_msi`` (the MS units, true top ranks), ``middle_msi`` (ranks 43.75-56.25 %),
        ``bottom_msi`` (lowest MSI) and ``top_l1`` (largest L1 norm).
    """
    msi = np.asarray(msi)
    if np.shape(l1_norm) != msi.shape:
        raise UserError(f"l1_norm must have one value per unit ({msi.shape}), got {np.shape(l1_norm)}")
    n = len(msi)
    k = n_selected(n, fraction)
    order = rank_units(msi)
    mid = int(round((0.5 - fraction / 2) * n))
    return {"top_msi": order[:k], "middle_msi": order[mid:mid + k], "bottom_msi": order[n - k:],
            "top_l1": rank_units(l1_norm)[:k]}


def ablation_map(score_fn: Callable[[np.ndarray], np.ndarray], y_true: np.ndarray, classes,
                 groups: Mapping[str, Sequence[int]]) -> dict:
    """mAP over ``classes`` with no ablation (``"none"``) and with each unit group zeroed.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(units) -> scores [n_clips, n_classes]`` with ``units`` zeroed (empty = intact),
        e.g. a batched forward pass under ``KimCNN.ablated(units)``.
    y_true : np.ndarray, bool, shape (n_clips, n_classes)
    classes : bool mask or indices
        Classes to average over (Kim et al.: the non-music classes).
    groups : mapping name -> unit indices
    """
    out = {"none": mean_average_precision(y_true, score_fn(np.array([], dtype=int)), classes)}
    for name, units in groups.items():
        out[name] = mean_average_precision(y_true, score_fn(np.asarray(units, dtype=int)), classes)
    return out
