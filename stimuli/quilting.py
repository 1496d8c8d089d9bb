"""Sound quilts (Overath et al. 2015; Kim et al. 2024's simplified variant).

A quilt cuts a source into equal segments, reorders them so that the spectral change across every
new boundary resembles the changes across the source's own boundaries, and joins them with
raised-cosine cross-fades at boundaries shifted (within a maximum) to where the two waveforms
agree best. Short segments destroy long-range structure; long segments keep it.

Conventions used here (both orderings)
--------------------------------------
* ``seg_samples = floor(seg_ms * sr / 1000 + 0.5)``; the source is cut into
  ``n_seg = n_samples // seg_samples`` segments (a remainder shorter than a segment is dropped),
  and the quilt has exactly ``n_seg * seg_samples`` samples.
* Border features: a log-mel spectrogram (``n_mels`` triangular HTK-mel bands up to
  ``min(8 kHz, sr/2)``, Hann window ``win_ms``, hop ``hop_ms``, ``10 log10(power + 1e-10)``) of the
  first (left border) and last (right border) ``border_ms`` of each segment, flattened over frames
  and bands. The change from segment ``i`` into segment ``j`` is ``d(i, j) = L_j - R_i``. Overath used
  a cochleagram; the log-mel is our stand-in (Kim et al. used a log-mel).
* Ordering: start at a random segment; repeatedly append the unused segment ``j`` that best matches
  the original change ``d(i, i + 1)`` of the current segment ``i``:
  ``"overath"`` matches the change vector, cost ``||d(i, j) - d(i, i+1)||``;
  ``"kim2024"`` matches only its magnitude, cost ``| ||d(i, j)|| - ||d(i, i+1)|| |``.
  The last source segment has no successor; its target is the change into it, ``d(i-1, i)``.
  The original successor ``i + 1`` itself (cost 0) is excluded unless it is the only unused
  segment left, otherwise the greedy search would rebuild the source. Ties go to the lowest index.
* Joins (pitch-synchronous, as in Overath's PSOLA-style joins): output slot ``p`` plays
  ``x[order[p] * seg_samples + s_p + r]`` for ``r`` in ``[0, seg_samples)``, where the shift ``s_p``
  (``|s_p| <= max_shift_samples``, ``s_0 = 0``) maximises the normalised cross-correlation between the
  previous slot's *played* continuation and the shifted head of the new segment over the
  ``fade_samples`` centred on the boundary (ties go to the smallest ``|s|``). The two are mixed
  there with a raised-cosine cross-fade (weights sum to 1) over output samples
  ``[p * seg - fade // 2, p * seg - fade // 2 + fade)``. Reads outside the source (the first
  segment shifted left, the last one's continuation) use its mirror image (:func:`reflect_index`),
  so the fades never dip into silence.
  Because each shift depends on the previous one, boundaries are joined in sequence; each step
  is batched over clips and searches all ``2 S + 1`` shifts at once with an FFT.
  Constraints: ``fade <= seg`` and ``max_shift <= seg / 2`` (``UserError`` otherwise).

Every output sample outside the fades is therefore a sample of its slot's segment displaced by at
most ``max_shift_samples``, each segment is used exactly once, and a one-segment quilt is the
source itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from harness.errors import UserError

ORDERINGS = ("overath", "kim2024")

#: Per-ordering defaults (ms): Overath et al. 2015 (30-ms border, +-15 ms shifts, 30-ms fades) and
#: Kim et al. 2024 (log-mel with win = hop = 25 ms, a 2-frame border, +-12.5 ms shifts, 25-ms windows).
ORDERING_DEFAULTS = {
    "overath": dict(border_ms=30.0, max_shift_ms=15.0, fade_ms=30.0, win_ms=10.0, hop_ms=10.0, n_mels=64),
    "kim2024": dict(border_ms=50.0, max_shift_ms=12.5, fade_ms=25.0, win_ms=25.0, hop_ms=25.0, n_mels=64),
}

#: Kim et al.'s six segment sizes.
KIM_SEG_MS = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)


@dataclass
class Quilt:
    """A quilt (or a batch of quilts, with a leading clip axis on every array).

    Attributes
    ----------
    audio : np.ndarray, float32, shape (..., n_seg * seg_samples)
    order : np.ndarray, int64, shape (..., n_seg)
        Source segment index played in each output slot.
    shifts_samples : np.ndarray, int64, shape (..., n_seg)
        Slot ``p`` plays source samples from ``order[p] * seg_samples + shifts_samples[p]`` (0 for slot 0).
    seg_samples : int
    max_shift_samples : int
    fade_samples : int
    """

    audio: np.ndarray
    order: np.ndarray
    shifts_samples: np.ndarray
    seg_samples: int
    max_shift_samples: int
    fade_samples: int

    def __getitem__(self, i: int) -> "Quilt":
        return Quilt(self.audio[i], self.order[i], self.shifts_samples[i], self.seg_samples,
                     self.max_shift_samples, self.fade_samples)


@dataclass(frozen=True)
class QuiltParams:
    """Sample-domain parameters of one quilting run (see :func:`quilt_params`)."""

    seg_samples: int
    n_seg: int
    max_shift_samples: int
    fade_samples: int
    win_samples: int
    hop_samples: int
    border_frames: int
    n_mels: int
    ordering: str


def _ms_to_samples(ms: float, sr: int) -> int:
    return int(np.floor(ms * sr / 1000.0 + 0.5))


def quilt_params(n_samples: int, sr: int, seg_ms: float, ordering: str = "kim2024", *,
                 border_ms: float | None = None, max_shift_ms: float | None = None,
                 fade_ms: float | None = None, win_ms: float | None = None,
                 hop_ms: float | None = None, n_mels: int | None = None) -> QuiltParams:
    """Resolve ms parameters (``None`` = the ordering's paper default) into samples and validate them."""
    if ordering not in ORDERINGS:
        raise UserError(f"unknown quilt ordering {ordering!r}: choose one of {', '.join(ORDERINGS)}")
    d = ORDERING_DEFAULTS[ordering]
    border_ms = d["border_ms"] if border_ms is None else border_ms
    max_shift_ms = d["max_shift_ms"] if max_shift_ms is None else max_shift_ms
    fade_ms = d["fade_ms"] if fade_ms is None else fade_ms
    win_ms = d["win_ms"] if win_ms is None else win_ms
    hop_ms = d["hop_ms"] if hop_ms is None else hop_ms
    n_mels = d["n_mels"] if n_mels is None else int(n_mels)
    if sr <= 0:
        raise UserError(f"sample rate sr={sr} must be positive")
    seg = _ms_to_samples(seg_ms, sr)
    if seg < 2:
        raise UserError(f"seg_ms={seg_ms} is shorter than two samples at sr={sr}: use a longer segment")
    n_seg = n_samples // seg
    if n_seg < 1:
        raise UserError(f"seg_ms={seg_ms} ({seg} samples) is longer than the clip ({n_samples} samples): "
                        "use a shorter segment or a longer clip")
    fade = _ms_to_samples(fade_ms, sr)
    if fade < 0 or max_shift_ms < 0:
        raise UserError("fade_ms and max_shift_ms must be >= 0")
    if n_seg > 1 and fade > seg:
        raise UserError(f"seg_ms={seg_ms} is shorter than the cross-fade fade_ms={fade_ms}: "
                        "use a shorter fade or longer segments")
    shift = _ms_to_samples(max_shift_ms, sr)
    if n_seg > 1 and shift > seg // 2:
        raise UserError(f"max_shift_ms={max_shift_ms} is more than half of seg_ms={seg_ms}: "
                        "use a smaller shift or longer segments")
    win = max(2, _ms_to_samples(win_ms, sr))
    hop = max(1, _ms_to_samples(hop_ms, sr))
    win = min(win, seg)
    n_frames_border = max(1, int(np.floor(border_ms / hop_ms + 0.5)))
    max_frames = 1 + (seg - win) // hop
    n_frames_border = min(n_frames_border, max_frames)
    return QuiltParams(seg, n_seg, shift, fade, win, hop, n_frames_border, n_mels, ordering)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmax_hz: float = 8000.0) -> np.ndarray:
    """Triangular HTK-mel filterbank, shape (n_fft // 2 + 1, n_mels), float64, 0 Hz .. min(fmax, sr/2)."""
    fmax = min(fmax_hz, sr / 2.0)
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(0.0, mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, ce, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lo) / np.maximum(ce - lo, 1e-12)
    down = (hi - freqs[:, None]) / np.maximum(hi - ce, 1e-12)
    return np.clip(np.minimum(up, down), 0.0, None)


def raised_cosine(n: int) -> np.ndarray:
    """Fade-in weights ``0.5 - 0.5 cos(pi (k + 0.5) / n)``, k = 0..n-1 (the fade-out is ``1 - w``)."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / max(n, 1))


def reflect_index(n_samples: int, pad: int) -> np.ndarray:
    """Source index of each sample of a ``pad``-sample mirror extension on both sides (about the first
    and last samples, repeating for pads longer than the source): length ``n_samples + 2 * pad``."""
    i = np.abs(np.arange(-pad, n_samples + pad))
    if n_samples == 1:
        return np.zeros_like(i)
    period = 2 * (n_samples - 1)
    i = i % period
    return np.where(i >= n_samples, period - i, i)


def _shift_preference(max_shift: int) -> np.ndarray:
    """Candidate shift order 0, -1, +1, -2, +2, ... so that argmax ties go to the smallest |shift|."""
    s = np.arange(-max_shift, max_shift + 1)
    return s[np.lexsort((s, np.abs(s)))]


# --------------------------------------------------------------------------------------------
# fast batched path
# --------------------------------------------------------------------------------------------
def fft_size(win_samples: int) -> int:
    """Smallest 2,3-smooth FFT length >= ``win_samples`` (frames are zero-padded to it; odd prime
    lengths such as 551 are several times slower to transform)."""
    n = int(win_samples)
    while True:
        m = n
        for f in (2, 3):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def _border_features(x: torch.Tensor, p: QuiltParams, sr: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right border log-mels of every segment, each (n, n_seg, border_frames * n_mels)."""
    n = x.shape[0]
    seg, n_seg = p.seg_samples, p.n_seg
    blen = p.win_samples + (p.border_frames - 1) * p.hop_samples
    n_fft = fft_size(p.win_samples)
    segs = x[:, : n_seg * seg].reshape(n, n_seg, seg)
    window = torch.hann_window(p.win_samples, periodic=False, dtype=x.dtype, device=x.device)
    fb = torch.as_tensor(mel_filterbank(sr, n_fft, p.n_mels), dtype=x.dtype, device=x.device)
    parts = torch.stack([segs[..., :blen], segs[..., seg - blen:]])                    # (2, n, n_seg, blen)
    frames = parts.unfold(-1, p.win_samples, p.hop_samples) * window                   # (2, n, n_seg, B, win)
    spec = torch.fft.rfft(frames, n=n_fft, dim=-1)
    logmel = 10.0 * torch.log10((spec.real.square() + spec.imag.square()) @ fb + 1e-10)
    logmel = logmel.reshape(2, n, n_seg, -1)
    return logmel[0], logmel[1]


def _order_cost(left: torch.Tensor, right: torch.Tensor, ordering: str) -> torch.Tensor:
    """Cost (n, n_seg, n_seg) of appending segment j after segment i."""
    n_seg = left.shape[1]
    nxt = torch.arange(1, n_seg + 1, device=left.device).clamp(max=n_seg - 1)
    prv = torch.arange(n_seg, device=left.device)
    prv[-1] = n_seg - 2
    # target change vector d(i, i+1) = L_{i+1} - R_i ; for the last segment d(i-1, i)
    target = left[:, nxt] - right[:, prv]                                          # (n, n_seg, F)
    mode = "donot_use_mm_for_euclid_dist" if left.dtype == torch.float64 else "use_mm_for_euclid_dist"
    if ordering == "overath":
        # ||L_j - R_i - target_i|| = ||L_j - (R_i + target_i)||
        return torch.cdist(right + target, left, compute_mode=mode)
    change = torch.cdist(right, left, compute_mode=mode)                            # ||L_j - R_i||
    return (change - target.norm(dim=-1, keepdim=True)).abs()


def _mirror_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``x[:, reflect_index(n_samples, pad)]``, with torch's reflect padding when the pad is short enough."""
    if pad < x.shape[1]:
        return torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    return x[:, torch.as_tensor(reflect_index(x.shape[1], pad), device=x.device)]


def _source_windows(xp: torch.Tensor, p: QuiltParams, pad: int, length: int, offset: int) -> torch.Tensor:
    """View (n, n_seg + 1, length) of the padded source: window ``k`` starts at source sample
    ``k * seg + offset``."""
    first = pad + offset
    return xp[:, first: first + p.n_seg * p.seg_samples + length].unfold(1, length, p.seg_samples)


def _window_sum(z: torch.Tensor, F: int) -> torch.Tensor:
    """Sums of ``F`` consecutive samples along the last axis at every start (length - F + 1 of them)."""
    c = torch.cumsum(z, dim=-1)
    out = c[..., F - 1:].clone()
    out[..., 1:] -= c[..., :-F]
    return out


def _order_and_join(xp: torch.Tensor, costs: list, starts: list, params: list,
                    pad: int) -> list:
    """The greedy ordering and the boundary shifts, one boundary per step, batched over clips and
    over segment sizes (group ``g`` = ``params[g]``; all groups share the shift and fade lengths).

    At step ``q`` the next segment ``b`` is the unused one with the lowest cost after the current one
    (its original successor excluded unless it is the only one left), then its shift is the ``s`` in
    ``[-S, S]`` maximising the normalised cross-correlation between the previous slot's played
    continuation and ``x[b * seg + s - F//2 :][:F]``, for all ``2S + 1`` shifts at once by FFT.
    The loop runs ``max(n_seg) - 1`` steps for all sizes together.

    Returns
    -------
    list of (order, shifts), each (n, n_seg_g) int64, one per group.
    """
    n = xp.shape[0]
    # groups with more segments first, so that the rows still active at step q are a prefix
    rank = sorted(range(len(params)), key=lambda g: -params[g].n_seg)
    params = [params[g] for g in rank]
    costs = [costs[g] for g in rank]
    starts = [starts[g] for g in rank]
    G = len(params)
    S, F = params[0].max_shift_samples, params[0].fade_samples
    h = F // 2
    dev = xp.device
    M = params[0].n_seg
    B = G * n
    rows = torch.arange(B, device=dev)
    clip = rows % n
    seg_row = torch.tensor([p.seg_samples for p in params], device=dev).repeat_interleave(n)
    n_seg_row = torch.tensor([p.n_seg for p in params], device=dev).repeat_interleave(n)
    cost_all = torch.full((B, M, M), float("inf"), dtype=xp.dtype, device=dev)
    used = torch.ones((B, M), dtype=torch.bool, device=dev)
    for g, (p, c) in enumerate(zip(params, costs)):
        c = c.clone()
        forbid = torch.arange(p.n_seg - 1, device=dev)
        c[:, forbid, forbid + 1] = float("inf")              # the original successor, re-allowed when last
        cost_all[g * n:(g + 1) * n, : p.n_seg, : p.n_seg] = c
        used[g * n:(g + 1) * n, : p.n_seg] = False
    order = torch.zeros((B, M), dtype=torch.long, device=dev)
    shifts = torch.zeros((B, M), dtype=torch.long, device=dev)
    cur = torch.cat(list(starts))
    order[:, 0] = cur
    used[rows, cur] = True
    big = torch.tensor(float("inf"), dtype=xp.dtype, device=dev)
    ends = {p.n_seg - 1 for p in params}                       # steps at which some group places its last segment
    search = S > 0 and F > 0
    if search:
        n_fft = fft_size(2 * S + F)
        pref = torch.as_tensor(_shift_preference(S), device=dev)
        lag_index = pref + S
        tiny = 1e-20 if xp.dtype == torch.float64 else 1e-12
        heads_f = torch.zeros((B, M + 1, n_fft // 2 + 1), dtype=torch.fft.rfft(xp[:1, :2]).dtype, device=dev)
        inv_norm = torch.zeros((B, M + 1, 2 * S + 1), dtype=xp.dtype, device=dev)
        for g, p in enumerate(params):
            heads = _source_windows(xp, p, pad, 2 * S + F, -S - h)                  # (n, n_seg+1, 2S+F)
            energy = _window_sum(heads.square(), F)                                   # (n, n_seg+1, 2S+1)
            # 1/||head|| per candidate shift, in preference order (the continuation's norm does not move the argmax)
            inv_norm[g * n:(g + 1) * n, : p.n_seg + 1] = torch.where(
                energy > tiny, energy.clamp_min(tiny).rsqrt(), torch.zeros_like(energy))[..., lag_index]
            heads_f[g * n:(g + 1) * n, : p.n_seg + 1] = torch.fft.rfft(heads, n=n_fft)
        tails = xp.unfold(1, F, 1)                                                    # (n, positions, F) view
    k = B
    for q in range(1, M):
        while k > 0 and params[(k - 1) // n].n_seg <= q:       # drop groups that are complete
            k -= n
        r = rows[:k]
        prev = cur[:k]
        cur = torch.argmin(torch.where(used[:k], big, cost_all[r, prev]), dim=1)
        if q in ends:                                          # a group's last placement: the one unused segment
            cur = torch.where(n_seg_row[:k] - 1 == q, torch.argmin(used[:k].to(torch.int8), dim=1), cur)
        order[:k, q] = cur
        used[r, cur] = True
        if search:
            u = tails[clip[:k], (prev + 1) * seg_row[:k] + shifts[:k, q - 1] + (pad - h)]   # (k, F) continuation
            corr = torch.fft.irfft(torch.fft.rfft(u, n=n_fft).conj() * heads_f[r, cur], n=n_fft)
            shifts[:k, q] = pref[torch.argmax(corr[:, lag_index] * inv_norm[r, cur], dim=1)]
    out = [(order[g * n:(g + 1) * n, : p.n_seg], shifts[g * n:(g + 1) * n, : p.n_seg]) for g, p in enumerate(params)]
    back = [None] * G
    for i, g in enumerate(rank):
        back[g] = out[i]
    return back


def _assemble(xp: torch.Tensor, order: torch.Tensor, shifts: torch.Tensor, p: QuiltParams, pad: int) -> torch.Tensor:
    """Slot ``q`` plays ``x[order[q] * seg + shifts[q] + r]``; each boundary gets a raised-cosine
    cross-fade over output samples ``[q * seg - F//2, q * seg - F//2 + F)``."""
    n = xp.shape[0]
    seg, n_seg, F = p.seg_samples, p.n_seg, p.fade_samples
    h = F // 2
    rows = torch.arange(n, device=xp.device)[:, None]
    out = xp.unfold(1, seg, 1)[rows, order * seg + shifts + pad].reshape(n, n_seg * seg)
    if n_seg < 2 or F == 0:
        return out
    tails = xp.unfold(1, F, 1)
    u = tails[rows, (order[:, :-1] + 1) * seg + shifts[:, :-1] - h + pad]                # (n, nb, F)
    v = tails[rows, order[:, 1:] * seg + shifts[:, 1:] - h + pad]
    w = torch.as_tensor(raised_cosine(F), dtype=xp.dtype, device=xp.device)
    pos = (torch.arange(1, n_seg, device=xp.device) * seg - h)[:, None] + torch.arange(F, device=xp.device)
    out[:, pos.reshape(-1)] = (u + w * (v - u)).reshape(n, -1)
    return out


def _as_batch(x, device, dtype) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 2:
        raise UserError(f"quilt_batch expects audio of shape (n_clips, n_samples), got {tuple(t.shape)}: "
                        "stack equal-length mono clips")
    if not torch.is_floating_point(t):
        raise UserError("quilt audio must be floating point: convert int PCM with x / 32768.0")
    return t.to(device=device, dtype=dtype)


def start_segments(n_clips: int, n_seg: int, seed: int) -> np.ndarray:
    """Random first segment per clip: clip ``i`` uses ``np.random.default_rng([seed, i])``."""
    return np.array([np.random.default_rng([int(seed), i]).integers(n_seg) for i in range(n_clips)], dtype=np.int64)


def quilt_batch(x, sr: int, seg_ms: float, ordering: str = "kim2024", seed: int = 0,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **params) -> Quilt:
    """Quilt a batch of equal-length clips at once (the fast path).

    Parameters
    ----------
    x : array-like or torch.Tensor, float, shape (n_clips, n_samples)
        Mono waveforms at ``sr``.
    sr : int
        Sample rate in Hz.
    seg_ms : float
        Segment length in ms.
    ordering : {"overath", "kim2024"}
        Segment ordering rule (see the module docstring); also selects the default parameters.
    seed : int
        Seed of the random first segment (clip ``i`` uses ``default_rng([seed, i])``).
    device : str or torch.device
        Where to compute; the result is returned as numpy.
    dtype : torch.dtype
        Working precision. ``torch.float64`` reproduces :func:`reference_quilt_numpy` exactly;
        float32 (default, ~2x faster) can break near-ties in the ordering or the shift search
        differently.
    **params
        ``border_ms``, ``max_shift_ms``, ``fade_ms``, ``win_ms``, ``hop_ms``, ``n_mels``
        overriding the ordering's defaults (``ORDERING_DEFAULTS``).

    Returns
    -------
    Quilt
        With a leading clip axis; ``audio`` has ``n_seg * seg_samples`` samples.
    """
    return quilt_multi(x, sr, (seg_ms,), ordering, seed, device, dtype, **params)[float(seg_ms)]


def quilt_multi(x, sr: int, seg_ms=KIM_SEG_MS, ordering: str = "kim2024", seed: int = 0,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **params) -> dict:
    """Quilts of several segment sizes for a batch of clips: ``{float(seg_ms): Quilt}``.

    Identical to calling :func:`quilt_batch` per size (same seeds, same results) but the sequential
    join runs once for all sizes, ``max(n_seg) - 1`` steps instead of ``sum(n_seg - 1)``.
    """
    device = torch.device(device)
    xt = _as_batch(x, device, dtype)
    n = xt.shape[0]
    plist = [quilt_params(xt.shape[1], sr, ms, ordering, **params) for ms in seg_ms]
    out = {}
    multi = [p for p in plist if p.n_seg > 1]
    for ms, p in zip(seg_ms, plist):
        if p.n_seg == 1:
            out[float(ms)] = Quilt(xt[:, : p.seg_samples].to(torch.float32).cpu().numpy(),
                                   start_segments(n, 1, seed)[:, None], np.zeros((n, 1), np.int64),
                                   p.seg_samples, p.max_shift_samples, p.fade_samples)
    if multi:
        pad = multi[0].max_shift_samples + multi[0].fade_samples + max(p.seg_samples for p in multi)
        xp = _mirror_pad(xt, pad)
        costs = [_order_cost(*_border_features(xt, p, sr), ordering) for p in multi]
        starts = [torch.as_tensor(start_segments(n, p.n_seg, seed), device=device) for p in multi]
        joined = _order_and_join(xp, costs, starts, multi, pad)
        for ms, p, (order, shifts) in zip([ms for ms, p in zip(seg_ms, plist) if p.n_seg > 1], multi, joined):
            audio = _assemble(xp, order, shifts, p, pad)
            out[float(ms)] = Quilt(audio.to(torch.float32).cpu().numpy(), order.cpu().numpy(),
                                   shifts.cpu().numpy(), p.seg_samples, p.max_shift_samples, p.fade_samples)
    return {float(ms): out[float(ms)] for ms in seg_ms}


def quilt(x, sr: int, seg_ms: float, ordering: str = "kim2024", seed: int = 0,
          device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **params) -> Quilt:
    """Quilt one mono clip ``x`` (shape (n_samples,)); same as ``quilt_batch(x[None], ...)[0]``.

    See :func:`quilt_batch` for the parameters and the module docstring for the algorithm.
    """
    xa = x if isinstance(x, torch.Tensor) else np.asarray(x)
    if xa.ndim != 1:
        raise UserError(f"quilt expects one mono clip of shape (n_samples,), got {tuple(xa.shape)}: "
                        "use quilt_batch for several clips")
    return quilt_batch(xa[None], sr, seg_ms, ordering, seed, device, dtype, **params)[0]


# --------------------------------------------------------------------------------------------
# straightforward reference (benchmark baseline and regression oracle)
# --------------------------------------------------------------------------------------------
def reference_quilt_numpy(x: np.ndarray, sr: int, seg_ms: float, ordering: str = "kim2024",
                          seed: int = 0, clip_index: int = 0, **params) -> Quilt:
    """The same quilt, computed the straightforward way: one clip, loops over segments and boundaries,
    ``np.convolve`` for the cross-correlation at every boundary, float64 throughout.

    ``clip_index`` selects the start-segment seed stream (``default_rng([seed, clip_index])``) so the
    result can be compared with clip ``clip_index`` of :func:`quilt_batch`.
    """
    x = np.asarray(x, dtype=np.float64)
    p = quilt_params(x.shape[0], sr, seg_ms, ordering, **params)
    seg, n_seg, S, F = p.seg_samples, p.n_seg, p.max_shift_samples, p.fade_samples
    h = F // 2
    pad = S + F + seg
    xp = x[reflect_index(x.shape[0], pad)]
    start = int(np.random.default_rng([int(seed), int(clip_index)]).integers(n_seg))

    # border features, segment by segment
    window = np.hanning(p.win_samples)
    n_fft = fft_size(p.win_samples)
    fb = mel_filterbank(sr, n_fft, p.n_mels)
    blen = p.win_samples + (p.border_frames - 1) * p.hop_samples

    def logmel(chunk):
        frames = np.stack([chunk[i * p.hop_samples: i * p.hop_samples + p.win_samples]
                           for i in range(p.border_frames)])
        return (10.0 * np.log10(np.abs(np.fft.rfft(frames * window, n=n_fft, axis=-1)) ** 2 @ fb + 1e-10)).ravel()

    left = [logmel(x[k * seg: k * seg + blen]) for k in range(n_seg)]
    right = [logmel(x[(k + 1) * seg - blen: (k + 1) * seg]) for k in range(n_seg)]

    # greedy ordering
    order = [start]
    used = {start}
    while len(order) < n_seg:
        i = order[-1]
        target = left[i + 1] - right[i] if i + 1 < n_seg else left[i] - right[i - 1]
        best, best_cost = -1, np.inf
        for j in range(n_seg):
            if j in used or (j == i + 1 and n_seg - len(order) > 1):
                continue
            d = left[j] - right[i]
            c = (np.linalg.norm(d - target) if ordering == "overath"
                 else abs(np.linalg.norm(d) - np.linalg.norm(target)))
            if c < best_cost:
                best, best_cost = j, c
        order.append(best)
        used.add(best)

    # boundary shifts, one boundary at a time against the previous slot's played continuation
    shifts = [0]
    pref = _shift_preference(S)
    for q in range(1, n_seg):
        if S == 0 or F == 0:
            shifts.append(0)
            continue
        a, b = order[q - 1], order[q]
        u = xp[(a + 1) * seg + shifts[-1] - h + pad: (a + 1) * seg + shifts[-1] - h + pad + F]
        v = xp[b * seg - S - h + pad: b * seg + S - h + F + pad]
        corr = np.convolve(v, u[::-1], mode="valid")                      # corr[s + S] = sum u * v[s + S:][:F]
        vv = np.convolve(v * v, np.ones(F), mode="valid")
        # normalised by the head's norm only: the continuation's norm is the same for every shift
        ncc = np.where(vv > 1e-20, corr / np.sqrt(np.maximum(vv, 1e-20)), 0.0)
        shifts.append(int(pref[np.argmax(ncc[pref + S])]))

    # assembly: copy each slot's (shifted) segment, then cross-fade across each boundary
    out = np.zeros(n_seg * seg)
    w = raised_cosine(F)
    for q in range(n_seg):
        lo = order[q] * seg + shifts[q] + pad
        out[q * seg:(q + 1) * seg] = xp[lo: lo + seg]
    for q in range(1, n_seg):
        if F == 0:
            break
        a, b = order[q - 1], order[q]
        ua = (a + 1) * seg + shifts[q - 1] - h + pad
        vb = b * seg + shifts[q] - h + pad
        out[q * seg - h: q * seg - h + F] = (1 - w) * xp[ua: ua + F] + w * xp[vb: vb + F]
    return Quilt(out.astype(np.float32), np.array(order, dtype=np.int64), np.array(shifts, dtype=np.int64),
                 seg, S, F)


# --------------------------------------------------------------------------------------------
# the quilt-response pipeline helper and the benchmark
# --------------------------------------------------------------------------------------------
def cut_and_zero(x, sr: int, keep_s: float = 8.0, total_s: float = 10.0) -> np.ndarray:
    """Kim et al.'s framing: keep the first ``keep_s`` seconds, zero-pad (or cut) to ``total_s``.

    8 s is a whole number of segments for every size 50-1600 ms, so quilts of every size fill the
    same 8 s and the last 2 s are silent, as in the original condition.
    """
    x = np.asarray(x, dtype=np.float32)
    keep, total = int(round(keep_s * sr)), int(round(total_s * sr))
    if keep > total:
        raise UserError(f"keep_s={keep_s} exceeds total_s={total_s}: keep at most the total length")
    out = np.zeros(x.shape[:-1] + (total,), dtype=np.float32)
    k = min(keep, x.shape[-1])
    out[..., :k] = x[..., :k]
    return out


def quilt_stimuli(x, sr: int, seg_ms=KIM_SEG_MS, ordering: str = "kim2024", seed: int = 0,
                  device: str | torch.device = "cpu", cut_s: float | None = 8.0, total_s: float | None = 10.0,
                  **params) -> dict:
    """Quilts of several segment sizes for the quilt-response analysis.

    Parameters
    ----------
    x : array-like, shape (n_clips, n_samples)
    seg_ms : sequence of float
        Segment sizes in ms.
    cut_s, total_s : float or None
        With both set (Kim et al.: 8 and 10), quilt the first ``cut_s`` seconds and zero-pad every
        stimulus, including the ``"original"``, to ``total_s``. With ``None``, quilt the whole clip and
        zero-pad each quilt back to the input length.

    Returns
    -------
    dict
        ``{"original": (n, samples), seg_ms: (n, samples) for each size}``, float32, and
        ``"quilts": {seg_ms: Quilt}`` with orders and shifts.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise UserError(f"quilt_stimuli expects (n_clips, n_samples), got {x.shape}")
    if (cut_s is None) != (total_s is None):
        raise UserError("set both cut_s and total_s (Kim et al.: 8 and 10) or neither")
    if cut_s is not None:
        source = cut_and_zero(x, sr, cut_s, cut_s)
        frame = lambda a: cut_and_zero(a, sr, cut_s, total_s)  # noqa: E731
    else:
        source = x
        frame = lambda a: np.pad(a, ((0, 0), (0, x.shape[1] - a.shape[1])))  # noqa: E731
    out = {"original": frame(source), "quilts": {}}
    for ms, qb in quilt_multi(source, sr, seg_ms, ordering, seed, device, **params).items():
        out[ms] = frame(qb.audio)
        out["quilts"][ms] = qb
    return out


def benchmark_quilting(n_clips: int = 16, sr: int = 22050, clip_s: float = 10.0,
                       seg_ms=KIM_SEG_MS, ordering: str = "kim2024", n_reference_clips: int = 1,
                       repeats: int = 3, device: str | torch.device = "cpu", n_threads: int | None = 1,
                       seed: int = 0) -> dict:
    """Time the batched quilter against :func:`reference_quilt_numpy` on synthetic clips.

    Both build every size in ``seg_ms`` (all six Kim et al. sizes by default) for each clip. The
    fast path quilts all ``n_clips`` clips and all sizes in one :func:`quilt_multi` call; the
    reference runs on ``n_reference_clips`` clips, one size at a time (it is slow). The two are timed alternately ``repeats`` times and the medians are compared, so a
    machine shared with other jobs biases both alike.

    Returns
    -------
    dict
        ``ms_per_clip_fast``, ``ms_per_clip_reference``, ``speedup`` (reference / fast, medians), the
        per-repeat times, the settings and ``agreement`` (fraction of the reference clips' orders and
        shifts that the fast path reproduced).
    """
    old_threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        rng = np.random.default_rng(seed)
        n = int(round(clip_s * sr))
        t = np.arange(n) / sr
        f0 = rng.uniform(100, 800, size=(n_clips, 1))
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4, size=(n_clips, 1)) * t)
        x = (env * np.sin(2 * np.pi * f0 * t) + 0.3 * rng.standard_normal((n_clips, n))).astype(np.float32)
        n_ref = max(1, min(n_reference_clips, n_clips))
        quilt_batch(x[:2, : sr], sr, seg_ms[0], ordering, seed, device)           # warm-up
        t_fast, t_ref = [], []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            fast = quilt_multi(x, sr, seg_ms, ordering, seed, device)
            t_fast.append((time.perf_counter() - t0) / n_clips)
            t0 = time.perf_counter()
            ref = {(i, ms): reference_quilt_numpy(x[i], sr, ms, ordering, seed, clip_index=i)
                   for i in range(n_ref) for ms in seg_ms}
            t_ref.append((time.perf_counter() - t0) / n_ref)
    finally:
        torch.set_num_threads(old_threads)
    same_order = np.mean([np.array_equal(ref[i, ms].order, fast[float(ms)].order[i]) for (i, ms) in ref])
    same_shift = np.mean(np.concatenate([ref[i, ms].shifts_samples == fast[float(ms)].shifts_samples[i]
                                         for (i, ms) in ref]))
    fast_ms, ref_ms = 1e3 * float(np.median(t_fast)), 1e3 * float(np.median(t_ref))
    return dict(ms_per_clip_fast=fast_ms, ms_per_clip_reference=ref_ms, speedup=ref_ms / fast_ms,
                fast_ms_per_repeat=[1e3 * v for v in t_fast], reference_ms_per_repeat=[1e3 * v for v in t_ref],
                n_clips=n_clips, n_reference_clips=n_ref, sr=sr, clip_s=clip_s, seg_ms=tuple(seg_ms),
                ordering=ordering, device=str(device), n_threads=n_threads,
                agreement=dict(order=float(same_order), shifts=float(same_shift)))
