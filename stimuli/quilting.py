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
  The ordering does not depend on the shifts, so it is found first. Each shift depends on the
  previous one, so boundaries are then joined in sequence, but only the continuation's FFT and an
  arg-max are left per step: the heads of all boundaries (all clips, all sizes) are transformed up
  front in cache-sized blocks, and each step searches all ``2 S + 1`` shifts of every clip and
  size at once. The step's two small FFTs run on MKL descriptors committed once (:class:`_RealFFT`;
  the same numbers as ``torch.fft``, which commits a new descriptor on every call).
  Constraints: ``fade <= seg`` and ``max_shift <= seg / 2`` (``UserError`` otherwise).

Every output sample outside the fades is therefore a sample of its slot's segment displaced by at
most ``max_shift_samples``, each segment is used exactly once, and a one-segment quilt is the
source itself.

One clip at one size (:func:`quilt`)
------------------------------------
The batched path's torch calls each cost microseconds of dispatch whatever their size, which a batch
of clips and sizes shares but a single quilt pays alone (one call to :func:`quilt_batch` per
size for one 10-s clip was only about 1.2-2x the lean NumPy reference). :func:`quilt` therefore runs
one clip on compiled numba kernels (:mod:`stimuli._quilt_kernels`): a handful of calls per quilt,
each looping over the samples, the FFTs on the same MKL descriptors, the mel weighting, ``log10``
and distances still in torch on the batched path's shapes, so that its orders, shifts and audio are
the batched path's bit for bit (see that module for why each step rounds the same). Without numba
or MKL it is the batched path.
"""
from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
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


#: Elements per working buffer (4 M: 16 MB in float32) when the features and the shift search run in
#: chunks; large one-shot temporaries cost more in page faults and cache misses than the chunk loop.
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# batched real FFTs with reusable plans
# --------------------------------------------------------------------------------------------
# torch's CPU FFTs run on the MKL DFTI library that libtorch_cpu bundles, but every call builds and
# commits a fresh DFTI descriptor: about 20 us per call whatever the batch, more than the transform
# of 16 rows of 1152 samples takes. The sequential join makes two small FFT calls per step (hundreds
# per quilt_multi), so _RealFFT keeps committed descriptors, configured exactly as torch configures
# them (so the results are the same bits; each new descriptor is checked against torch.fft once and
# torch.fft is used if anything differs or the library is not there).
_DFTI = {"lib": None, "ok": True}
_DFTI_PLANS = threading.local()          # per thread: {(n, rows, forward, double, threads): _DftiDescriptor}
_DFTI_MAX_PLANS = 64
# mkl_dfti.h: configuration parameters and values
_DFTI_BACKWARD_SCALE, _DFTI_NUMBER_OF_TRANSFORMS = 5, 7
_DFTI_CONJUGATE_EVEN_STORAGE, _DFTI_PLACEMENT = 10, 11
_DFTI_INPUT_STRIDES, _DFTI_OUTPUT_STRIDES, _DFTI_INPUT_DISTANCE, _DFTI_OUTPUT_DISTANCE = 12, 13, 14, 15
_DFTI_REAL, _DFTI_COMPLEX_COMPLEX, _DFTI_NOT_INPLACE = 33, 39, 44


def _dfti_library():
    """ctypes handle of the DFTI functions in libtorch_cpu, or None (not an MKL build, no symbols)."""
    if _DFTI["lib"] is None:
        _DFTI["lib"] = False
        try:
            if torch.backends.mkl.is_available():
                lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
                for name in ("DftiCreateDescriptor_s_1d", "DftiCreateDescriptor_d_1d", "DftiSetValue",
                             "DftiCommitDescriptor", "DftiComputeForward", "DftiComputeBackward",
                             "DftiFreeDescriptor"):
                    getattr(lib, name)
                lib.DftiComputeForward.argtypes = lib.DftiComputeBackward.argtypes = (ctypes.c_void_p,) * 3
                _DFTI["lib"] = lib
        except (OSError, AttributeError):                              # pragma: no cover (other builds)
            pass
    return _DFTI["lib"] or None


class _DftiDescriptor:
    """A committed DFTI descriptor (``handle``), freed when the last reference to it goes."""

    def __init__(self, lib, handle: ctypes.c_void_p):
        self.lib, self.handle = lib, handle

    def __del__(self):
        try:
            self.lib.DftiFreeDescriptor(ctypes.byref(self.handle))
        except Exception:                                              # pragma: no cover (interpreter exit)
            pass


def _dfti_plan(n: int, rows: int, forward: bool, double: bool) -> tuple:
    """``(descriptor, new)``: a committed descriptor for ``rows`` contiguous real rows of length ``n``
    (forward: to ``n // 2 + 1`` contiguous complex bins per row; backward: from them, scaled by
    ``1 / n``), or None, and whether it was made by this call (not found in the cache).

    The settings are those of torch's ``_plan_mkl_fft`` for a batched 1-D transform along the last
    axis of contiguous tensors. Descriptors are cached per thread and torch thread count."""
    key = (n, rows, forward, double, torch.get_num_threads())
    plans = _DFTI_PLANS.__dict__.setdefault("plans", {})
    if key in plans:
        return plans[key], False
    lib = _dfti_library()
    if lib is None:
        return None, False
    L = ctypes.c_long
    handle = ctypes.c_void_p()
    create = lib.DftiCreateDescriptor_d_1d if double else lib.DftiCreateDescriptor_s_1d
    settings = [(_DFTI_PLACEMENT, L(_DFTI_NOT_INPLACE)), (_DFTI_NUMBER_OF_TRANSFORMS, L(rows)),
                (_DFTI_INPUT_DISTANCE, L(n if forward else n // 2 + 1)),
                (_DFTI_OUTPUT_DISTANCE, L(n // 2 + 1 if forward else n)),
                (_DFTI_INPUT_STRIDES, (L * 2)(0, 1)), (_DFTI_OUTPUT_STRIDES, (L * 2)(0, 1)),
                (_DFTI_CONJUGATE_EVEN_STORAGE, L(_DFTI_COMPLEX_COMPLEX))]
    if not forward:
        settings.append((_DFTI_BACKWARD_SCALE, ctypes.c_double(1.0 / n)))   # irfft's default "backward" norm
    status = create(ctypes.byref(handle), L(_DFTI_REAL), L(n))
    plan = _DftiDescriptor(lib, handle) if handle.value else None
    for param, value in settings:
        status = status or lib.DftiSetValue(handle, L(param), value)
    status = status or lib.DftiCommitDescriptor(handle)
    if status:
        return None, False
    if len(plans) >= _DFTI_MAX_PLANS:              # drop the oldest (freed once no bound transform uses it)
        plans.pop(next(iter(plans)))
    plans[key] = plan
    return plan, True


class _RealFFT:
    """``rfft`` / ``irfft`` (torch's default norms) of length ``n`` along the last axis of contiguous
    2-D tensors, written into given contiguous ``out`` tensors.

    On the CPU in float32 / float64 the transforms run on cached DFTI descriptors (see above), each
    checked once against ``torch.fft`` on random rows; otherwise, and after any mismatch, they are
    ``torch.fft.rfft`` / ``irfft`` calls.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device):
        self.n = n
        self.double = dtype == torch.float64
        self.spectrum_dtype = torch.complex128 if self.double else torch.complex64
        self.direct = device.type == "cpu" and dtype in (torch.float32, torch.float64) and _DFTI["ok"]
        self.plans = {}                                               # (rows, forward) -> descriptor

    def _plan(self, rows: int, forward: bool):
        plan = self.plans.get((rows, forward))
        if plan is not None:
            return plan
        plan, fresh = _dfti_plan(self.n, rows, forward, self.double)
        if plan is not None and fresh:                                # one check per new descriptor
            g = torch.Generator().manual_seed(rows)
            dtype = torch.float64 if self.double else torch.float32
            x = torch.randn((rows, self.n), generator=g, dtype=dtype)
            if forward:
                got, want = torch.empty((rows, self.n // 2 + 1), dtype=self.spectrum_dtype), torch.fft.rfft(x)
            else:
                x = torch.fft.rfft(x)
                got, want = torch.empty((rows, self.n), dtype=dtype), torch.fft.irfft(x, n=self.n)
            self._compute(plan, forward, x, got)()
            if not torch.equal(got, want):                            # pragma: no cover (other MKL setups)
                _DFTI["ok"] = False
                plan = None
        if plan is None:
            self.direct = False
        else:
            self.plans[rows, forward] = plan
        return plan

    def _check(self, x: torch.Tensor, out: torch.Tensor, forward: bool) -> None:
        rows, bins = x.shape[0], self.n // 2 + 1
        shapes = ((rows, self.n), (rows, bins)) if forward else ((rows, bins), (rows, self.n))
        if (tuple(x.shape), tuple(out.shape)) != shapes or not (x.is_contiguous() and out.is_contiguous()):
            raise ValueError(f"_RealFFT: expected contiguous {shapes}, got {tuple(x.shape)}, {tuple(out.shape)}")

    @staticmethod
    def _compute(plan, forward: bool, x: torch.Tensor, out: torch.Tensor):
        """A function of no arguments running ``plan`` from ``x`` into ``out`` (it keeps all three alive)."""
        compute = plan.lib.DftiComputeForward if forward else plan.lib.DftiComputeBackward
        args = (plan.handle, x.data_ptr(), out.data_ptr())

        def run():
            if compute(*args):
                raise RuntimeError("MKL DFTI compute failed")          # pragma: no cover
            return out, x, plan
        return run

    def bind(self, x: torch.Tensor, out: torch.Tensor, forward: bool = True):
        """A function of no arguments that writes ``rfft(x)`` (``forward``) or ``irfft(x, n)`` into
        ``out``, with the checks and the descriptor look-up done once: for a transform repeated on
        the same buffers (the join's steps). The function keeps ``x``, ``out`` and the descriptor alive."""
        plan = self._plan(x.shape[0], forward) if self.direct else None
        if plan is None:
            n = self.n
            if forward:
                return lambda: torch.fft.rfft(x, out=out)
            return lambda: torch.fft.irfft(x, n=n, out=out)
        self._check(x, out, forward)
        return self._compute(plan, forward, x, out)

    def rfft(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out[...] = torch.fft.rfft(x)``; ``x`` (rows, n) and ``out`` (rows, n // 2 + 1) contiguous."""
        self.bind(x, out, True)()
        return out

    def irfft(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out[...] = torch.fft.irfft(x, n)``; ``x`` (rows, n // 2 + 1) and ``out`` (rows, n) contiguous.
        ``x`` may be overwritten (MKL's complex-to-real transforms may use their input as work space)."""
        self.bind(x, out, False)()
        return out


def _row_argmax(device: torch.device):
    """``t -> t.argmax(dim=1)`` as a numpy array (the first maximum of each row); on the CPU through
    numpy, whose SIMD arg-max is several times faster than torch's for a few hundred columns."""
    if device.type != "cpu":
        return lambda t: torch.argmax(t, dim=1).cpu().numpy()
    return lambda t: t.numpy().argmax(axis=1)


def _frame_progressions(plist: list, members: list) -> tuple:
    """The border frames of the sizes ``plist[g]``, ``g`` in ``members`` (same window), as arithmetic
    progressions of start samples ``start + k * seg``, ``k < n_seg`` (one per size, border side and
    frame), those that a progression of a divisor ``seg`` already covers dropped.

    Returns
    -------
    progressions : list of (start, step, count, first_row)
        The frames to compute, in rows ``first_row .. first_row + count`` of the frame table.
    rows : dict
        ``g -> (2, n_seg, border_frames)`` int64 array: the table row of each left / right border
        frame of every segment of size ``g``.
    """
    kept, rows, n_rows = [], {}, 0
    for g in sorted(members, key=lambda g: plist[g].seg_samples):
        p = plist[g]
        blen = p.win_samples + (p.border_frames - 1) * p.hop_samples
        at = np.empty((2, p.n_seg, p.border_frames), dtype=np.int64)
        for side, first in enumerate((0, p.seg_samples - blen)):
            for f in range(p.border_frames):
                start, k = first + f * p.hop_samples, np.arange(p.n_seg)
                for s0, step, count, r0 in kept:
                    if (p.seg_samples % step == 0 and start >= s0 and (start - s0) % step == 0
                            and start + (p.n_seg - 1) * p.seg_samples <= s0 + (count - 1) * step):
                        at[side, :, f] = r0 + (start - s0) // step + k * (p.seg_samples // step)
                        break
                else:
                    kept.append((start, p.seg_samples, p.n_seg, n_rows))
                    at[side, :, f] = n_rows + k
                    n_rows += p.n_seg
        rows[g] = at
    return kept, rows


@functools.lru_cache(maxsize=64)
def _feature_constants(sr: int, win: int, n_mels: int, dtype: torch.dtype, device: torch.device) -> tuple:
    """``(window, fb, lo, hi)`` of the border features: the Hann window of ``win`` samples and rows
    ``lo:hi`` of the mel filterbank, the FFT bins that it weights (bins above min(8 kHz, sr/2)
    weigh nothing), as tensors. Cached (a one-clip quilt spent a tenth of its time rebuilding them):
    callers must not modify them."""
    window = torch.hann_window(win, periodic=False, dtype=dtype, device=device)
    fb = mel_filterbank(sr, fft_size(win), n_mels)
    weighted = np.flatnonzero(fb.any(axis=1))
    lo, hi = (int(weighted[0]), int(weighted[-1]) + 1) if weighted.size else (0, 1)
    return window, torch.as_tensor(fb[lo:hi], dtype=dtype, device=device), lo, hi


def _border_features(x: torch.Tensor, plist: list, sr: int) -> list:
    """Left and right border log-mels of every segment for each of ``plist``: a list of
    ``(left, right)``, each (n, n_seg, border_frames * n_mels).

    Sizes whose frames fall on the same samples (e.g. 100, 200, ... ms: multiples of one another)
    share them (:func:`_frame_progressions`): each such frame is windowed, zero-padded, transformed
    and mel-weighted once. The frames of a progression are read through a strided view of the
    clips, a clip or a few at a time, into a frame buffer reused across chunks; only the FFT bins
    that the mel filters weight are squared and summed."""
    n = x.shape[0]
    out = [None] * len(plist)
    keys = sorted({(p.win_samples, p.n_mels) for p in plist})
    for win, n_mels in keys:
        members = [g for g, p in enumerate(plist) if (p.win_samples, p.n_mels) == (win, n_mels)]
        progressions, rows = _frame_progressions(plist, members)
        n_rows = sum(count for _, _, count, _ in progressions)
        n_fft = fft_size(win)
        window, fb, lo, hi = _feature_constants(sr, win, n_mels, x.dtype, x.device)
        # clips in chunks, so that the frame buffer, its spectrum and the power spectrum (all live at
        # once) stay cache-sized: a quarter of _CHUNK_ELEMENTS, about one 10-s clip at 22,050 Hz.
        # Only the zero padding of the frame buffer needs clearing, the frames overwrite the rest.
        chunk = max(1, (_CHUNK_ELEMENTS // 4) // (n_rows * n_fft))
        buf = torch.empty((min(n, chunk), n_rows, n_fft), dtype=x.dtype, device=x.device)
        buf[..., win:] = 0
        # the frames' spectra go to one buffer reused across chunks (a fresh one per chunk costs
        # page faults and cache misses)
        fft = _RealFFT(n_fft, x.dtype, x.device)
        spec_buf = torch.empty((min(n, chunk) * n_rows, n_fft // 2 + 1),
                               dtype=fft.spectrum_dtype, device=x.device)
        power_buf = torch.empty((min(n, chunk), n_rows, hi - lo), dtype=x.dtype, device=x.device)
        logmel = torch.empty((n, n_rows, n_mels), dtype=x.dtype, device=x.device)
        for c0 in range(0, n, chunk):
            b = buf[: min(n, c0 + chunk) - c0]
            for start, step, count, r0 in progressions:
                frames = x[c0: c0 + chunk, start: start + (count - 1) * step + win].unfold(1, win, step)
                torch.mul(frames, window, out=b[:, r0: r0 + count, :win])
            rows_b = b.shape[0] * n_rows
            spec = fft.rfft(b.reshape(rows_b, n_fft), out=spec_buf[:rows_b]).view(b.shape[0], n_rows, -1)
            spec = torch.view_as_real(spec)[..., lo:hi, :]
            spec.mul_(spec)
            power = torch.add(spec[..., 0], spec[..., 1], out=power_buf[: b.shape[0]])
            lm = logmel[c0: c0 + chunk]
            torch.matmul(power, fb, out=lm)
            lm.add_(1e-10).log10_().mul_(10.0)
        for g in members:
            lm = logmel[:, torch.as_tensor(rows[g], device=x.device)].reshape(n, 2, plist[g].n_seg, -1)
            out[g] = (lm[:, 0], lm[:, 1])
    return out


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
    return change.sub_(target.norm(dim=-1, keepdim=True)).abs_()


def _mirror_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``x[:, reflect_index(n_samples, pad)]``, by concatenating mirrored copies when the pad is short enough."""
    if pad < x.shape[1]:      # mirrored copies (torch's reflection_pad1d kernel is several times slower)
        return torch.cat([x[:, 1: pad + 1].flip(1), x, x[:, -pad - 1: -1].flip(1)], dim=1)
    return x[:, torch.as_tensor(reflect_index(x.shape[1], pad), device=x.device)]


def _window_sum(c: torch.Tensor, F: int) -> torch.Tensor:
    """Sums of ``F`` consecutive samples along the last axis at every start, from a work buffer ``c``
    whose column 0 is zero and whose columns 1.. hold the samples (``length - F + 1`` sums).

    The buffer is overwritten by its running sum (the same numbers as ``cumsum`` of the samples,
    whose running sum is kept in double on the CPU); each window sum is then one difference.
    """
    c.cumsum_(dim=-1)
    return c[..., F:] - c[..., : c.shape[-1] - F]


def _spectrum_buffer(rows: int, bins: int, dtype: torch.dtype, device: torch.device) -> tuple:
    """``(spectra, flat)``: a contiguous (rows, bins) complex buffer and the flat storage under it,
    16 zeroed elements longer, for :func:`_padded_product`."""
    flat = torch.empty(rows * bins + 16, dtype=dtype, device=device)
    flat[rows * bins:] = 0
    return flat[: rows * bins].view(rows, bins), flat


def _padded_product(flat_a: torch.Tensor, a0: int, flat_b: torch.Tensor, b0: int, count: int) -> None:
    """``flat_a[a0 : a0 + count] *= flat_b[b0 : b0 + count]``, run over ``count`` rounded up to a
    multiple of 16 elements (the extra ones are slack of :func:`_spectrum_buffer`).

    Whole 16-element blocks keep torch's complex product in its vector loop, which rounds each
    of ``ar br, ai bi, ar bi, ai br`` and then their sum or difference; its scalar remainder loop is
    compiled with fused multiply-adds and rounds differently. So every element is rounded as by the
    one-clip kernel (:func:`stimuli._quilt_kernels.shift_search`), and one boundary's correlation
    does not depend on where its row falls in the batch (with one torch thread: several split the
    loop at other places)."""
    m = -(-count // 16) * 16
    flat_a[a0: a0 + m].mul_(flat_b[b0: b0 + m])


def _order_and_join(xp: torch.Tensor, costs: list, starts: list, params: list,
                    pad: int) -> list:
    """The greedy ordering, then the boundary shifts, batched over clips and segment sizes (group
    ``g`` = ``params[g]``; all groups share the shift and fade lengths).

    The ordering does not depend on the shifts, so it runs first: at step ``q`` the next segment is
    the unused one with the lowest cost after the current one (its original successor excluded
    unless it is the only one left). Then, knowing every boundary's pair of segments, the heads
    ``x[b * seg - S - F//2 :][:2S + F]`` of all boundaries of all clips and sizes are transformed,
    with their per-shift norms, in batched FFTs over blocks of steps (cache-sized, ``_CHUNK_ELEMENTS``).
    Only what depends on the previous shift stays in the sequential loop: the continuation ``u`` (``F`` samples from ``(a + 1) * seg + s_prev - F//2``),
    one FFT of it per boundary, and the arg-max over the ``2S + 1`` normalised correlations. Rows
    are laid out step-major, so step ``q`` reads one contiguous slice. The loops run
    ``max(n_seg) - 1`` steps for all sizes together.

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
    n_active = [n * sum(p.n_seg > q for p in params) for q in range(M)]   # rows still placing at step q

    # ---- greedy ordering (independent of the shifts): a walk of small arg-mins, run on the host ----
    # The cost rows of all matrices are stacked in ``cost_rows`` (sum of n * n_seg rows, M columns):
    # row b's matrix (group g, clip c) starts at row ``row_start[b]`` (its group's first row plus
    # c * n_seg), so its costs after segment i are cost_rows[row_start[b] + i]. Columns beyond a
    # group's n_seg are zero and barred. ``barred`` (B, M) is 0 for an unused segment and +inf for a
    # used one: adding it to a row of costs bars the used ones (cost + inf = inf, cost + 0 = cost
    # exactly), one plain SIMD add where a masked copy was slower
    dtype = torch.empty(0, dtype=xp.dtype).numpy().dtype
    group_rows = np.array([n * p.n_seg for p in params])
    cost_rows = np.empty((int(group_rows.sum()), M), dtype=dtype)
    barred = np.full((B, M), np.inf, dtype=dtype)
    rows_np = np.arange(B)
    row_start = (np.repeat(np.cumsum(group_rows) - group_rows, n)
                 + (rows_np % n) * np.repeat([p.n_seg for p in params], n))
    for g, (p, c) in enumerate(zip(params, costs)):
        rows_g = cost_rows[row_start[g * n]: row_start[g * n] + n * p.n_seg].reshape(n, p.n_seg, M)
        block = rows_g[:, :, : p.n_seg]
        block[...] = c.cpu().numpy()
        rows_g[:, :, p.n_seg:] = 0.0                           # finite, so that barring gives inf, not NaN
        forbid = np.arange(p.n_seg - 1)
        block[:, forbid, forbid + 1] = np.inf               # the original successor, re-allowed when last
        barred[g * n:(g + 1) * n, : p.n_seg] = 0.0
    last_at = np.repeat([p.n_seg - 1 for p in params], n)   # the step at which each row places its last segment
    order_np = np.zeros((B, M), dtype=np.int64)
    cur = torch.cat(list(starts)).cpu().numpy()
    order_np[:, 0] = cur
    barred_flat, bar_base = barred.reshape(-1), rows_np * M  # row b's bar on segment j: barred_flat[b * M + j]
    barred_flat[bar_base + cur] = np.inf
    ends = {p.n_seg - 1 for p in params}                       # steps at which some group places its last segment
    for q in range(1, M):
        k = n_active[q]
        step_cost = cost_rows.take(row_start[:k] + cur[:k], axis=0)                    # (k, M) copy
        step_cost += barred[:k]
        cur = step_cost.argmin(axis=1)                         # first minimum: ties go to the lowest index
        if q in ends:                                          # a group's last placement: the one unused segment
            cur = np.where(last_at[:k] == q, barred[:k].argmin(axis=1), cur)
        order_np[:k, q] = cur
        barred_flat[bar_base[:k] + cur] = np.inf
    order = torch.as_tensor(order_np, device=dev)

    # ---- boundary shifts ----
    shifts = torch.zeros((B, M), dtype=torch.long, device=dev)
    if S > 0 and F > 0 and M > 1:
        W = 2 * S + F                                          # head length: shifts -S .. S of F samples
        n_fft = fft_size(W)
        pref_np = _shift_preference(S)
        lag_pref = torch.as_tensor(pref_np + S, device=dev)    # lags (shift + S) in preference order
        neg_lag_pref = (n_fft - lag_pref) % n_fft               # where irfft(U conj(H)) holds those lags
        tiny = 1e-20 if xp.dtype == torch.float64 else 1e-12
        # boundary bookkeeping on the host (numpy): a few hundred small index operations are
        # several times cheaper there than as torch calls
        counts = np.array(n_active[1:])
        offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
        step_np = np.repeat(np.arange(1, M), counts)                                  # boundary -> step q
        row_np = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)             # boundary -> row
        seg_np = seg_row.cpu().numpy()[row_np]
        clip_np = clip.cpu().numpy()
        head_at = order_np[row_np, step_np] * seg_np + (pad - S - h)                  # head at shift -S
        tail_at = (order_np[row_np, step_np - 1] + 1) * seg_np + (pad - h)            # continuation at shift 0
        # heads and continuations are read by row from flat window views of the (contiguous) padded
        # clips, straight into the FFT buffers: index_select with out= skips the intermediate copy
        # of a gather. tail_flat[i] is boundary i's continuation start at shift 0 in the flat clips.
        head_rows = xp.reshape(-1).unfold(0, W, 1)
        head_idx = torch.as_tensor(clip_np[row_np] * xp.shape[1] + head_at, device=dev)
        tail_rows = xp.reshape(-1).unfold(0, F, 1)
        tail_flat = clip_np[row_np] * xp.shape[1] + tail_at
        first_argmax = _row_argmax(dev)
        # heads are transformed a block of steps at a time (at least one step; about 1 MB per
        # buffer, so that the heads, their spectra and their norms stay in a core's L2 cache)
        block_rows = max(n_active[1], _CHUNK_ELEMENTS // (16 * n_fft))
        h_buf = torch.empty((block_rows, n_fft), dtype=xp.dtype, device=dev)
        h_buf[:, W:] = 0                                       # the heads overwrite the rest
        # running sums of the squared heads: column 15 of z_buf holds the 0 they start from and the
        # squares go to columns 16 .. 16 + W, so that their stores are SIMD-aligned (rows of a
        # multiple of 16 elements); z_buf[:, 15 : 16 + W] is the work buffer of _window_sum
        z_buf = torch.empty((block_rows, -(-(W + 16) // 16) * 16), dtype=xp.dtype, device=dev)
        z_buf[:, 15] = 0
        # the transforms write into buffers reused across blocks and steps: heads' spectra (block
        # rows), the continuations' spectra and their correlations with the heads (B rows)
        fft = _RealFFT(n_fft, xp.dtype, dev)
        cdtype = fft.spectrum_dtype
        bins = n_fft // 2 + 1
        hf_buf, hf_flat = _spectrum_buffer(block_rows, bins, cdtype, dev)
        u_buf = torch.zeros((B, n_fft), dtype=xp.dtype, device=dev)
        spec_buf, spec_flat = _spectrum_buffer(B, bins, cdtype, dev)
        corr_buf = torch.empty((B, n_fft), dtype=xp.dtype, device=dev)
        ncc_buf = torch.empty((B, 2 * S + 1), dtype=xp.dtype, device=dev)
        # the first k rows of each buffer (k = rows still placing), made once per distinct k
        step_views = {}
        found = np.zeros(offsets[-1], dtype=np.int64)
        prev = np.zeros(B, dtype=np.int64)
        block_end = 1                                          # first step whose heads are not transformed yet
        for q in range(1, M):
            if q == block_end:
                b0 = offsets[q - 1]
                while block_end < M and offsets[block_end] - b0 <= block_rows:
                    block_end += 1
                b1 = offsets[block_end - 1]
                head = h_buf[: b1 - b0, : W]                                                # (rows, W)
                torch.index_select(head_rows, 0, head_idx[b0:b1], out=head)
                z = z_buf[: b1 - b0, 15: 16 + W]
                torch.mul(head, head, out=z[:, 1:])
                energy = _window_sum(z, F)                                                # (rows, 2S+1)
                # 1/||head|| per candidate shift, in preference order (the continuation's norm does
                # not move the argmax); 0 for a silent head
                if bool(energy.amin() <= tiny):
                    energy = torch.where(energy > tiny, energy.clamp_min(tiny).rsqrt(), 0.0)
                else:
                    energy.rsqrt_()
                inv_norm = energy.index_select(1, lag_pref)
                fft.rfft(h_buf[: b1 - b0], out=hf_buf[: b1 - b0]).conj_physical_()     # heads' spectra, conjugated
            lo, hi = offsets[q - 1], offsets[q]
            k = hi - lo
            if k not in step_views:
                u, spec, corr = u_buf[:k], spec_buf[:k], corr_buf[:k]
                step_views[k] = (u[:, :F], spec, corr, ncc_buf[:k], fft.bind(u, spec), fft.bind(spec, corr, False))
            u_tail, spec, corr, ncc, forward, backward = step_views[k]
            torch.index_select(tail_rows, 0, torch.as_tensor(tail_flat[lo:hi] + prev[:k], device=dev), out=u_tail)
            # irfft(U conj(H))[m] = sum_r h[r] u[r + m] (circular): the correlation at lag m sits at -m
            forward()                                                                     # spec = rfft(u)
            _padded_product(spec_flat, 0, hf_flat, (lo - b0) * bins, k * bins)             # spec *= conj(H)
            backward()                                                                    # corr = irfft(spec)
            torch.index_select(corr, 1, neg_lag_pref, out=ncc)                           # preference order
            prev = pref_np[first_argmax(ncc.mul_(inv_norm[lo - b0: hi - b0]))]
            found[lo:hi] = prev
        shifts[torch.as_tensor(row_np, device=dev), torch.as_tensor(step_np, device=dev)] = torch.as_tensor(found, device=dev)
    out = [(order[g * n:(g + 1) * n, : p.n_seg], shifts[g * n:(g + 1) * n, : p.n_seg]) for g, p in enumerate(params)]
    back = [None] * G
    for i, g in enumerate(rank):
        back[g] = out[i]
    return back


def _assemble(xp: torch.Tensor, order: torch.Tensor, shifts: torch.Tensor, p: QuiltParams, pad: int) -> np.ndarray:
    """Slot ``q`` plays ``x[order[q] * seg + shifts[q] + r]``; each boundary gets a raised-cosine
    cross-fade over output samples ``[q * seg - F//2, q * seg - F//2 + F)``. Returns numpy (n, n_seg * seg)
    in ``xp``'s precision (the copies are numpy fancy indexing of sliding-window views)."""
    xn = xp.detach().cpu().numpy()
    order, shifts = order.cpu().numpy(), shifts.cpu().numpy()
    n = xn.shape[0]
    seg, n_seg, F = p.seg_samples, p.n_seg, p.fade_samples
    h = F // 2
    rows = np.arange(n)[:, None]
    slots = np.lib.stride_tricks.sliding_window_view(xn, seg, axis=1)[rows, order * seg + shifts + pad]
    if n_seg < 2 or F == 0:
        return slots.reshape(n, n_seg * seg)
    # the fade u + w (v - u) straddles each boundary: before it the slots already hold the previous
    # slot's continuation u[:h], after it the new head v[h:]; fetch the other halves and mix in place
    # (torch.lerp on views of the numpy arrays: one pass instead of three numpy ones)
    w = torch.from_numpy(raised_cosine(F).astype(xn.dtype))
    mixed = torch.from_numpy(slots)
    before, after = mixed[:, :-1, seg - h:], mixed[:, 1:, : F - h]
    if h > 0:
        heads = np.lib.stride_tricks.sliding_window_view(xn, h, axis=1)
        v = heads[rows, order[:, 1:] * seg + shifts[:, 1:] - h + pad]                    # v[:h], (n, nb, h)
        before.lerp_(torch.from_numpy(v), w[:h])
    conts = np.lib.stride_tricks.sliding_window_view(xn, F - h, axis=1)
    u = conts[rows, (order[:, :-1] + 1) * seg + shifts[:, :-1] + pad]                     # u[h:], (n, nb, F - h)
    torch.lerp(torch.from_numpy(u), after, w[h:], out=after)
    return slots.reshape(n, n_seg * seg)


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
    return np.array([_start_segment(int(seed), i, int(n_seg)) for i in range(n_clips)], dtype=np.int64)


@functools.lru_cache(maxsize=4096)
def _start_segment(seed: int, clip: int, n_seg: int) -> int:
    """``default_rng([seed, clip]).integers(n_seg)``, remembered: making the generator costs tens of
    microseconds, a tenth of a one-clip quilt at the longest sizes."""
    return int(np.random.default_rng([seed, clip]).integers(n_seg))


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
    first = [start_segments(n, p.n_seg, seed) for p in plist]
    for ms, p, f in zip(seg_ms, plist, first):
        if p.n_seg == 1:
            out[float(ms)] = Quilt(xt[:, : p.seg_samples].to(torch.float32).cpu().numpy(),
                                   f[:, None], np.zeros((n, 1), np.int64),
                                   p.seg_samples, p.max_shift_samples, p.fade_samples)
    if multi:
        # reads reach from -(S + F//2) (the first head at shift -S) to n_seg * seg + S + F - F//2
        # (the last continuation): S + F samples of mirror image on each side cover every size
        pad = multi[0].max_shift_samples + multi[0].fade_samples
        xp = _mirror_pad(xt, pad)
        costs = [_order_cost(left, right, ordering) for left, right in _border_features(xt, multi, sr)]
        starts = [torch.as_tensor(f, device=device) for p, f in zip(plist, first) if p.n_seg > 1]
        joined = _order_and_join(xp, costs, starts, multi, pad)
        for ms, p, (order, shifts) in zip([ms for ms, p in zip(seg_ms, plist) if p.n_seg > 1], multi, joined):
            audio = _assemble(xp, order, shifts, p, pad)
            out[float(ms)] = Quilt(audio.astype(np.float32, copy=False), order.cpu().numpy(),
                                   shifts.cpu().numpy(), p.seg_samples, p.max_shift_samples, p.fade_samples)
    return {float(ms): out[float(ms)] for ms in seg_ms}


# --------------------------------------------------------------------------------------------
# one clip at one size: compiled kernels (stimuli/_quilt_kernels.py)
# --------------------------------------------------------------------------------------------
#: The one-clip path's kernels: ``kernels`` is the module :mod:`stimuli._quilt_kernels` once loaded
#: (None before the first one-clip quilt; False if numba is missing), ``checked`` the precisions in
#: which they passed the first-use check (``failed``: those in which they did not). Set ``ok`` to
#: False to quilt single clips on the batched torch path too.
_NUMBA = {"kernels": None, "ok": True, "checked": set(), "failed": set()}


def _one_clip_kernels(dtype: torch.dtype = torch.float32):
    """The module of compiled kernels (:mod:`stimuli._quilt_kernels`) for clips in ``dtype``, or None:
    numba missing, the one-clip path switched off (``_NUMBA["ok"]``), or its spectrum product or
    cross-fade not rounding as torch's here (checked once per process and precision on random
    numbers, as :class:`_RealFFT` checks its descriptors)."""
    if not _NUMBA["ok"] or dtype in _NUMBA["failed"]:
        return None
    if _NUMBA["kernels"] is None:
        _NUMBA["kernels"] = False
        try:
            from stimuli import _quilt_kernels
        except ImportError:                                            # pragma: no cover (no numba)
            return None
        _NUMBA["kernels"] = _quilt_kernels
    K = _NUMBA["kernels"] or None
    if K is not None and dtype not in _NUMBA["checked"]:
        g = torch.Generator().manual_seed(0)
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        a, b = (torch.randn(4096, dtype=cdtype, generator=g) for _ in range(2))
        product = torch.empty(8192, dtype=dtype)
        K.complex_product(torch.view_as_real(a).reshape(-1).numpy(), torch.view_as_real(b).reshape(-1).numpy(),
                          product.numpy())
        start, end = torch.randn(2, 1021, dtype=dtype, generator=g)
        weight = torch.rand(1021, dtype=dtype, generator=g)
        mixed = torch.empty(1021, dtype=dtype)
        K.lerp(start.numpy(), end.numpy(), weight.numpy(), mixed.numpy())
        if not (torch.equal(product, torch.view_as_real(a * b).reshape(-1))
                and torch.equal(mixed, torch.lerp(start, end, weight))):       # pragma: no cover (other builds)
            _NUMBA["failed"].add(dtype)
            return None
        _NUMBA["checked"].add(dtype)
    return K


#: Border frames per DFTI call on the one-clip path: about 150 kB of frames and as much spectra
#: at 22,050 Hz, in a core's L2 cache (all 800 frames of 50-ms segments at once are 3.7 MB).
_FRAME_CHUNK = 64


@functools.lru_cache(maxsize=64)
def _chunks_match(n_fft: int, dtype: torch.dtype, rows: int, chunk: int) -> bool:
    """Whether ``rows`` rows transformed ``chunk`` at a time (the last chunk shorter) give the
    numbers of one transform of all ``rows`` (the batched path's), checked on random rows. MKL
    transforms each row alike whatever the number of rows, so this holds where it has been
    checked; a build where it does not keeps the one-clip path on single transforms."""
    fft = _RealFFT(n_fft, dtype, torch.device("cpu"))
    if not fft.direct:
        return False
    x = torch.randn((rows, n_fft), dtype=dtype, generator=torch.Generator().manual_seed(rows))
    whole = fft.rfft(x, out=torch.empty((rows, n_fft // 2 + 1), dtype=fft.spectrum_dtype))
    parts = torch.empty_like(whole)
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        fft.rfft(x[r0:r1], out=parts[r0:r1])
    return bool(torch.equal(whole, parts)) and fft.direct


@dataclass(frozen=True)
class _OneClipSetup:
    """What :func:`_quilt_one` derives from the parameters alone (cached per parameters): the
    frame layout of :func:`_border_features` for one size (``row_starts``: the first sample of each
    frame row, transformed ``frame_chunk`` rows at a time; ``table`` (2, n_seg, border_frames):
    the row of each left / right border frame),
    the window and the weighting mel rows ``lo:hi`` (:func:`_feature_constants`), the shift search's
    FFT length, head blocks and shift preference, the fade weights and the silence threshold."""

    p: QuiltParams
    row_starts: np.ndarray
    n_rows: int
    frame_chunk: int
    table: np.ndarray
    n_fft: int
    window: np.ndarray
    fb: torch.Tensor
    lo: int
    hi: int
    n_fft_join: int
    block_rows: int
    n_blocks: int
    pref: np.ndarray
    lag_pref: np.ndarray
    neg_lag_pref: np.ndarray
    weights: np.ndarray
    tiny: float
    work: tuple


@functools.lru_cache(maxsize=128)
def _one_clip_setup(n_samples: int, sr: int, seg_ms: float, ordering: str, params: tuple,
                    dtype: torch.dtype, chunk_elements: int, frame_chunk: int) -> _OneClipSetup:
    """:class:`_OneClipSetup` of one clip of ``n_samples`` (``params``: the keyword overrides as sorted
    items; ``chunk_elements``: :data:`_CHUNK_ELEMENTS`, which sets the blocks of heads;
    ``frame_chunk``: :data:`_FRAME_CHUNK`). Its arrays are shared: read-only."""
    p = quilt_params(n_samples, sr, seg_ms, ordering, **dict(params))
    progressions, rows = _frame_progressions([p], [0])
    n_rows = sum(count for _, _, count, _ in progressions)
    row_starts = np.empty(n_rows, dtype=np.int64)
    for start, step, count, first in progressions:
        row_starts[first: first + count] = start + step * np.arange(count)
    n_fft = fft_size(p.win_samples)
    if n_rows <= frame_chunk or not _chunks_match(n_fft, dtype, n_rows, frame_chunk):
        frame_chunk = n_rows                                        # one transform of all frames
    window, fb, lo, hi = _feature_constants(sr, p.win_samples, p.n_mels, dtype, torch.device("cpu"))
    S, F = p.max_shift_samples, p.fade_samples
    n_fft_join = fft_size(2 * S + F)
    block_rows = max(1, chunk_elements // (16 * n_fft_join))        # the batched path's blocks of heads
    n_blocks = -(-(p.n_seg - 1) // block_rows) if S > 0 and F > 0 else 0
    pref = _shift_preference(S)
    dt = torch.empty(0, dtype=dtype).numpy().dtype
    # work arrays: frames and spectra of the border features, their power and log-mel, the features
    # and targets; per block of boundaries the heads, their spectra, energies, norms and running
    # sums; one boundary's continuation, spectrum and correlation
    n_seg, W = p.n_seg, 2 * S + F
    n_feat, bins, n_heads = rows[0].shape[2] * p.n_mels, n_fft_join // 2 + 1, max(1, min(block_rows, p.n_seg - 1))
    work = _work_layout(((frame_chunk, n_fft), dt), ((frame_chunk, 2 * (n_fft // 2 + 1)), dt),
                        ((1, n_rows, hi - lo), dt), ((1, n_rows, p.n_mels), dt),
                        ((1, n_seg, n_feat), dt), ((1, n_seg, n_feat), dt), ((1, n_seg, n_feat), dt),
                        ((n_heads, n_fft_join), dt), ((n_heads, 2 * bins), dt),
                        ((n_heads, 2 * S + 1), dt), ((n_heads, 2 * S + 1), dt), ((8, W + 1), dt),
                        ((2 * bins,), dt), ((n_fft_join,), dt), ((n_fft_join,), dt))
    out = _OneClipSetup(p, row_starts, n_rows, frame_chunk, rows[0], n_fft, window.numpy(), fb, lo, hi,
                        n_fft_join, block_rows, n_blocks, pref, pref + S, (n_fft_join - (pref + S)) % n_fft_join,
                        raised_cosine(F).astype(dt), dt.type(1e-20 if dtype == torch.float64 else 1e-12), work)
    for a in (out.row_starts, out.table, out.pref, out.lag_pref, out.neg_lag_pref, out.weights):
        a.flags.writeable = False
    return out


_WORKSPACE = threading.local()                 # per thread: the one-clip path's reused work memory


def _work_layout(*specs) -> tuple:
    """``(layout, nbytes)`` of work arrays of the given ``(shape, dtype)`` laid end to end, each on a
    64-byte boundary (see :func:`_work_buffers`)."""
    layout, at = [], 0
    for shape, dtype in specs:
        layout.append((tuple(int(d) for d in shape), np.dtype(dtype), at))
        at += -(-math.prod(shape) * np.dtype(dtype).itemsize // 64) * 64
    return tuple(layout), at


def _work_buffers(layout: tuple, nbytes: int) -> list:
    """The work arrays of a :func:`_work_layout`, carved from one per-thread buffer that is reused
    across one-clip quilts (grown when too small): no allocation per call, where the arrays would
    be a dozen. Each array starts on a 64-byte boundary, as torch's allocations do (MKL sees the
    same alignment as on the batched path). Valid until the thread's next one-clip quilt; never
    returned to the caller. Returns the arrays and whether the buffer was (re)allocated, which
    makes the arrays of earlier layouts stale."""
    raw, fresh = getattr(_WORKSPACE, "raw", None), False
    if raw is None or raw.size < nbytes + 64:
        raw, fresh = np.empty(int(nbytes * 1.25) + 64, dtype=np.uint8), True
        _WORKSPACE.raw = raw
    base = -raw.ctypes.data % 64
    return [np.ndarray(shape, dtype, buffer=raw, offset=base + at) for shape, dtype, at in layout], fresh


def _dfti_addresses(lib) -> tuple:
    """Addresses of ``DftiComputeForward`` and ``DftiComputeBackward`` (for the compiled kernels)."""
    if "addresses" not in _DFTI:
        _DFTI["addresses"] = (ctypes.cast(lib.DftiComputeForward, ctypes.c_void_p).value,
                              ctypes.cast(lib.DftiComputeBackward, ctypes.c_void_p).value)
    return _DFTI["addresses"]


_NP_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}


@dataclass
class _OneClipCall:
    """What :func:`_quilt_one` reuses from call to call in one thread for the same parameters:
    the setup, the descriptors (kept alive here) and their handles, the work arrays and torch
    views of those that torch reads or writes."""

    setup: _OneClipSetup
    plans: tuple
    frame_plans: tuple
    step_plans: tuple
    head_plans: np.ndarray
    work: list
    tensors: tuple


def _one_clip_call(n_samples: int, sr: int, seg_ms: float, ordering: str, params: dict, dtype: torch.dtype):
    """The thread's :class:`_OneClipCall` for these parameters (made on first use; None where a DFTI
    descriptor is missing: the caller then runs the batched path)."""
    key = (n_samples, sr, seg_ms, ordering, tuple(sorted(params.items())), dtype, _CHUNK_ELEMENTS, _FRAME_CHUNK,
           torch.get_num_threads())
    calls = _WORKSPACE.__dict__.setdefault("calls", {})
    call = calls.get(key)
    if call is not None:
        return call
    c = _one_clip_setup(n_samples, sr, seg_ms, ordering, key[4], dtype, _CHUNK_ELEMENTS, _FRAME_CHUNK)
    cpu = torch.device("cpu")
    fft = _RealFFT(c.n_fft_join, dtype, cpu)
    n_b = c.p.n_seg - 1
    frames_fft, last = _RealFFT(c.n_fft, dtype, cpu), c.n_rows % c.frame_chunk or c.frame_chunk
    plans = [frames_fft._plan(c.frame_chunk, True), frames_fft._plan(last, True)]
    plans += [fft._plan(1, True), fft._plan(1, False)] if c.n_blocks else []
    plans += [fft._plan(min(n_b, b0 + c.block_rows) - b0, True)
              for b0 in range(0, c.n_blocks * c.block_rows, c.block_rows)]
    if any(plan is None for plan in plans):
        return None
    handles = [plan.handle.value for plan in plans]
    frame_plans, handles = tuple(handles[:2]), handles[2:]                # then the steps' and the heads
    work, fresh = _work_buffers(*c.work)
    if fresh:                                       # the work memory moved: older calls' views are stale
        calls.clear()
    elif len(calls) >= 32:
        calls.pop(next(iter(calls)))
    frames, spectra, power, logmel, left, right, target = work[:7]
    call = calls[key] = _OneClipCall(c, tuple(plans), frame_plans, tuple(handles[:2]) if c.n_blocks else (0, 0),
                                     np.array(handles[2:] if c.n_blocks else [], dtype=np.int64), work,
                                     tuple(torch.from_numpy(a) for a in (power, logmel, left, right, target)))
    return call


def _quilt_one(x, sr: int, seg_ms: float, ordering: str, seed: int, device, dtype: torch.dtype,
               params: dict):
    """:func:`quilt` on the compiled kernels: the same :class:`Quilt` as the batched path
    (``quilt_batch(x[None])[0]``, bit for bit), or None where this path is not available (numba
    missing, not on the CPU, not float32 / float64, no usable MKL DFTI descriptors).

    The stages are those of :func:`quilt_multi` for one clip and one size, each a single call where
    the batched path makes tens to thousands of torch calls: the border frames and their power
    spectra (:func:`stimuli._quilt_kernels.border_power`); in torch, on the batched path's shapes,
    the mel weighting and ``log10``; the border features and targets
    (:func:`~stimuli._quilt_kernels.border_features`); in torch, the distances of
    :func:`_order_cost`; then the greedy walk, the shifts (the batched path's blocks of heads) and
    the assembly (:func:`~stimuli._quilt_kernels.order_join_assemble`). The clip is read through its
    mirror image where the batched path pads a copy. Everything that depends on the parameters
    alone (constants, descriptors, work memory) is kept per thread (:func:`_one_clip_call`): the
    work memory is that of the largest quilt so far, about 10 MB for a 10-s clip at 22,050 Hz in
    50-ms segments.
    """
    if (dtype not in _NP_DTYPES or not _DFTI["ok"] or (device != "cpu" and torch.device(device).type != "cpu")):
        return None
    lib = _dfti_library()
    K = _one_clip_kernels(dtype) if lib is not None else None
    if K is None:
        return None
    if isinstance(x, torch.Tensor):
        if not torch.is_floating_point(x):
            raise UserError("quilt audio must be floating point: convert int PCM with x / 32768.0")
        xn = x.detach().to(device="cpu", dtype=dtype).contiguous().numpy()
    else:
        if x.dtype.kind != "f":
            raise UserError("quilt audio must be floating point: convert int PCM with x / 32768.0")
        xn = np.ascontiguousarray(x, dtype=_NP_DTYPES[dtype])
    call = _one_clip_call(xn.shape[0], sr, float(seg_ms), ordering, params, dtype)
    if call is None:
        return None
    c = call.setup
    p = c.p
    seg, n_seg, S, F = p.seg_samples, p.n_seg, p.max_shift_samples, p.fade_samples
    start = _start_segment(int(seed), 0, n_seg)
    if n_seg == 1:
        return Quilt(xn[:seg].astype(np.float32), np.array([start], dtype=np.int64), np.zeros(1, dtype=np.int64),
                     seg, S, F)
    fwd_fn, bwd_fn = _dfti_addresses(lib)
    (frames, spectra, power, logmel, left, right, target, heads, head_spectra, energy, inv_norm, sums, spec, u,
     corr) = call.work
    power_t, logmel_t, left_t, right_t, target_t = call.tensors
    u[:] = 0
    dt = xn.dtype
    # border features: frames and power spectra compiled; mel weights and log10 in torch, as in
    # _border_features
    if K.border_power(xn, c.row_starts, c.window, frames, spectra, power[0], c.lo, fwd_fn, *call.frame_plans):
        raise RuntimeError("MKL DFTI compute failed")                        # pragma: no cover
    torch.matmul(power_t, c.fb, out=logmel_t)
    logmel_t.add_(1e-10).log10_()
    overath = ordering == "overath"
    K.border_features(logmel[0], c.table, dt.type(10.0), overath, left[0], right[0], target[0])
    # the distances of _order_cost: Overath's ||L_j - (R_i + target_i)||, Kim's ||L_j - R_i|| and
    # ||target_i|| (torch.cdist's own computation for these inputs, without its wrapper)
    if dtype == torch.float64 or not hasattr(torch, "_euclidean_dist"):
        mode = "donot_use_mm_for_euclid_dist" if dtype == torch.float64 else "use_mm_for_euclid_dist"
        cost = torch.cdist(right_t, left_t, compute_mode=mode)[0].numpy()
    else:
        cost = torch._euclidean_dist(right_t, left_t)[0].numpy()
    offset = np.empty(0, dtype=dt) if overath else torch.linalg.vector_norm(target_t, 2, -1).numpy()[0]

    # the ordering, the shifts and the quilt
    order, shifts = np.empty(n_seg, dtype=np.int64), np.zeros(n_seg, dtype=np.int64)
    audio = np.empty(n_seg * seg, dtype=np.float32)
    if K.order_join_assemble(cost, offset, start, xn, seg, S, F, c.block_rows, call.head_plans, c.pref, c.lag_pref,
                             c.neg_lag_pref, c.tiny, heads, head_spectra, energy, inv_norm, sums, u, spec, corr,
                             fwd_fn, bwd_fn, call.step_plans[0], call.step_plans[1], c.weights, order, shifts, audio):
        raise RuntimeError("MKL DFTI compute failed")                        # pragma: no cover
    return Quilt(audio, order, shifts, seg, S, F)


def quilt(x, sr: int, seg_ms: float, ordering: str = "kim2024", seed: int = 0,
          device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **params) -> Quilt:
    """Quilt one mono clip ``x`` (shape (n_samples,)): the same quilt as ``quilt_batch(x[None], ...)[0]``,
    bit for bit.

    On the CPU (float32 or float64, with numba and torch's MKL FFTs, as in this project's
    environment) it runs on compiled one-clip kernels (:func:`_quilt_one`): per clip about as fast
    as the batched path is on a batch of 16 clips and all sizes, where ``quilt_batch`` on one clip
    and one size pays its torch calls' dispatch alone (``python -m bench --only quilting`` shows
    both). The first call of a process loads the kernels from numba's disk cache (about a
    second), or compiles them where there is none yet (some tens of seconds, once). Elsewhere
    it is ``quilt_batch(x[None])[0]``.

    See :func:`quilt_batch` for the parameters and the module docstring for the algorithm.
    """
    xa = x if isinstance(x, torch.Tensor) else np.asarray(x)
    if xa.ndim != 1:
        raise UserError(f"quilt expects one mono clip of shape (n_samples,), got {tuple(xa.shape)}: "
                        "use quilt_batch for several clips")
    one = _quilt_one(xa, sr, seg_ms, ordering, seed, device, dtype, params)
    if one is not None:
        return one
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


def reference_quilt_lean(x: np.ndarray, sr: int, seg_ms: float, ordering: str = "kim2024",
                         seed: int = 0, clip_index: int = 0, **params) -> Quilt:
    """The issue's baseline: the same quilt as :func:`reference_quilt_numpy`, one clip in float64
    NumPy, with the border features and the ordering costs vectorised over segments and only the
    inherently sequential parts looped: the greedy ordering (one ``argmin`` per step), the boundary
    shifts (one ``np.convolve`` cross-correlation per boundary) and the assembly (one slice per slot).

    It is the fair "straightforward per-boundary NumPy" speed baseline; :func:`reference_quilt_numpy`
    (Python loops over segments and segment pairs too) stays the readable oracle.
    """
    x = np.asarray(x, dtype=np.float64)
    p = quilt_params(x.shape[0], sr, seg_ms, ordering, **params)
    seg, n_seg, S, F = p.seg_samples, p.n_seg, p.max_shift_samples, p.fade_samples
    h = F // 2
    pad = S + F + seg
    xp = np.pad(x, pad, mode="reflect") if pad < x.shape[0] else x[reflect_index(x.shape[0], pad)]
    start = int(np.random.default_rng([int(seed), int(clip_index)]).integers(n_seg))

    # border features of all segments at once
    window = np.hanning(p.win_samples)
    n_fft = fft_size(p.win_samples)
    fb = mel_filterbank(sr, n_fft, p.n_mels)
    blen = p.win_samples + (p.border_frames - 1) * p.hop_samples
    segs = x[: n_seg * seg].reshape(n_seg, seg)

    def logmel(chunks):                                                   # (n_seg, blen) -> (n_seg, B * n_mels)
        frames = np.stack([chunks[:, i * p.hop_samples: i * p.hop_samples + p.win_samples]
                           for i in range(p.border_frames)], axis=1)
        power = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=-1)) ** 2
        return (10.0 * np.log10(power @ fb + 1e-10)).reshape(n_seg, -1)

    left, right = logmel(segs[:, :blen]), logmel(segs[:, seg - blen:])

    # ordering costs for all pairs, then the greedy walk
    nxt = np.minimum(np.arange(1, n_seg + 1), n_seg - 1)
    prv = np.arange(n_seg)
    prv[-1] = n_seg - 2
    target = left[nxt] - right[prv]                                       # d(i, i+1); d(i-1, i) for the last
    change = left[None, :, :] - right[:, None, :]                         # d(i, j) = L_j - R_i
    if ordering == "overath":
        cost = np.linalg.norm(change - target[:, None, :], axis=-1)
    else:
        cost = np.abs(np.linalg.norm(change, axis=-1) - np.linalg.norm(target, axis=-1)[:, None])
    order = [start]
    used = np.zeros(n_seg, dtype=bool)
    used[start] = True
    for q in range(1, n_seg):
        i = order[-1]
        c = np.where(used, np.inf, cost[i])
        if i + 1 < n_seg and n_seg - q > 1:
            c[i + 1] = np.inf
        order.append(int(np.argmin(c)))
        used[order[-1]] = True

    # boundary shifts, one np.convolve per boundary
    shifts = [0]
    pref = _shift_preference(S)
    ones = np.ones(F)
    for q in range(1, n_seg):
        if S == 0 or F == 0:
            shifts.append(0)
            continue
        a, b = order[q - 1], order[q]
        u = xp[(a + 1) * seg + shifts[-1] - h + pad:][:F]
        v = xp[b * seg - S - h + pad:][:2 * S + F]
        corr = np.convolve(v, u[::-1], mode="valid")
        vv = np.convolve(v * v, ones, mode="valid")
        ncc = np.where(vv > 1e-20, corr / np.sqrt(np.maximum(vv, 1e-20)), 0.0)
        shifts.append(int(pref[np.argmax(ncc[pref + S])]))

    # assembly
    out = np.empty(n_seg * seg)
    w = raised_cosine(F)
    for q in range(n_seg):
        lo = order[q] * seg + shifts[q] + pad
        out[q * seg:(q + 1) * seg] = xp[lo: lo + seg]
        if q > 0 and F > 0:
            ua = (order[q - 1] + 1) * seg + shifts[q - 1] - h + pad
            vb = order[q] * seg + shifts[q] - h + pad
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


def _cpu_times() -> tuple:
    """(user, system) CPU seconds of this process (``resource``; where it is missing, all counts as user)."""
    try:
        import resource
    except ImportError:                                                   # pragma: no cover (Windows)
        return time.process_time(), 0.0
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0 (a time below its clock's resolution)."""
    return num / den if den > 0 else float("nan")


def _bench_clips(n_clips: int, sr: int, clip_s: float, seed: int) -> np.ndarray:
    """The benchmarks' synthetic clips (n_clips, clip_s * sr), float32: an amplitude-modulated tone
    (100-800 Hz, modulated at 0.5-4 Hz) in noise."""
    rng = np.random.default_rng(seed)
    n = int(round(clip_s * sr))
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 800, size=(n_clips, 1))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4, size=(n_clips, 1)) * t)
    return (env * np.sin(2 * np.pi * f0 * t) + 0.3 * rng.standard_normal((n_clips, n))).astype(np.float32)


def benchmark_quilting(n_clips: int = 16, sr: int = 22050, clip_s: float = 10.0,
                       seg_ms=KIM_SEG_MS, ordering: str = "kim2024", n_reference_clips: int | None = None,
                       n_oracle_clips: int = 2, repeats: int = 5, device: str | torch.device = "cpu",
                       n_threads: int | None = 1, seed: int = 0) -> dict:
    """Time the batched quilter against the NumPy references on synthetic clips.

    All build every size in ``seg_ms`` (all six Kim et al. sizes by default) for each clip. The
    fast path quilts all ``n_clips`` clips and all sizes in one :func:`quilt_multi` call; the
    references run one clip and one size at a time: :func:`reference_quilt_lean` (the issue's
    baseline: vectorised NumPy except a loop over boundaries with ``np.convolve``) on
    ``n_reference_clips`` clips (default: the same ``n_clips``, so both keep the same quilts in
    memory) and :func:`reference_quilt_numpy` (the oracle, also looping over segments and segment
    pairs) on ``n_oracle_clips``. They are timed alternately ``repeats`` times, each run after the
    previous repeat's quilts are freed, in CPU time of this process (``time.process_time``, user +
    system: on a shared machine, time spent waiting for a core is not counted; with several torch
    threads it sums their time), and the medians are compared. The user / system split and
    wall-clock medians are reported too (system time is mostly the kernel zeroing fresh pages for
    the quilts and temporaries, and varies from run to run on a virtual machine). The split is the
    kernel's: it divides the precise total by where its clock ticks fell, so over a run of a few
    milliseconds either part can read 0, and a ratio over a zero time is NaN, not an error.

    Returns
    -------
    dict
        ``ms_per_clip_fast``, ``ms_per_clip_reference`` (the lean baseline), ``speedup``
        (reference / fast, medians), ``ms_per_clip_reference_oracle``, ``speedup_vs_oracle``,
        ``user_ms_per_clip`` and ``sys_ms_per_clip`` (medians per path), ``speedup_user``
        (the ratio in user time alone), ``wall_ms_per_clip`` (the three wall-clock medians), the
        per-repeat times, the settings, ``fft_backend`` (whether the fast path's FFTs ran on cached
        MKL descriptors, see :class:`_RealFFT`, or on ``torch.fft``) and ``agreement`` (fraction of
        the oracle's orders and shifts that the fast path, and the lean reference, reproduced).
    """
    old_threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        x = _bench_clips(n_clips, sr, clip_s, seed)
        n_ref = n_clips if n_reference_clips is None else max(1, min(n_reference_clips, n_clips))
        n_orc = max(1, min(n_oracle_clips, n_clips))
        quilt_batch(x[:2, : sr], sr, seg_ms[0], ordering, seed, device)           # warm-up
        runs = {
            "fast": (n_clips, lambda: quilt_multi(x, sr, seg_ms, ordering, seed, device)),
            "reference": (n_ref, lambda: {(i, ms): reference_quilt_lean(x[i], sr, ms, ordering, seed, clip_index=i)
                                          for i in range(n_ref) for ms in seg_ms}),
            "oracle": (n_orc, lambda: {(i, ms): reference_quilt_numpy(x[i], sr, ms, ordering, seed, clip_index=i)
                                       for i in range(n_orc) for ms in seg_ms}),
        }
        cpu, user, system, wall = ({k: [] for k in runs} for _ in range(4))
        got = {}
        for _ in range(max(1, repeats)):
            for name, (count, run) in runs.items():
                got[name] = None                                  # free the previous repeat's quilts first
                (u0, s0), w0, c0 = _cpu_times(), time.perf_counter(), time.process_time()
                got[name] = run()
                c1, w1, (u1, s1) = time.process_time(), time.perf_counter(), _cpu_times()
                cpu[name].append(1e3 * (c1 - c0) / count)
                wall[name].append(1e3 * (w1 - w0) / count)
                user[name].append(1e3 * (u1 - u0) / count)
                system[name].append(1e3 * (s1 - s0) / count)
    finally:
        torch.set_num_threads(old_threads)
    fast, lean, ref = got["fast"], got["reference"], got["oracle"]
    agreement = dict(
        order=float(np.mean([np.array_equal(ref[k].order, fast[float(k[1])].order[k[0]]) for k in ref])),
        shifts=float(np.mean(np.concatenate([ref[k].shifts_samples == fast[float(k[1])].shifts_samples[k[0]]
                                             for k in ref]))),
        lean_order=float(np.mean([np.array_equal(ref[k].order, lean[k].order) for k in ref])),
        lean_shifts=float(np.mean(np.concatenate([ref[k].shifts_samples == lean[k].shifts_samples for k in ref]))))
    med = {k: float(np.median(v)) for k, v in cpu.items()}
    med_user = {k: float(np.median(v)) for k, v in user.items()}
    return dict(ms_per_clip_fast=med["fast"], ms_per_clip_reference=med["reference"],
                speedup=_ratio(med["reference"], med["fast"]), ms_per_clip_reference_oracle=med["oracle"],
                speedup_vs_oracle=_ratio(med["oracle"], med["fast"]), timer="process_time",
                user_ms_per_clip=med_user, sys_ms_per_clip={k: float(np.median(v)) for k, v in system.items()},
                speedup_user=_ratio(med_user["reference"], med_user["fast"]),
                wall_ms_per_clip={k: float(np.median(v)) for k, v in wall.items()},
                fast_ms_per_repeat=cpu["fast"], reference_ms_per_repeat=cpu["reference"],
                oracle_ms_per_repeat=cpu["oracle"],
                n_clips=n_clips, n_reference_clips=n_ref, n_oracle_clips=n_orc, sr=sr, clip_s=clip_s,
                seg_ms=tuple(seg_ms), ordering=ordering, device=str(device), n_threads=n_threads,
                fft_backend="mkl-dfti (cached descriptors)" if _DFTI["lib"] and _DFTI["ok"] else "torch.fft",
                agreement=agreement)


def benchmark_quilt_per_call(sr: int = 22050, clip_s: float = 10.0, seg_ms=KIM_SEG_MS,
                             ordering: str = "kim2024", repeats: int = 5, n_threads: int | None = 1,
                             seed: int = 0) -> dict:
    """Time :func:`quilt` one call at a time against the lean NumPy reference.

    One synthetic clip (the first of :func:`benchmark_quilting`'s) is quilted at every size in
    ``seg_ms`` (all six Kim et al. sizes by default), one :func:`quilt` call per size, and
    :func:`reference_quilt_lean` makes the same quilts, one call per size too. Each call is timed in
    CPU time of this process (``time.process_time``, as :func:`benchmark_quilting`); a run is the
    calls for all sizes, and, as in :func:`benchmark_quilting`, a run of :func:`quilt` calls and a run
    of reference calls alternate ``repeats`` times, each run after the previous repeat's quilts are
    freed. A run's time per clip is the sum over its calls; the medians over repeats are compared.

    One :func:`quilt` call runs before the timing (``warmup_s``, wall-clock): in a fresh process it
    loads the compiled kernels from numba's disk cache, or compiles them if there is no cache
    (tens of seconds). That cost is paid once per process, not per call, and is not in the timed
    calls. Each quilt is then checked to equal ``quilt_batch(x[None])[0]`` (orders, shifts, audio).

    Returns
    -------
    dict
        ``ms_per_clip`` (quilt(), all sizes, median), ``ms_per_clip_reference``, ``speedup``
        (reference / quilt()), ``ms_per_call`` and ``ms_per_call_reference`` (``{seg_ms: median}``),
        ``wall_ms_per_clip``, ``user_ms_per_clip`` and ``sys_ms_per_clip`` (medians,
        ``{"quilt": ..., "reference": ...}``; user and system time from the kernel's split, see
        :func:`benchmark_quilting`), ``speedup_user`` (the ratio in user time alone), the per-repeat times,
        ``warmup_s``, ``path`` (``"compiled"``: the numba kernels; ``"torch"``: the batched path, numba
        or the MKL descriptors missing), ``identical_to_batch`` (fraction of sizes whose quilt
        equals the batched path's) and the settings.
    """
    old_threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        x = _bench_clips(1, sr, clip_s, seed)[0]
        w0 = time.perf_counter()
        quilt(x[: sr], sr, seg_ms[0], ordering, seed)                      # loads (or compiles) the kernels
        warmup_s = time.perf_counter() - w0
        runs = {"quilt": lambda ms: quilt(x, sr, ms, ordering, seed),
                "reference": lambda ms: reference_quilt_lean(x, sr, ms, ordering, seed)}
        per_call = {k: {float(ms): [] for ms in seg_ms} for k in runs}
        cpu, wall, user, system = ({k: [] for k in runs} for _ in range(4))
        got = {}
        for _ in range(max(1, repeats)):
            for name, run in runs.items():
                for ms in seg_ms:
                    got[name, float(ms)] = None                   # free the previous repeat's quilts first
                total = [0.0, 0.0]
                u0, s0 = _cpu_times()
                for ms in seg_ms:
                    w0, c0 = time.perf_counter(), time.process_time()
                    got[name, float(ms)] = run(ms)
                    c1, w1 = time.process_time(), time.perf_counter()
                    per_call[name][float(ms)].append(1e3 * (c1 - c0))
                    total[0] += 1e3 * (c1 - c0)
                    total[1] += 1e3 * (w1 - w0)
                u1, s1 = _cpu_times()
                cpu[name].append(total[0])
                wall[name].append(total[1])
                user[name].append(1e3 * (u1 - u0))
                system[name].append(1e3 * (s1 - s0))
    finally:
        torch.set_num_threads(old_threads)
    identical = []
    for ms in seg_ms:
        a, b = got["quilt", float(ms)], quilt_batch(x[None], sr, ms, ordering, seed)[0]
        identical.append(all(np.array_equal(getattr(a, f), getattr(b, f))
                             for f in ("order", "shifts_samples", "audio")))
    med = {k: float(np.median(v)) for k, v in cpu.items()}
    return dict(ms_per_clip=med["quilt"], ms_per_clip_reference=med["reference"],
                speedup=_ratio(med["reference"], med["quilt"]), timer="process_time",
                ms_per_call={ms: float(np.median(v)) for ms, v in per_call["quilt"].items()},
                ms_per_call_reference={ms: float(np.median(v)) for ms, v in per_call["reference"].items()},
                wall_ms_per_clip={k: float(np.median(v)) for k, v in wall.items()},
                user_ms_per_clip={k: float(np.median(v)) for k, v in user.items()},
                sys_ms_per_clip={k: float(np.median(v)) for k, v in system.items()},
                speedup_user=_ratio(float(np.median(user["reference"])), float(np.median(user["quilt"]))),
                ms_per_repeat=cpu["quilt"], reference_ms_per_repeat=cpu["reference"], warmup_s=warmup_s,
                path="compiled" if _DFTI["ok"] and _dfti_library() and _one_clip_kernels() else "torch",
                identical_to_batch=float(np.mean(identical)), sr=sr, clip_s=clip_s, seg_ms=tuple(seg_ms),
                ordering=ordering, n_threads=n_threads, repeats=max(1, repeats))
