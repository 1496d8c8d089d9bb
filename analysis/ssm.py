"""Self-similarity matrices (SSMs): layer SSMs, reference SSMs and checkerboard novelty.

For Kong et al. 2025 claim 4 (different layers match different musical dimensions) and claim 5
(SSM novelty peaks at chord changes).
"""
from __future__ import annotations

import numpy as np
from scipy.fft import dct

from harness.errors import UserError


def cosine_ssm(x: np.ndarray) -> np.ndarray:
    """Cosine self-similarity over the frame axis.

    Parameters
    ----------
    x : np.ndarray [..., frames, dim]

    Returns
    -------
    np.ndarray float32 [..., frames, frames]
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise UserError(f"cosine_ssm needs [..., frames, dim]; got shape {x.shape}")
    xn = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    return xn @ np.swapaxes(xn, -1, -2)


def chroma_features(audio: np.ndarray, sr: int, n_fft: int, hop_length: int) -> np.ndarray:
    """Chroma (librosa STFT chroma) per frame, [n_clips, frames, 12]; frames as a centred STFT."""
    import librosa

    audio = np.asarray(audio, dtype=np.float32)
    c = librosa.feature.chroma_stft(y=audio, sr=sr, n_fft=n_fft, hop_length=hop_length)
    return np.swapaxes(c, -1, -2).astype(np.float32)


def mfcc_from_log_mel(log_mel_db: np.ndarray, n_mfcc: int = 13) -> np.ndarray:
    """MFCCs 1..n_mfcc-1 (c0, the loudness, dropped) from dB log-mel frames [..., frames, n_mels]."""
    return dct(np.asarray(log_mel_db, dtype=np.float32), type=2, norm="ortho", axis=-1)[..., 1:n_mfcc].astype(np.float32)


def onset_context_features(log_mel_db: np.ndarray, context_frames: int = 8) -> np.ndarray:
    """Local rhythm features: spectral flux with +/- ``context_frames`` of context, [..., frames, 2c+1].

    Spectral flux is the half-wave rectified frame difference of the dB log-mel summed over bins;
    each frame's feature is the flux in the surrounding window (edge-padded), so the cosine SSM
    compares local onset patterns.
    """
    m = np.asarray(log_mel_db, dtype=np.float32)
    flux = np.maximum(np.diff(m, axis=-2, prepend=m[..., :1, :]), 0.0).sum(-1)  # [..., frames]
    pad = [(0, 0)] * (flux.ndim - 1) + [(context_frames, context_frames)]
    padded = np.pad(flux, pad, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * context_frames + 1, axis=-1)
    return np.ascontiguousarray(win, dtype=np.float32) + 1e-6


def ssm_correlation(a: np.ndarray, b: np.ndarray, min_lag: int = 1) -> np.ndarray:
    """Pearson correlation of two SSMs over their upper triangle (lags >= ``min_lag``), batched.

    Parameters
    ----------
    a, b : np.ndarray [..., frames, frames]
        Broadcastable stacks of SSMs.
    min_lag : int
        Smallest |i - j| included (1 excludes the diagonal).

    Returns
    -------
    np.ndarray [...]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = a.shape[-1]
    iu = np.triu_indices(n, k=min_lag)
    x, y = a[..., iu[0], iu[1]], b[..., iu[0], iu[1]]
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    den = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    return np.where(den > 0, (x * y).sum(-1) / np.maximum(den, 1e-300), 0.0)


def checkerboard_kernel(half_frames: int, taper_sd: float = 0.5) -> np.ndarray:
    """Foote's Gaussian-tapered checkerboard kernel, [2h, 2h]: +1 within past/future, -1 across.

    ``taper_sd`` is the Gaussian standard deviation as a fraction of ``half_frames``.
    """
    if half_frames < 1:
        raise UserError(f"checkerboard half width must be >= 1 frame; got {half_frames}")
    h = half_frames
    t = (np.arange(2 * h) - h + 0.5) / h
    sign = np.sign(t)
    g = np.exp(-0.5 * (t / taper_sd) ** 2)
    return (np.outer(sign, sign) * np.outer(g, g)).astype(np.float64)


def checkerboard_novelty(ssm: np.ndarray, half_frames: int, taper_sd: float = 0.5) -> np.ndarray:
    """Checkerboard novelty along the diagonal of one or more SSMs.

    Parameters
    ----------
    ssm : np.ndarray [..., frames, frames]
    half_frames : int
        Kernel half width in frames (the novelty at frame t compares [t-h, t) with [t, t+h)).
    taper_sd : float
        Gaussian taper (fraction of ``half_frames``).

    Returns
    -------
    np.ndarray [..., frames]
        Novelty; the SSM is reflect-padded so that track edges do not create spurious peaks.
    """
    s = np.asarray(ssm, dtype=np.float64)
    lead = s.shape[:-2]
    n = s.shape[-1]
    h = half_frames
    if n <= h:
        raise UserError(f"SSM of {n} frames is too short for a checkerboard of half width {h}; use a smaller kernel")
    k = checkerboard_kernel(h, taper_sd)
    flat = s.reshape(-1, n, n)
    out = np.empty((flat.shape[0], n))
    for i, m in enumerate(flat):
        p = np.pad(m, h, mode="reflect")
        win = np.lib.stride_tricks.sliding_window_view(p, (2 * h, 2 * h))  # [n+1, n+1, 2h, 2h]
        diag = win[np.arange(n), np.arange(n)]  # block starting at (t, t) covers [t-h, t+h)
        out[i] = np.einsum("tij,ij->t", diag, k)
    return out.reshape(*lead, n)


def chord_change_times(intervals: np.ndarray, labels, t_max_s: float | None = None) -> np.ndarray:
    """Times (s) where the chord label changes between consecutive intervals (track start/end excluded)."""
    intervals = np.asarray(intervals, dtype=float)
    times = [intervals[i, 0] for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    times = np.asarray(times, dtype=float)
    if t_max_s is not None:
        times = times[times < t_max_s]
    return times


def _separation(profiles: np.ndarray, target: int, others) -> np.ndarray:
    """Layer separation of mean profiles [..., layers, refs] (see :func:`layer_separation`)."""
    best = profiles.argmax(-2)  # [..., refs]
    lt = best[..., target]
    take = lambda ref, layer: np.take_along_axis(profiles[..., ref], layer[..., None], -1)[..., 0]
    seps = []
    for o in others:
        lo = best[..., o]
        seps.append((take(target, lt) - take(target, lo)) + (take(o, lo) - take(o, lt)))
    return np.max(np.stack(seps, -1), -1)


def layer_separation(r: np.ndarray, target: int = 0, others=(1, 2), n_boot: int = 10000, level: float = 0.95,
                     seed: int = 0) -> dict:
    """Do different layers best match different reference SSMs? Bootstrap over tracks.

    For reference ``t`` (e.g. chroma) and another ``o`` (timbre, onsets), with mean-over-tracks
    correlation profiles ``m_t(l)``, ``m_o(l)`` and their best layers ``l_t``, ``l_o``::

        sep_o = [m_t(l_t) - m_t(l_o)] + [m_o(l_o) - m_o(l_t)]  >= 0,  = 0 iff l_t == l_o

    and ``sep = max_o sep_o`` (the target's best layer differs from *some* other's). Resampling
    tracks and recomputing the best layers gives a percentile interval; ``low > 0`` means that in
    more than ``(1 + level) / 2`` of resamples the best layers differ.

    Parameters
    ----------
    r : np.ndarray [tracks, layers, refs]
        Per-track SSM correlations.
    target : int
        Reference index of the target dimension.
    others : sequence of int
        Other references.
    n_boot, level, seed
        Bootstrap settings.

    Returns
    -------
    dict
        ``value``, ``low``, ``high``, ``p_same`` (share of resamples with the same best layers,
        +1 corrected), ``best_layers`` (0-based per reference), ``profiles`` [layers, refs].
    """
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 3 or r.shape[0] < 2:
        raise UserError(f"layer_separation needs [tracks>=2, layers, refs] correlations; got {r.shape}")
    rng = np.random.default_rng(seed)
    prof = r.mean(0)
    value = float(_separation(prof, target, others))
    boot = np.empty(n_boot)
    chunk = max(1, 2_000_000 // r.size)
    for s in range(0, n_boot, chunk):
        e = min(n_boot, s + chunk)
        idx = rng.integers(0, r.shape[0], size=(e - s, r.shape[0]))
        boot[s:e] = _separation(r[idx].mean(1), target, others)
    a = (1 - level) / 2
    return {"value": value, "low": float(np.quantile(boot, a)), "high": float(np.quantile(boot, 1 - a)),
            "p_same": float((1 + np.sum(boot <= 0)) / (1 + n_boot)), "best_layers": prof.argmax(0).tolist(),
            "profiles": prof, "n": int(r.shape[0])}
