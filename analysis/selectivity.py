"""Unit selectivity (Kim et al. 2024): the music-selectivity index, unit selection, response ratios
and the sound-quilt response pipeline.

All functions are vectorised over units: ``responses`` is always ``[n_clips, n_units]``.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from harness.errors import UserError

MS_FRACTION = 0.125


def _split(responses: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(responses, dtype=np.float64)
    pos = np.asarray(positive).astype(bool)
    if r.ndim != 2 or pos.shape != (r.shape[0],):
        raise UserError(f"responses must be [clips, units] and the mask [clips]; got {r.shape} and {pos.shape}")
    if pos.sum() < 2 or (~pos).sum() < 2:
        raise UserError(f"selectivity needs >= 2 clips in each group, got {int(pos.sum())} and {int((~pos).sum())}")
    return r[pos], r[~pos]


def selectivity_index(responses: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Welch t-statistic of each unit's responses, positive group against the rest.

    ``(m_pos - m_neg) / sqrt(s2_pos / n_pos + s2_neg / n_neg)`` with unbiased variances: the
    music-selectivity index (MSI) when ``positive`` marks music clips, the speech index for speech.

    Parameters
    ----------
    responses : np.ndarray, shape (n_clips, n_units)
    positive : np.ndarray, bool, shape (n_clips,)

    Returns
    -------
    np.ndarray, shape (n_units,)
        0 for units that are constant over all clips; +-inf for units constant within each group
        but different between them.
    """
    a, b = _split(responses, positive)
    diff = a.mean(0) - b.mean(0)
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    # floating-point noise on a constant unit is not selectivity: treat it as exactly constant
    tol = 1e-9 * np.maximum(np.abs(a).max(0), np.abs(b).max(0))
    flat = se <= tol
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / np.where(flat, 1.0, se)
        t = np.where(flat, np.where(np.abs(diff) <= tol, 0.0, np.sign(diff) * np.inf), t)
    return t


def music_selectivity_index(responses: np.ndarray, is_music: np.ndarray) -> np.ndarray:
    """The MSI of Kim et al.: :func:`selectivity_index` with music as the positive group."""
    return selectivity_index(responses, is_music)


def n_selected(n_units: int, fraction: float = MS_FRACTION) -> int:
    """Number of units in a fraction (12.5 % of 256 = 32; of 64 = 8), at least 1."""
    return max(1, int(round(fraction * n_units)))


def rank_units(index: np.ndarray) -> np.ndarray:
    """Unit indices sorted from the highest index to the lowest (stable for ties)."""
    return np.argsort(-np.asarray(index, dtype=np.float64), kind="stable")


def top_units(index: np.ndarray, fraction: float = MS_FRACTION) -> np.ndarray:
    """The top ``fraction`` of units by ``index`` (the MS units for the MSI)."""
    return rank_units(index)[:n_selected(len(index), fraction)]


def index_bands(index: np.ndarray, fraction: float = MS_FRACTION, n_bands: int = 4) -> list[np.ndarray]:
    """Consecutive bands of ``fraction`` of the units by rank: band 0 is the top 12.5 %, band 1 the
    next 12.5-25 %, and so on."""
    order = rank_units(index)
    k = n_selected(len(index), fraction)
    if k * n_bands > len(order):
        raise UserError(f"{n_bands} bands of {k} units need {k * n_bands} units, have {len(order)}")
    return [order[i * k:(i + 1) * k] for i in range(n_bands)]


def response_ratio(responses: np.ndarray, positive: np.ndarray, units: Sequence[int] | None = None) -> float:
    """Mean response of the chosen units to the positive clips over that to the other clips.

    Parameters
    ----------
    responses : np.ndarray, shape (n_clips, n_units)
        Non-negative responses (post-ReLU features or band power).
    positive : np.ndarray, bool, shape (n_clips,)
    units : sequence of int, optional
        Units to average over (default all).
    """
    a, b = _split(responses, positive)
    if units is not None:
        units = np.asarray(units)
        a, b = a[:, units], b[:, units]
    denom = b.mean()
    return float(a.mean() / denom) if denom > 0 else float("inf")


def mean_response_per_clip(responses: np.ndarray, units: Sequence[int] | None = None) -> np.ndarray:
    """Average over units for each clip (``[n_clips]``)."""
    r = np.asarray(responses, dtype=np.float64)
    return (r if units is None else r[:, np.asarray(units)]).mean(axis=1)


def category_ratios(responses: np.ndarray, categories: np.ndarray, reference: np.ndarray,
                    units: Sequence[int]) -> dict:
    """Mean MS-unit response per category, divided by the mean over the ``reference`` clips
    (e.g. all non-music clips), for the 165-sound category comparison."""
    per_clip = mean_response_per_clip(responses, units)
    ref = per_clip[np.asarray(reference, bool)].mean()
    cats = np.asarray(categories)
    return {str(c): float(per_clip[cats == c].mean() / ref) for c in np.unique(cats)}


def category_margin(per_clip: np.ndarray, categories: np.ndarray, positive_categories: Sequence[str],
                    n_boot: int = 1000, seed: int = 0):
    """How far the weakest positive category out-ranks the strongest other one.

    ``(min over positive categories of the category mean - max over the other categories' means)``
    divided by the mean over all clips of the other categories: Kim et al.'s "both music categories
    exceed each of the nine non-music categories" as one number (> 0 when they do).

    Parameters
    ----------
    per_clip : np.ndarray, shape (n_clips,)
        One response per clip (e.g. :func:`mean_response_per_clip` of the MS units).
    categories : np.ndarray of str, shape (n_clips,)
    positive_categories : sequence of str
        E.g. ``("Music", "Song")``; those absent from ``categories`` are ignored.
    n_boot : int
        Bootstrap resamples (clips resampled within each category).
    seed : int

    Returns
    -------
    analysis.stats.Estimate
        The margin with a 95 % percentile interval.
    """
    from analysis.stats import Estimate

    x = np.asarray(per_clip, dtype=np.float64)
    cats = np.asarray(categories).astype(str)
    pos = [c for c in dict.fromkeys(map(str, positive_categories)) if c in set(cats)]
    others = [c for c in np.unique(cats) if c not in pos]
    if not pos or not others:
        raise UserError(f"a category margin needs clips of {list(positive_categories)} and of other categories")
    members = {c: np.flatnonzero(cats == c) for c in pos + others}

    def margin(idx: dict) -> float:
        means = {c: x[i].mean() for c, i in idx.items()}
        ref = np.concatenate([idx[c] for c in others])
        return float((min(means[c] for c in pos) - max(means[c] for c in others)) / x[ref].mean())

    rng = np.random.default_rng(seed)
    boot = np.array([margin({c: rng.choice(i, len(i)) for c, i in members.items()}) for _ in range(int(n_boot))])
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Estimate(value=margin(members), low=float(lo), high=float(hi), n=int(len(x)), level=0.95,
                    method=f"percentile bootstrap over clips within each category ({int(n_boot)})")


# --------------------------------------------------------------------------- sound quilts
def plot_category_ratios(names: Sequence[str], trained: Sequence[float], untrained: Sequence[float],
                         highlighted: Sequence[bool], ylabel: str, title: str, rotation: float = 45,
                         height_in: float = 3.6):
    """Bar chart of the MS units' response ratio per category (``highlighted`` bars, the music ones, in red),
    the random-init network's ratios as black dots and a line at 1; returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, height_in))
    ax.bar(list(names), list(trained), color=["tab:red" if h else "tab:gray" for h in highlighted])
    ax.plot(list(names), list(untrained), "k.", label="random init")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(ylabel=ylabel, title=title)
    ax.tick_params(axis="x", rotation=rotation)
    ax.legend()
    return fig


def quilt_response_pipeline(audio: np.ndarray, sr: int, seg_ms_list: Sequence[int],
                            quilt: Callable[[np.ndarray, int, int, int], np.ndarray],
                            featurize: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> dict:
    """Responses to the original clips and to their quilts at each segment size.

    Parameters
    ----------
    audio : np.ndarray, shape (n_clips, n_samples)
        Source clips (e.g. music clips from the training split).
    sr : int
        Sample rate in Hz.
    seg_ms_list : sequence of int
        Quilt segment sizes in milliseconds (Kim et al.: 50, 100, 200, 400, 800, 1600).
    quilt : callable
        ``quilt(audio, sr, seg_ms, seed) -> quilted audio`` of the same shape (batched).
    featurize : callable
        ``featurize(audio) -> responses [n_clips, n_units]`` (log-mel then network, batched).
    seed : int
        Seed of the quilting order; segment size ``k`` uses ``seed + k``.

    Returns
    -------
    dict
        ``{"original": [n, units], seg_ms: [n, units], ...}``.
    """
    out = {"original": np.asarray(featurize(audio))}
    for k, seg_ms in enumerate(seg_ms_list):
        q = quilt(audio, sr, int(seg_ms), int(seed) + k)
        if np.shape(q) != np.shape(audio):
            raise UserError(f"quilt must keep the clip shape {np.shape(audio)}, got {np.shape(q)} at {seg_ms} ms")
        out[int(seg_ms)] = np.asarray(featurize(q))
    return out


def normalised_quilt_curve(responses: Mapping, units: Sequence[int]) -> dict:
    """Mean normalised response of a unit group per condition.

    Each unit's responses are divided by that unit's maximum over all conditions and clips, so
    every unit weighs the same and values lie in [0, 1]; the result averages over clips and the
    group's units.

    Parameters
    ----------
    responses : mapping condition -> np.ndarray [n_clips, n_units]
        E.g. the output of :func:`quilt_response_pipeline`.
    units : sequence of int

    Returns
    -------
    dict condition -> float
    """
    units = np.asarray(units)
    stacked = {k: np.asarray(v, np.float64)[:, units] for k, v in responses.items()}
    unit_max = np.max([v.max(axis=0) for v in stacked.values()], axis=0)
    unit_max = np.where(unit_max > 0, unit_max, 1.0)
    return {k: float((v / unit_max).mean()) for k, v in stacked.items()}
