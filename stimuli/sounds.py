"""Procedural non-music sounds for the embedded AudioSet-like corpus.

Every generator has the signature ``gen(rng, dur_s, sr) -> np.ndarray`` (float32, shape
``(round(dur_s * sr),)``) and returns audio at an arbitrary level; the corpus normalises levels.
The set deliberately contains tonal (siren, horn, whistling, beeps, bells, bird song, meows),
harmonic (engine, drill, bark, speech) and rhythmic (footsteps, clapping, tick-tock, knocking,
crickets, frogs, alarms) sounds, so that "harmonic" or "periodic" alone does not mean music.

All synthesis is vectorised over samples (numpy broadcasting over partials, FFT filtering,
STFT-domain formant shaping); Python loops only run over events (syllables, footsteps, chirps).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness.errors import UserError

Generator = Callable[[np.random.Generator, float, int], np.ndarray]

# Vowel formant targets (F1, F2, F3) in Hz, Peterson & Barney style averages.
VOWEL_FORMANTS_HZ = np.array([
    [730, 1090, 2440],   # a
    [270, 2290, 3010],   # i
    [300, 870, 2240],    # u
    [530, 1840, 2480],   # e
    [570, 840, 2410],    # o
    [660, 1720, 2410],   # ae
    [490, 1350, 1690],   # er
    [440, 1020, 2240],   # uh
], dtype=np.float64)
FORMANT_BANDWIDTHS_HZ = np.array([90.0, 120.0, 170.0])


# ----------------------------------------------------------------------------- primitives
def n_samples(dur_s: float, sr: int) -> int:
    """Number of samples of a ``dur_s`` clip at ``sr`` (at least 1)."""
    if dur_s <= 0 or sr <= 0:
        raise UserError(f"sound duration {dur_s!r} s / sample rate {sr!r} Hz must be positive: pass dur_s > 0 and sr > 0")
    return max(1, int(round(dur_s * sr)))


def fft_filter(x: np.ndarray, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Zero-phase static filter: multiply the spectrum of ``x`` (last axis) by ``gain(freqs_hz)``."""
    n = x.shape[-1]
    spec = np.fft.rfft(x, axis=-1)
    freqs_hz = np.fft.rfftfreq(n, 1.0 / sr)
    return np.fft.irfft(spec * gain(freqs_hz), n=n, axis=-1)


def colored_noise(rng: np.random.Generator, n: int, sr: int, slope_db_oct: float = 0.0,
                  f_lo_hz: float = 20.0, f_hi_hz: float | None = None) -> np.ndarray:
    """Gaussian noise with a power slope of ``slope_db_oct`` dB per octave, band-limited to [f_lo, f_hi]."""
    f_hi_hz = sr / 2 if f_hi_hz is None else f_hi_hz

    def gain(f):
        f_safe = np.maximum(f, 1.0)
        g = (f_safe / 1000.0) ** (slope_db_oct / (20 * np.log10(2)))
        return g * (f >= f_lo_hz) * (f <= f_hi_hz)

    y = fft_filter(rng.standard_normal(n), sr, gain)
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


def bandpass_noise(rng: np.random.Generator, n: int, sr: int, centre_hz: float, q: float) -> np.ndarray:
    """Noise with a Lorentzian band around ``centre_hz`` of quality ``q`` (unit RMS)."""
    bw = centre_hz / q
    y = fft_filter(rng.standard_normal(n), sr, lambda f: 1.0 / (1.0 + ((f - centre_hz) / bw) ** 2))
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average of ``width`` samples (same length, edge-padded; O(n) via a cumulative sum)."""
    width = int(width)
    if width <= 1:
        return x
    pad = width // 2
    xp = np.pad(np.asarray(x, dtype=np.float64), (pad + 1, width - 1 - pad), mode="edge")
    c = np.cumsum(xp)
    return (c[width:] - c[:-width]) / width


def harmonic_tone(f0_hz: np.ndarray, sr: int, amps: np.ndarray, inharmonicity: float = 0.0,
                  rng: np.random.Generator | None = None, table_size: int = 2048) -> np.ndarray:
    """Additive tone following the f0 track ``f0_hz`` (per sample) with partial amplitudes ``amps``.

    Harmonic tones (``inharmonicity == 0``) use a one-cycle wavetable holding the partials that
    stay below 0.45 * sr at the track's highest f0, so the cost does not grow with the number of
    partials. ``inharmonicity`` B > 0 stretches partial k to ``k * sqrt(1 + B k^2)`` (stiff strings,
    bells) and sums the partials directly, muting each above 0.45 * sr sample by sample.
    """
    amps = np.asarray(amps, dtype=np.float64)
    k = np.arange(1, len(amps) + 1, dtype=np.float64)
    phase0 = np.zeros(len(amps)) if rng is None else rng.uniform(0, 2 * np.pi, size=len(amps))
    cycles = np.cumsum(f0_hz) / sr
    if inharmonicity == 0.0:
        keep = k * np.max(f0_hz) < 0.45 * sr
        coef = np.zeros(table_size // 2 + 1, dtype=np.complex128)
        kk = k[keep].astype(np.int64)
        coef[kk] = amps[keep] * np.exp(1j * (phase0[keep] - np.pi / 2)) * (table_size / 2)   # sin(k theta + phi)
        table = np.fft.irfft(coef, n=table_size)
        table = np.append(table, table[0])
        pos = (cycles % 1.0) * table_size
        i = pos.astype(np.int64)
        frac = pos - i
        return table[i] * (1 - frac) + table[i + 1] * frac
    ratio = (k * np.sqrt(1.0 + inharmonicity * k ** 2))[:, None]
    alive = (ratio * f0_hz[None, :]) < (0.45 * sr)
    return np.sum(amps[:, None] * alive * np.sin(2 * np.pi * ratio * cycles[None, :] + phase0[:, None]), axis=0)


def pulse_train(f0_hz: np.ndarray, sr: int) -> np.ndarray:
    """Unit impulses at the periods of the f0 track (a cheap glottal / firing source)."""
    cycles = np.cumsum(f0_hz) / sr
    out = np.zeros_like(cycles)
    out[1:][np.diff(np.floor(cycles)) > 0] = 1.0
    return out


def decaying_modes(freqs_hz: np.ndarray, decay_s: np.ndarray, amps: np.ndarray, dur_s: float, sr: int) -> np.ndarray:
    """Sum of exponentially decaying sinusoids (struck objects: knocks, bells, drops)."""
    t = np.arange(n_samples(dur_s, sr)) / sr
    f = np.asarray(freqs_hz, dtype=np.float64)[:, None]
    ok = f < 0.45 * sr
    return np.sum(ok * np.asarray(amps)[:, None] * np.exp(-t[None, :] / np.asarray(decay_s)[:, None])
                  * np.sin(2 * np.pi * f * t[None, :]), axis=0)


def place_events(n: int, event: np.ndarray | list, onsets: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """Add copies of ``event`` (or one event per onset if a list) at sample ``onsets``; truncated at ``n``."""
    out = np.zeros(n)
    gains = np.ones(len(onsets)) if gains is None else gains
    for i, (t0, g) in enumerate(zip(np.asarray(onsets, dtype=int), gains)):
        ev = event[i] if isinstance(event, list) else event
        if t0 >= n or t0 < 0:
            continue
        m = min(len(ev), n - t0)
        out[t0:t0 + m] += g * ev[:m]
    return out


def jittered_grid(rng: np.random.Generator, rate_hz: float, dur_s: float, jitter_s: float) -> np.ndarray:
    """Event times (s) at ``rate_hz`` from a random phase, each jittered by N(0, ``jitter_s``), clipped at 0."""
    grid = np.arange(rng.uniform(0, min(1 / rate_hz, 0.5 * dur_s)), dur_s, 1 / rate_hz)
    return np.clip(grid + rng.normal(0, jitter_s, len(grid)), 0, None)


def gate(n: int, sr: int, onsets_s: np.ndarray, durs_s: np.ndarray, ramp_s: float = 0.01) -> np.ndarray:
    """Sum of trapezoid gates (onset, duration) with ``ramp_s`` linear ramps, clipped to [0, 1]."""
    t = np.arange(n) / sr
    on = np.asarray(onsets_s)[:, None]
    off = on + np.asarray(durs_s)[:, None]
    g = np.clip(np.minimum((t[None] - on) / ramp_s, (off - t[None]) / ramp_s), 0.0, 1.0)
    return np.clip(g.sum(axis=0), 0.0, 1.0) if len(onsets_s) else np.zeros(n)


def stft_shape(x: np.ndarray, sr: int, env_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
               n_fft: int = 512, hop: int | None = None) -> np.ndarray:
    """Time-varying spectral shaping: multiply STFT frames by ``env_fn(frame_times_s, freqs_hz)``.

    Hann analysis and synthesis windows, hop ``n_fft // 2`` by default, weighted overlap-add
    normalised by the summed squared window (exact reconstruction for a flat envelope).
    ``env_fn`` returns an array [frames, bins].
    """
    hop = n_fft // 2 if hop is None else hop
    if n_fft % hop:
        raise UserError(f"stft_shape hop {hop} must divide n_fft {n_fft}: pass hop = n_fft // 2 or n_fft // 4")
    n = len(x)
    pad = n_fft
    xp = np.pad(x, (pad, pad + hop))
    n_frames = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    win = np.hanning(n_fft + 1)[:-1]
    spec = np.fft.rfft(xp[idx] * win, axis=-1)
    times_s = (np.arange(n_frames) * hop + n_fft / 2 - pad) / sr
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    frames = np.fft.irfft(spec * env_fn(times_s, freqs_hz), n=n_fft, axis=-1) * win
    out = np.zeros(len(xp))
    norm = np.zeros(len(xp))
    # overlap-add in 4 interleaved groups of non-overlapping frames (vectorised per group)
    for r in range(n_fft // hop):
        sel = np.arange(r, n_frames, n_fft // hop)
        if len(sel) == 0:
            continue
        start = sel[0] * hop
        block = frames[sel].reshape(-1)
        out[start:start + len(block)] += block[: len(out) - start]
        wblock = np.tile(win ** 2, len(sel))
        norm[start:start + len(wblock)] += wblock[: len(norm) - start]
    return (out / np.maximum(norm, 1e-3))[pad:pad + n]


def formant_gain(freqs_hz: np.ndarray, formants_hz: np.ndarray, bandwidths_hz: np.ndarray = FORMANT_BANDWIDTHS_HZ) -> np.ndarray:
    """Sum of resonance curves. ``formants_hz`` [frames, k] → gains [frames, bins]."""
    f = freqs_hz[None, None, :]
    fk = formants_hz[:, :, None]
    bk = bandwidths_hz[None, :, None]
    res = 1.0 / np.sqrt((1 - (f / fk) ** 2) ** 2 + (f * bk / fk ** 2) ** 2)
    return res.sum(axis=1)


# ----------------------------------------------------------------------------- human
def _speaker_stream(rng: np.random.Generator, dur_s: float, sr: int, f0_base_hz: float | None = None,
                    turns: list | None = None) -> np.ndarray:
    """One talker: syllables with vowel formant trajectories, consonant noise and intonation.

    ``turns`` is an optional list of (start_s, end_s) windows in which the talker speaks.
    """
    n = n_samples(dur_s, sr)
    ctrl_hz = 200.0
    m = int(np.ceil(dur_s * ctrl_hz)) + 2
    f0_base_hz = f0_base_hz if f0_base_hz is not None else float(rng.choice([rng.uniform(85, 150), rng.uniform(165, 255), rng.uniform(240, 330)], p=[0.45, 0.45, 0.10]))
    voiced = np.zeros(m)
    fric = np.zeros(m)
    burst = np.zeros(m)
    accent = np.zeros(m)
    formants = np.tile(VOWEL_FORMANTS_HZ[7], (m, 1))
    fric_centre = np.full(m, 4500.0)
    t = rng.uniform(-0.3, 0.1)
    while t < dur_s:
        if rng.random() < 0.12:                       # pause between phrases
            t += rng.uniform(0.08, 0.35)
            continue
        syl_s = rng.uniform(0.11, 0.30)
        a, b = int(max(t, 0) * ctrl_hz), int(min(t + syl_s, dur_s) * ctrl_hz)
        if b > a:
            cons = rng.integers(0, 4)                 # 0 none, 1 plosive, 2 fricative, 3 nasal/liquid
            c_len = int((0.02 if cons == 1 else rng.uniform(0.04, 0.09)) * ctrl_hz) if cons else 0
            v0 = min(a + c_len, b)
            if cons == 1:
                burst[a:a + 2] = rng.uniform(0.5, 1.0)
            elif cons == 2:
                fric[a:v0] = rng.uniform(0.3, 0.8)
                fric_centre[a:v0] = rng.uniform(2500, 7000)
            elif cons == 3:
                voiced[a:v0] = 0.3
                formants[a:v0] = [280, 1200, 2500]
            voiced[v0:b] = rng.uniform(0.6, 1.0)
            vow = VOWEL_FORMANTS_HZ[rng.integers(0, len(VOWEL_FORMANTS_HZ))] * rng.uniform(0.9, 1.12)
            formants[v0:b] = vow
            accent[a:b] = rng.uniform(-0.08, 0.25) if rng.random() < 0.4 else rng.uniform(-0.05, 0.06)
        t += syl_s
    # intonation: declination within phrases + syllable accents, smoothed
    tt = np.arange(m) / ctrl_hz
    phrase = 1.1 - 0.25 * ((tt + rng.uniform(0, 1.5)) % rng.uniform(1.2, 2.5)) / 2.5
    f0_ctrl = f0_base_hz * phrase * (1 + smooth(accent, 12))
    if turns is not None:
        on = np.zeros(m)
        for s0, s1 in turns:
            on[int(max(s0, 0.0) * ctrl_hz):int(max(s1, 0.0) * ctrl_hz)] = 1.0
        voiced, fric, burst = voiced * on, fric * on, burst * on
    voiced = smooth(voiced, 6)
    fric = smooth(fric, 3)
    formants = np.stack([smooth(formants[:, i], 10) for i in range(3)], axis=1)
    # upsample control tracks to audio rate
    ts = np.arange(n) / sr
    up = lambda c: np.interp(ts, tt, c)  # noqa: E731
    f0 = up(f0_ctrl * (1 + 0.01 * rng.standard_normal(m)))
    noise = rng.standard_normal(n)
    voiced_up = up(voiced)
    src = pulse_train(f0, sr) * voiced_up * np.sqrt(f0 / 120.0) + 0.02 * noise * voiced_up   # + breathiness
    tilt = lambda f: 1.0 / (1.0 + (f / 250.0) ** 2) ** 0.5             # noqa: E731  glottal roll-off
    fmt_ctrl = formants

    def env(times_s, freqs_hz):
        fk = np.stack([np.interp(times_s, tt, fmt_ctrl[:, i]) for i in range(3)], axis=1)
        return formant_gain(freqs_hz, fk) * tilt(freqs_hz)[None, :]

    voice = stft_shape(src, sr, env)
    hp_noise = fft_filter(np.roll(noise, n // 3), sr, lambda f: (f > 1500) / (1 + (f / 9000.0) ** 2))
    hiss = hp_noise * up(fric * fric_centre / 6000.0)
    bursts = hp_noise * up(smooth(burst, 2))
    voice = voice / (np.sqrt(np.mean(voice ** 2)) + 1e-9)
    return voice + 0.35 * hiss + 0.5 * bursts


def speech_source(rng: np.random.Generator, dur_s: float, sr: int) -> np.ndarray:
    """Speech-like babble of one talker: formant trajectories, consonants and intonation.

    Parameters
    ----------
    rng : np.random.Generator
    dur_s : float
        Duration in seconds.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    np.ndarray, float32, shape (round(dur_s * sr),), unit RMS.
    """
    return make_sound("Speech", rng, dur_s, sr)


def conversation(rng, dur_s, sr):
    """Two talkers of different pitch taking turns (with small overlaps)."""
    # contiguous turns from before the clip start to past its end
    bounds = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.4, size=int(dur_s / 0.5) + 3))]) - rng.uniform(0, 1.0)
    turns_a = [(bounds[i], bounds[i + 1] + 0.1) for i in range(0, len(bounds) - 1, 2)]
    turns_b = [(bounds[i], bounds[i + 1] + 0.1) for i in range(1, len(bounds) - 1, 2)]
    a = _speaker_stream(rng, dur_s, sr, rng.uniform(90, 140), turns_a)
    b = _speaker_stream(rng, dur_s, sr, rng.uniform(170, 250), turns_b)
    return a + rng.uniform(0.6, 1.0) * b


def babble(rng, dur_s, sr):
    """Crowd babble: 4-7 overlapping talkers."""
    k = int(rng.integers(4, 8))
    return sum(rng.uniform(0.4, 1.0) * _speaker_stream(rng, dur_s, sr) for _ in range(k))


def laughter(rng, dur_s, sr):
    """Bouts of breathy 'ha' pulses at ~4-6 Hz with falling pitch and level."""
    n = n_samples(dur_s, sr)
    out = np.zeros(n)
    t = rng.uniform(0, min(0.3, 0.5 * dur_s))
    f0_base = rng.uniform(180, 420)
    vowel = VOWEL_FORMANTS_HZ[rng.choice([0, 5, 3])]
    while t < dur_s:
        k = int(rng.integers(3, 9))
        rate = rng.uniform(3.8, 6.5)
        ons = t + np.arange(k) / rate
        durs = np.full(k, 0.6 / rate)
        g = gate(n, sr, ons, durs, ramp_s=0.02) * np.interp(np.arange(n) / sr, ons, np.linspace(1, 0.4, k), left=0, right=0.4)
        f0 = f0_base * np.interp(np.arange(n) / sr, [t, t + k / rate], [1.15, 0.85])
        src = pulse_train(f0, sr) * np.sqrt(f0 / 120) + 0.3 * rng.standard_normal(n) * 0.15
        out += src * g
        t += k / rate + rng.uniform(0.2, 0.8)
    fk = np.tile(vowel * rng.uniform(0.95, 1.15), (1, 1))
    return stft_shape(out, sr, lambda ts, f: np.repeat(formant_gain(f, fk), len(ts), axis=0) / (1 + (f / 300.0) ** 2) ** 0.5)


def footsteps(rng, dur_s, sr):
    """Walking: damped thuds plus scuffs at a regular ~1.6-2.4 Hz pace with jitter."""
    n = n_samples(dur_s, sr)
    rate = rng.uniform(1.5, 2.5)
    ons = jittered_grid(rng, rate, dur_s, 0.02)
    surface_hz = rng.uniform(80, 300)
    evs = []
    for _ in ons:
        thud = decaying_modes(surface_hz * np.array([1, 2.3, 4.1]), np.array([0.04, 0.02, 0.01]), np.array([1, 0.5, 0.3]), 0.15, sr)
        scuff = rng.standard_normal(len(thud)) * np.exp(-np.arange(len(thud)) / (0.02 * sr)) * rng.uniform(0.2, 0.8)
        evs.append(thud + fft_filter(scuff, sr, lambda f: (f > 1000) * 1.0))
    return place_events(n, evs, (np.clip(ons, 0, None) * sr).astype(int), rng.uniform(0.6, 1.0, len(ons)))


def clapping(rng, dur_s, sr):
    """Hand claps: sharp band-passed noise bursts, regular (1.5-6 Hz) or a small applause."""
    n = n_samples(dur_s, sr)
    if rng.random() < 0.6:
        rate = rng.uniform(1.5, 6)
        ons = np.arange(rng.uniform(0, min(0.3, 0.5 * dur_s)), dur_s, 1 / rate)
        ons = ons + rng.normal(0, 0.008, len(ons))
    else:
        ons = np.sort(rng.uniform(0, dur_s, int(dur_s * rng.uniform(15, 40))))
    L = int(0.06 * sr)
    env = np.exp(-np.arange(L) / (rng.uniform(0.006, 0.015) * sr))
    evs = [bandpass_noise(rng, L, sr, rng.uniform(800, 2500), 1.5) * env for _ in ons]
    return place_events(n, evs, (np.clip(ons, 0, None) * sr).astype(int), rng.uniform(0.5, 1.0, len(ons)))


def whistling(rng, dur_s, sr):
    """A person whistling: near-sinusoidal glides and holds between 700 and 2500 Hz (tonal, non-music)."""
    n = n_samples(dur_s, sr)
    k = int(rng.integers(2, 6))
    knots_s = np.sort(np.concatenate([[0, dur_s], rng.uniform(0, dur_s, k)]))
    knots_hz = np.exp(rng.uniform(np.log(700), np.log(2500), len(knots_s)))
    ts = np.arange(n) / sr
    f0 = np.interp(ts, knots_s, knots_hz) * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * ts))
    tone = harmonic_tone(f0, sr, np.array([1.0, 0.05, 0.02]), rng=rng)
    breath = colored_noise(rng, n, sr, -3.0, 500, 6000) * 0.05
    phrases = gate(n, sr, np.array([rng.uniform(0, 0.2)]), np.array([dur_s * rng.uniform(0.6, 1.0)]), 0.05)
    return (tone + breath) * phrases


# ----------------------------------------------------------------------------- animals
def bird_song(rng, dur_s, sr):
    """Bird song: frequency-modulated chirps (2-8 kHz sweeps) and fast trills."""
    n = n_samples(dur_s, sr)
    out = np.zeros(n)
    t = rng.uniform(0, min(0.3, 0.5 * dur_s))
    while t < dur_s:
        if rng.random() < 0.5:   # trill: repeated identical short chirps
            k, gap = int(rng.integers(4, 15)), rng.uniform(0.03, 0.09)
        else:
            k, gap = 1, 0.0
        c_dur = rng.uniform(0.02, 0.06) if k > 1 else rng.uniform(0.05, 0.35)
        f_start, f_end = np.exp(rng.uniform(np.log(1800), np.log(8000), 2))
        m = int(c_dur * sr)
        tt = np.arange(m) / sr
        shape = rng.choice(["lin", "arch", "wobble"])
        if shape == "lin":
            f = np.linspace(f_start, f_end, m)
        elif shape == "arch":
            f = f_start + (f_end - f_start) * np.sin(np.pi * tt / c_dur)
        else:
            f = f_start * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(20, 80) * tt))
        chirp = harmonic_tone(f, sr, np.array([1.0, 0.15, 0.05])) * np.hanning(m)
        ons = t + np.arange(k) * (c_dur + gap)
        out += place_events(n, chirp, (ons * sr).astype(int))
        t = ons[-1] + c_dur + rng.uniform(0.05, 0.6)
    return out


def dog_bark(rng, dur_s, sr):
    """Barks: 80-200 ms harmonic bursts (f0 350-900 Hz, rough) with noise, 1-4 per bout."""
    n = n_samples(dur_s, sr)
    out = np.zeros(n)
    t = rng.uniform(0, min(0.4, 0.5 * dur_s))
    f0_dog = rng.uniform(300, 800)
    while t < dur_s:
        d = rng.uniform(0.08, 0.22)
        m = int(d * sr)
        tt = np.arange(m) / sr
        f0 = f0_dog * (1 + 0.3 * np.sin(np.pi * tt / d)) * (1 + 0.03 * rng.standard_normal(m).cumsum() / np.sqrt(m))
        amps = 1.0 / np.arange(1, 13) ** 0.8
        bark = harmonic_tone(f0, sr, amps, rng=rng) + 0.6 * rng.standard_normal(m)
        env = np.minimum(tt / 0.01, 1) * np.exp(-tt / (d * 0.5))
        fk = np.array([[rng.uniform(500, 900), rng.uniform(1200, 1800), rng.uniform(2500, 3500)]])
        bark = stft_shape(bark * env, sr, lambda ts, f: np.repeat(formant_gain(f, fk), len(ts), axis=0))
        out += place_events(n, bark, np.array([int(t * sr)]))
        t += d + (rng.uniform(0.12, 0.35) if rng.random() < 0.6 else rng.uniform(0.5, 1.2))
    return out


def insects(rng, dur_s, sr):
    """Crickets / cicadas: a 3-7 kHz carrier gated by a pulse train, chirps repeating regularly."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    carrier = harmonic_tone(np.full(n, rng.uniform(3000, 7000)), sr, np.array([1.0, 0.1]), rng=rng)
    pulse_hz = rng.uniform(20, 60)
    pulses = (np.sin(2 * np.pi * pulse_hz * ts) > rng.uniform(0.0, 0.6)).astype(float)
    if rng.random() < 0.5:  # chirping: groups of pulses
        chirp_hz = rng.uniform(1.5, 4)
        pulses *= (np.sin(2 * np.pi * chirp_hz * ts + rng.uniform(0, 6)) > 0.2)
    else:                    # cicada-like buzz with a slow swell
        carrier += 0.5 * bandpass_noise(rng, n, sr, rng.uniform(4000, 7000), 4)
        pulses *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * ts) ** 2
    chorus = smooth(pulses, int(0.002 * sr))
    return carrier * chorus


def frogs(rng, dur_s, sr):
    """Frog croaks: low pulse trains (pulse rate 15-120 Hz) through a resonance, repeated."""
    n = n_samples(dur_s, sr)
    out = np.zeros(n)
    res_hz = rng.uniform(300, 2000)
    rate = rng.uniform(0.8, 4)
    ons = jittered_grid(rng, rate, dur_s, 0.03)
    for t in ons:
        d = rng.uniform(0.1, 0.4)
        m = int(d * sr)
        f_pulse = np.full(m, rng.uniform(15, 120))
        src = pulse_train(f_pulse, sr)
        src = np.convolve(src, decaying_modes(np.array([res_hz, 2.1 * res_hz]), np.array([0.01, 0.006]), np.array([1, 0.4]), 0.03, sr))[:m]
        out += place_events(n, src * np.hanning(m), np.array([int(max(t, 0) * sr)]))
    return out


def meow(rng, dur_s, sr):
    """Cat meows: rise-fall f0 contour (400-1000 Hz) with a vowel-like formant glide."""
    n = n_samples(dur_s, sr)
    out = np.zeros(n)
    t = rng.uniform(0, min(0.5, 0.5 * dur_s))
    while t < dur_s:
        d = rng.uniform(0.3, 0.9)
        m = int(d * sr)
        tt = np.arange(m) / sr
        f0 = rng.uniform(400, 750) * (1 + rng.uniform(0.2, 0.5) * np.sin(np.pi * tt / d) ** 1.5)
        tone = harmonic_tone(f0, sr, 1.0 / np.arange(1, 11), rng=rng) * np.hanning(m)
        f_open = np.array([[900, 1700, 3000]])
        f_closed = np.array([[400, 1000, 2800]])

        def env(ts, f):
            w = np.clip(np.sin(np.pi * ts / d), 0, 1)[:, None, None]
            fk = ((1 - w) * f_closed[:, :, None] + w * f_open[:, :, None])[:, :, 0]
            return formant_gain(f, fk)
        out += place_events(n, stft_shape(tone, sr, env), np.array([int(t * sr)]))
        t += d + rng.uniform(0.3, 1.0)
    return out


# ----------------------------------------------------------------------------- nature
def wind(rng, dur_s, sr):
    """Wind: low-passed noise with slow gusts and a wandering howl resonance."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    base = colored_noise(rng, n, sr, rng.uniform(-9, -4), 30, 4000)
    gust = 0.4 + 0.6 * smooth(np.abs(rng.standard_normal(int(dur_s * 4) + 2)), 2)
    gust = np.interp(ts, np.linspace(0, dur_s, len(gust)), gust)
    centre_hz = np.interp(ts, np.linspace(0, dur_s, 4), rng.uniform(250, 900, 4))
    howl = harmonic_tone(centre_hz, sr, np.array([1.0])) * smooth(np.abs(rng.standard_normal(n)), int(0.05 * sr))
    return (base + rng.uniform(0, 0.8) * howl) * gust


def rain(rng, dur_s, sr):
    """Rain: dense random drop transients over broadband noise."""
    n = n_samples(dur_s, sr)
    k = int(dur_s * rng.uniform(200, 1500))
    drops = np.zeros(n)
    np.add.at(drops, rng.integers(0, n, k), rng.standard_normal(k) * rng.pareto(2.5, k))
    drops = np.convolve(drops, np.exp(-np.arange(int(0.003 * sr)) / (0.0008 * sr)), mode="same")
    drops = fft_filter(drops, sr, lambda f: (f > 500) * 1.0)
    return drops / (np.std(drops) + 1e-9) + rng.uniform(0.3, 1.0) * colored_noise(rng, n, sr, -2.0, 100)


def stream(rng, dur_s, sr):
    """Stream / brook: bubbling (short upward sine glides) over modulated noise."""
    n = n_samples(dur_s, sr)
    bed = colored_noise(rng, n, sr, -4.0, 100, 8000) * (0.7 + 0.3 * smooth(rng.standard_normal(n), int(0.03 * sr)) * 5)
    k = int(dur_s * rng.uniform(20, 80))
    evs = []
    for _ in range(k):
        d = rng.uniform(0.01, 0.04)
        m = int(d * sr)
        f = rng.uniform(300, 2000) * np.linspace(1, rng.uniform(1.1, 1.6), m)
        evs.append(np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-np.arange(m) / (0.3 * m)))
    bub = place_events(n, evs, rng.integers(0, n, k), rng.uniform(0.3, 1.5, k))
    return bed + 3 * bub


def thunder(rng, dur_s, sr):
    """Thunder: a crack followed by a long low rumble with slow amplitude swells."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    t0 = rng.uniform(0, dur_s * 0.5)
    rumble = colored_noise(rng, n, sr, -10.0, 20, 2000)
    swell = smooth(np.abs(rng.standard_normal(n)), int(0.15 * sr))
    env = (ts > t0) * np.exp(-(ts - t0).clip(0) / rng.uniform(0.8, 3.0))
    crack = colored_noise(rng, n, sr, -3.0, 200) * (ts > t0) * np.exp(-(ts - t0).clip(0) / 0.08)
    return rumble * env * swell * 3 + crack * rng.uniform(0.3, 1.5)


def fire(rng, dur_s, sr):
    """Fire: sparse crackles (sharp clicks) over a low roar."""
    n = n_samples(dur_s, sr)
    k = int(dur_s * rng.uniform(15, 80))
    cr = np.zeros(n)
    np.add.at(cr, rng.integers(0, n, k), rng.standard_normal(k) * rng.pareto(1.5, k))
    cr = np.convolve(cr, np.exp(-np.arange(int(0.004 * sr)) / (0.0007 * sr)), mode="same")
    cr = fft_filter(cr, sr, lambda f: (f > 800) * 1.0)
    roar = colored_noise(rng, n, sr, -8.0, 30, 3000)
    return cr / (np.std(cr) + 1e-9) + rng.uniform(0.2, 1.0) * roar


# ----------------------------------------------------------------------------- things
def engine(rng, dur_s, sr):
    """Combustion engine: firing-rate pulse train (20-90 Hz, many harmonics) with rpm drift and noise."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    f_fire = rng.uniform(20, 90) * np.interp(ts, [0, dur_s], [1, rng.uniform(0.7, 1.5)])
    f_fire *= 1 + 0.02 * smooth(rng.standard_normal(n), int(0.05 * sr))
    src = pulse_train(f_fire, sr) + 0.3 * rng.standard_normal(n) * 0.1
    res = decaying_modes(rng.uniform(80, 1200, 4), rng.uniform(0.004, 0.02, 4), rng.uniform(0.3, 1, 4), 0.06, sr)
    body = fft_filter(np.convolve(src, res)[:n], sr, lambda f: 1 / (1 + (f / rng.uniform(1500, 5000)) ** 2))
    return body / (np.std(body) + 1e-9) + 0.3 * colored_noise(rng, n, sr, -6.0, 40)


def siren(rng, dur_s, sr):
    """Emergency siren: harmonic tone sweeping slowly (wail), quickly (yelp) or two-tone (hi-lo)."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    lo, hi = rng.uniform(500, 900), rng.uniform(1100, 1800)
    kind = rng.integers(0, 3)
    if kind == 0:
        f0 = lo + (hi - lo) * (0.5 - 0.5 * np.cos(2 * np.pi * ts / rng.uniform(2.0, 5.0) + rng.uniform(0, 6)))
    elif kind == 1:
        f0 = lo + (hi - lo) * ((ts * rng.uniform(2.5, 5.0) + rng.random()) % 1.0)
    else:
        f0 = np.where(((ts * rng.uniform(0.8, 1.6) + rng.random()) % 1.0) < 0.5, lo, hi)
        f0 = smooth(f0, int(0.01 * sr))
    amps = 1.0 / np.arange(1, 8) ** rng.uniform(0.7, 1.5)
    return harmonic_tone(f0, sr, amps, rng=rng)


def alarm(rng, dur_s, sr):
    """Alarm: a rapidly pulsed harsh buzz or bell-like tone (smoke / fire alarm, buzzer)."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    f0 = np.full(n, rng.uniform(400, 3200))
    amps = (1.0 / np.arange(1, 16)) * (np.arange(1, 16) % 2 == 1) if rng.random() < 0.5 else 1.0 / np.arange(1, 16) ** 0.5
    tone = harmonic_tone(f0, sr, amps, rng=rng)
    rate = rng.uniform(1.5, 12)
    duty = rng.uniform(0.3, 0.7)
    g = smooth(((ts * rate) % 1.0 < duty).astype(float), int(0.004 * sr))
    return tone * g


def beeps(rng, dur_s, sr):
    """Electronic beeps: pure or square tones (1-4 kHz) in a regular on/off pattern."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    f0 = np.full(n, rng.uniform(800, 4000))
    amps = np.array([1.0]) if rng.random() < 0.5 else (1.0 / np.arange(1, 10)) * (np.arange(1, 10) % 2 == 1)
    tone = harmonic_tone(f0, sr, amps, rng=rng)
    period = rng.uniform(0.25, 1.2)
    n_beeps = int(rng.integers(1, 4))
    beep_s = rng.uniform(0.05, 0.2)
    phase = (ts - rng.uniform(0, min(period, 0.5 * dur_s))) % period   # first beep inside the clip
    g = np.zeros(n)
    for i in range(n_beeps):
        g += (phase >= i * beep_s * 1.6) & (phase < i * beep_s * 1.6 + beep_s)
    return tone * smooth(np.clip(g, 0, 1), int(0.002 * sr))


def horn(rng, dur_s, sr):
    """Car horn: a sustained dyad of bright harmonic tones (350-500 Hz), honks of 0.2-1.5 s."""
    n = n_samples(dur_s, sr)
    f1 = rng.uniform(330, 480)
    f2 = f1 * rng.uniform(1.15, 1.3)
    amps = 1.0 / np.arange(1, 20) ** 0.6
    tone = harmonic_tone(np.full(n, f1), sr, amps, rng=rng) + harmonic_tone(np.full(n, f2), sr, amps, rng=rng)
    k = int(rng.integers(1, 4))
    ons = np.sort(rng.uniform(0, dur_s * 0.7, k))
    durs = rng.uniform(0.15, 1.5, k)
    return tone * gate(n, sr, ons, durs, 0.01)


def drill(rng, dur_s, sr):
    """Power drill: motor whine (harmonic, f0 100-400 Hz, speed ramps) plus grinding noise."""
    n = n_samples(dur_s, sr)
    ts = np.arange(n) / sr
    f_top = rng.uniform(100, 400)
    ramp = np.interp(ts, np.sort(np.concatenate([[0, dur_s], rng.uniform(0, dur_s, 2)])), rng.uniform(0.6, 1.0, 4))
    f0 = f_top * ramp
    amps = 1.0 / np.arange(1, 25) ** 0.7
    whine = harmonic_tone(f0, sr, amps, rng=rng)
    grind = colored_noise(rng, n, sr, -1.0, 300) * (0.5 + 0.5 * np.sin(2 * np.pi * f0 * ts / 4) ** 2)
    on = gate(n, sr, np.array([rng.uniform(0, min(0.3, 0.5 * dur_s))]), np.array([rng.uniform(0.8, 2.0) * dur_s]), 0.05)
    return (whine / (np.std(whine) + 1e-9) + rng.uniform(0.3, 1.2) * grind) * on


def knock(rng, dur_s, sr):
    """Door knocks: groups of 2-5 fast damped wooden thuds."""
    n = n_samples(dur_s, sr)
    modes = rng.uniform(120, 900, 4)
    hit = decaying_modes(modes, rng.uniform(0.01, 0.05, 4), rng.uniform(0.3, 1.0, 4), 0.12, sr)
    hit = hit + 0.3 * fft_filter(rng.standard_normal(len(hit)), sr, lambda f: (f > 1500) * 1.0) * np.exp(-np.arange(len(hit)) / (0.003 * sr))
    ons = []
    t = rng.uniform(0, min(0.4, 0.5 * dur_s))
    while t < dur_s:
        k = int(rng.integers(2, 6))
        gap = rng.uniform(0.1, 0.25)
        ons.extend(t + gap * np.arange(k))
        t += gap * k + rng.uniform(0.4, 1.2)
    ons = np.array(ons)
    return place_events(n, hit, (ons * sr).astype(int), rng.uniform(0.6, 1.0, len(ons)))


def telephone_bell(rng, dur_s, sr):
    """Telephone bell: an inharmonic bell struck at 15-25 Hz in ring bursts."""
    n = n_samples(dur_s, sr)
    f = rng.uniform(700, 1500) * np.array([1.0, 2.76, 5.40, 8.93])
    strike = decaying_modes(f, np.array([0.3, 0.2, 0.1, 0.05]), np.array([1, 0.6, 0.4, 0.2]), 0.3, sr)
    rate = rng.uniform(15, 25)
    ring_s = rng.uniform(0.6, 1.5)
    start = rng.uniform(0, min(0.4, 0.5 * dur_s))
    ons = np.concatenate([np.arange(t0, min(t0 + ring_s, dur_s), 1 / rate) for t0 in np.arange(start, dur_s, ring_s + rng.uniform(0.5, 1.5))])
    return place_events(n, strike, (ons * sr).astype(int), rng.uniform(0.6, 1.0, len(ons)))


def ding(rng, dur_s, sr):
    """Ding / chime of a device: one or two sustained inharmonic strikes."""
    n = n_samples(dur_s, sr)
    out = np.zeros(n)
    k = int(rng.integers(1, 3))
    base = rng.uniform(500, 2500)
    for i, t in enumerate(np.sort(rng.uniform(0, dur_s * 0.6, k))):
        f = base * rng.uniform(0.75, 1.0) ** i * np.array([1.0, 2.32, 4.25, 6.63])
        s = decaying_modes(f, rng.uniform(0.3, 1.2) * np.array([1, 0.6, 0.35, 0.2]), np.array([1, 0.5, 0.3, 0.15]), dur_s, sr)
        out += place_events(n, s, np.array([int(t * sr)]))
    return out


def tick_tock(rng, dur_s, sr):
    """Clock: alternating tick and tock clicks at exactly 1-2 Hz (strictly periodic)."""
    n = n_samples(dur_s, sr)
    rate = rng.choice([1.0, 2.0, 2.5, 3.0])
    ons = np.arange(rng.uniform(0, min(1 / rate, 0.5 * dur_s)), dur_s, 1 / rate)
    tick = decaying_modes(rng.uniform(2000, 5000, 3), np.array([0.004, 0.003, 0.002]), np.array([1, 0.6, 0.4]), 0.03, sr)
    tock = decaying_modes(rng.uniform(800, 2500, 3), np.array([0.006, 0.004, 0.002]), np.array([1, 0.6, 0.4]), 0.03, sr)
    evs = [tick if i % 2 == 0 else tock for i in range(len(ons))]
    return place_events(n, evs, (ons * sr).astype(int))


# ----------------------------------------------------------------------------- registry
NONMUSIC_GENERATORS: dict[str, Generator] = {
    "Speech": lambda rng, dur_s, sr: _speaker_stream(rng, dur_s, sr),
    "Conversation": conversation,
    "Hubbub, speech noise, speech babble": babble,
    "Laughter": laughter,
    "Walk, footsteps": footsteps,
    "Clapping": clapping,
    "Whistling": whistling,
    "Bird vocalization, bird call, bird song": bird_song,
    "Bark": dog_bark,
    "Insect": insects,
    "Frog": frogs,
    "Meow": meow,
    "Wind": wind,
    "Rain": rain,
    "Stream": stream,
    "Thunder": thunder,
    "Fire": fire,
    "Engine": engine,
    "Siren": siren,
    "Alarm": alarm,
    "Beep, bleep": beeps,
    "Vehicle horn, car horn, honking": horn,
    "Drill": drill,
    "Knock": knock,
    "Telephone bell ringing": telephone_bell,
    "Ding": ding,
    "Tick-tock": tick_tock,
}


def _unit_rms(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    rms = np.sqrt(np.mean(x ** 2))
    return (x / rms if rms > 0 else x).astype(np.float32)


def make_sound(name: str, rng: np.random.Generator, dur_s: float, sr: int) -> np.ndarray:
    """Generate one non-music sound of class ``name`` at unit RMS.

    Parameters
    ----------
    name : str
        A key of :data:`NONMUSIC_GENERATORS` (AudioSet class name).
    rng : np.random.Generator
    dur_s : float
        Duration in seconds.
    sr : int
        Sample rate in Hz (>= 16000 recommended; content is synthesised up to 0.45 * sr).

    Returns
    -------
    np.ndarray, float32, shape (round(dur_s * sr),), RMS 1. A silent draw (possible only for
    very short clips that fall into a pause) is redrawn up to 8 times from the same ``rng``.
    """
    if name not in NONMUSIC_GENERATORS:
        raise UserError(f"unknown non-music sound class {name!r}: choose one of stimuli.sounds.NONMUSIC_GENERATORS")
    n = n_samples(dur_s, sr)
    for _ in range(8):   # a very short clip can fall entirely into a pause: draw again (deterministic)
        x = np.asarray(NONMUSIC_GENERATORS[name](rng, dur_s, sr), dtype=np.float64)[:n]
        if np.any(x):
            break
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    return _unit_rms(x)
