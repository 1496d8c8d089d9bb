"""Event detection from novelty curves, and its circular-shift significance test.

Used for Kong et al. 2025: onsets from layer-wise attention maps, chord changes from
self-similarity novelty. Peak picking is shift-equivariant (circular filters), so shifting a curve
circularly shifts its peaks exactly; the surrogate test therefore shifts the picked peaks and
scores all shifts at once with FFT cross-correlation.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from harness.errors import UserError


def received_attention(weights) -> np.ndarray:
    """Attention each sequence frame receives, averaged over heads and over all queries.

    Parameters
    ----------
    weights : Tensor or np.ndarray [..., heads, 1 + frames, 1 + frames]
        Softmax attention (rows = queries, columns = keys); index 0 is the class token.

    Returns
    -------
    np.ndarray float32 [..., frames]
        Mean over heads and query rows (class token included) of the weight on each frame key.
    """
    try:
        import torch

        if isinstance(weights, torch.Tensor):
            return weights.float().mean(dim=(-3, -2))[..., 1:].cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    w = np.asarray(weights, dtype=np.float32)
    return w.mean(axis=(-3, -2))[..., 1:]


def rectified_difference(curve: np.ndarray) -> np.ndarray:
    """Half-wave rectified first difference along the last axis (first value 0): a novelty curve."""
    curve = np.asarray(curve, dtype=np.float64)
    d = np.diff(curve, axis=-1, prepend=curve[..., :1])
    return np.maximum(d, 0.0)


def absolute_difference(curve: np.ndarray) -> np.ndarray:
    """Absolute first difference along the last axis (first value 0): a sign-agnostic novelty curve."""
    curve = np.asarray(curve, dtype=np.float64)
    return np.abs(np.diff(curve, axis=-1, prepend=curve[..., :1]))


def pick_peaks(curve: np.ndarray, max_frames: int = 3, avg_frames: int = 10, delta_std: float = 0.5) -> np.ndarray:
    """Circular (shift-equivariant) peak picking.

    A frame is a peak when it is the maximum of ``[t - max_frames, t + max_frames]`` and exceeds the
    moving average over ``[t - avg_frames, t + avg_frames]`` by ``delta_std`` standard deviations of
    the whole curve. Filters wrap around, so ``pick_peaks(np.roll(c, s)) == np.roll(pick_peaks(c), s)``.

    Parameters
    ----------
    curve : np.ndarray [frames]
    max_frames, avg_frames : int
        Half-widths of the local-maximum and moving-average windows, in frames.
    delta_std : float
        Threshold above the moving average, in units of the curve's standard deviation.

    Returns
    -------
    np.ndarray bool [frames]
    """
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1:
        raise UserError(f"pick_peaks takes a 1-D curve; got shape {c.shape}")
    local_max = maximum_filter1d(c, size=2 * max_frames + 1, mode="wrap")
    avg = uniform_filter1d(c, size=2 * avg_frames + 1, mode="wrap")
    return (c >= local_max) & (c > avg + delta_std * c.std()) & (c > c.min())


def onset_f_measure(ref_onsets_s, est_onsets_s, window_s: float = 0.05) -> float:
    """mir_eval onset F-measure (+/- ``window_s``); 0 when either side is empty."""
    import mir_eval

    ref = np.sort(np.asarray(ref_onsets_s, dtype=float))
    est = np.sort(np.asarray(est_onsets_s, dtype=float))
    if len(ref) == 0 or len(est) == 0:
        return 0.0
    return float(mir_eval.onset.f_measure(ref, est, window=window_s)[0])


def _dilate_circular(x: np.ndarray, tol_frames: int) -> np.ndarray:
    return maximum_filter1d(x.astype(np.float64), size=2 * tol_frames + 1, mode="wrap")


def shifted_frame_f_measure(peaks: np.ndarray, ref: np.ndarray, tol_frames: int) -> np.ndarray:
    """Frame-domain event F-measure for every circular shift of the peaks, via FFT.

    Parameters
    ----------
    peaks, ref : np.ndarray bool [frames]
        Estimated and reference event frames.
    tol_frames : int
        Matching tolerance in frames (|est - ref| <= tol).

    Returns
    -------
    np.ndarray [frames]
        F-measure for peaks shifted by ``s`` frames (index s). Matches are counted as
        ``min(#estimates near a reference, #references near an estimate)``, which equals the
        maximum one-to-one matching whenever events are more than ``2 * tol`` frames apart.
    """
    p = np.asarray(peaks, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise UserError(f"peaks and ref must be 1-D of equal length; got {p.shape} and {r.shape}")
    n_est, n_ref = p.sum(), r.sum()
    if n_est == 0 or n_ref == 0:
        return np.zeros(len(p))
    fp, fr = np.fft.rfft(p), np.fft.rfft(r)
    fdr, fdp = np.fft.rfft(_dilate_circular(r, tol_frames)), np.fft.rfft(_dilate_circular(p, tol_frames))
    n = len(p)
    # hits_est[s] = sum_t p[t - s] * dil_r[t]   (peaks shifted forward by s)
    hits_est = np.rint(np.fft.irfft(np.conj(fp) * fdr, n=n))
    # hits_ref[s] = sum_t r[t] * dil_p[t - s]
    hits_ref = np.rint(np.fft.irfft(fr * np.conj(fdp), n=n))
    matched = np.minimum(hits_est, hits_ref)
    return 2.0 * matched / (n_est + n_ref)


def circular_shift_test(
    peaks: np.ndarray,
    ref: np.ndarray,
    tol_frames: int,
    n_shifts: int = 1000,
    min_shift_frames: int = 50,
    seed: int = 0,
) -> dict:
    """Is the event F-measure of ``peaks`` against ``ref`` above circularly shifted surrogates?

    Parameters
    ----------
    peaks, ref : np.ndarray bool [frames]
        Picked peaks of the (concatenated) novelty curve and the reference events.
    tol_frames : int
        Matching tolerance in frames.
    n_shifts : int
        Surrogates, drawn without replacement from shifts in
        ``[min_shift_frames, frames - min_shift_frames]`` (with replacement when fewer exist).
    min_shift_frames : int
        Smallest allowed shift, so a surrogate is not the curve itself.
    seed : int

    Returns
    -------
    dict
        ``f`` (observed frame F), ``null`` (surrogate F values), ``p`` (one-sided,
        ``(1 + #null >= f) / (1 + n_shifts)``), ``excess`` (f - mean null), ``null_q99``.
    """
    n = len(peaks)
    allowed = np.arange(min_shift_frames, n - min_shift_frames + 1)
    if len(allowed) < 1:
        raise UserError(f"curve of {n} frames is too short for shifts of at least {min_shift_frames} frames")
    rng = np.random.default_rng(seed)
    shifts = rng.choice(allowed, size=n_shifts, replace=len(allowed) < n_shifts)
    f_all = shifted_frame_f_measure(peaks, ref, tol_frames)
    f_obs, null = float(f_all[0]), f_all[shifts]
    return {
        "f": f_obs,
        "null": null,
        "p": float((1 + np.sum(null >= f_obs)) / (1 + len(null))),
        "excess": f_obs - float(null.mean()),
        "null_q99": float(np.quantile(null, 0.99)),
        "n_shifts": int(n_shifts),
    }


def events_to_frames(times_s, n_frames: int, hop_s: float) -> np.ndarray:
    """Boolean frame indicator of event times (frame ``round(t / hop_s)``; out-of-range dropped)."""
    idx = np.rint(np.asarray(times_s, dtype=float) / hop_s).astype(int)
    out = np.zeros(n_frames, dtype=bool)
    out[idx[(idx >= 0) & (idx < n_frames)]] = True
    return out


def layerwise_event_test(
    curves: np.ndarray,
    ref_frames: np.ndarray,
    tol_frames: int,
    n_shifts: int = 1000,
    min_shift_frames: int = 50,
    seed: int = 0,
    peak_kwargs: dict | None = None,
) -> dict:
    """Circular-shift test of every layer's novelty curve, Bonferroni-corrected over layers.

    Parameters
    ----------
    curves : np.ndarray [layers, frames]
        One (concatenated) novelty curve per layer.
    ref_frames : np.ndarray bool [frames]
        Reference events.
    tol_frames, n_shifts, min_shift_frames, seed
        As in :func:`circular_shift_test` (the same shifts for every layer).
    peak_kwargs : dict, optional
        Passed to :func:`pick_peaks`.

    Returns
    -------
    dict
        ``per_layer`` (list of test dicts, each with ``peaks``), ``best_layer`` (0-based, the
        smallest p, ties broken by the larger excess), ``p_corrected`` (Bonferroni of the best p).
    """
    curves = np.asarray(curves)
    per_layer = []
    for c in curves:
        pk = pick_peaks(c, **(peak_kwargs or {}))
        res = circular_shift_test(pk, ref_frames, tol_frames, n_shifts, min_shift_frames, seed)
        res["peaks"] = pk
        per_layer.append(res)
    order = sorted(range(len(per_layer)), key=lambda i: (per_layer[i]["p"], -per_layer[i]["excess"]))
    best = order[0]
    return {
        "per_layer": per_layer,
        "best_layer": int(best),
        "p_corrected": float(min(1.0, per_layer[best]["p"] * len(per_layer))),
    }
