"""Synthesised instruments: additive notes, drum hits, sung vowels and a cheap reverb.

Every sound is built from whole-note numpy arrays (no per-sample Python loop):

- :func:`synth_note` renders one note of a timbre in :data:`TIMBRES`. Timbres with a static,
  harmonic spectrum (bowed, blown, flute, brass, organ) use a per-note wavetable read with the
  note's running phase (vibrato included), so their cost does not grow with the number of
  partials. Decaying or inharmonic timbres (plucked, harpsichord, struck, mallet) use exact
  additive synthesis over partials: partial ``k`` has frequency ``k f0 sqrt(1 + B k^2)``
  (stiff-string inharmonicity ``B``) or an explicit ratio list (mallet) and decays faster the
  higher it is; sums of exponentially decaying sinusoids are computed per 128-sample block with
  the angle-addition identity, i.e. two small matrix products (:func:`_additive_blocks`).
  Timbres with vibrato and a decaying or inharmonic spectrum (none by default) fall back to a
  [partials x samples] broadcast.
- :func:`drum_hit` renders kick, snare, hat and tom hits (pitch-swept sines and filtered noise).
- :func:`sung_note` is formant synthesis: a glottal-like harmonic source with vibrato, jitter and
  aspiration noise, shaped by a cascade of 2-pole formant resonators (Klatt 1980).
- :func:`reverb` convolves with an exponentially decaying noise impulse response (FFT).

Each timbre maps to an AudioSet class name in :data:`TIMBRE_CLASS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

from harness.errors import UserError

WAVETABLE_SIZE = 8192  # power of two; nearest-sample lookup (phase error <= 0.5 / 8192 cycle)
MAX_PARTIALS = 40
ADDITIVE_BLOCK = 128
CONTROL_STEP = 16
NOISE_BANK_S = 4.0


@dataclass(frozen=True)
class Timbre:
    """Parameters of a synthesised instrument.

    Attributes
    ----------
    name, class_name : str
        Short name and the AudioSet-like class it stands for.
    n_partials : int
        Maximum number of partials (also capped below 0.45 * sr).
    slope : float
        Partial amplitude ~ k**-slope (before velocity brightening).
    even_gain : float
        Extra gain of even partials (1 = none; < 1 = clarinet-like odd dominance).
    inharmonicity : float
        Stiff-string coefficient B: f_k = k f0 sqrt(1 + B k^2).
    ratios : tuple of float
        Explicit partial frequency ratios (overrides the harmonic series), e.g. a marimba bar.
    attack_s, release_s : float
        Attack ramp and release fade lengths in seconds.
    decay_s : float or None
        Time constant (s) of the fundamental's exponential decay; None = sustained.
    partial_decay : float
        Decay rate of partial k is (1 + partial_decay (k - 1)) / decay_s.
    vibrato_hz, vibrato_cents : float
        Vibrato rate and depth (depth fades in over the first 0.25 s).
    noise : float
        Level of filtered noise (breath, bow) relative to the harmonic part, following the envelope.
    transient : float
        Level of a short noise burst at the onset (pluck, hammer, mallet).
    brightness_velocity : float
        Slope reduction per unit velocity above 0.5 (louder = brighter).
    """

    name: str
    class_name: str
    n_partials: int
    slope: float
    even_gain: float = 1.0
    inharmonicity: float = 0.0
    ratios: tuple = ()
    attack_s: float = 0.01
    release_s: float = 0.1
    decay_s: float | None = None
    partial_decay: float = 0.0
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0
    noise: float = 0.0
    transient: float = 0.0
    brightness_velocity: float = 0.6

    @property
    def sustained(self) -> bool:
        """True when the spectrum is static and harmonic (rendered with a wavetable)."""
        return self.decay_s is None and not self.ratios and self.inharmonicity == 0.0


TIMBRES: dict[str, Timbre] = {
    t.name: t
    for t in (
        Timbre("plucked", "Plucked string instrument", 20, 1.1, inharmonicity=1.5e-4,
               attack_s=0.003, release_s=0.25, decay_s=1.2, partial_decay=0.25, transient=0.15),
        Timbre("harpsichord", "Harpsichord", 24, 0.7, inharmonicity=5e-5, attack_s=0.002,
               release_s=0.15, decay_s=1.5, partial_decay=0.12, transient=0.2),
        Timbre("bowed", "Bowed string instrument", 30, 1.0, attack_s=0.09, release_s=0.2,
               vibrato_hz=5.5, vibrato_cents=18.0, noise=0.04),
        Timbre("blown", "Wind instrument, woodwind instrument", 20, 1.0, even_gain=0.25,
               attack_s=0.05, release_s=0.12, vibrato_hz=4.8, vibrato_cents=8.0, noise=0.06),
        Timbre("flute", "Flute", 8, 1.8, attack_s=0.06, release_s=0.12, vibrato_hz=5.0,
               vibrato_cents=12.0, noise=0.12),
        Timbre("brass", "Brass instrument", 24, 0.9, attack_s=0.04, release_s=0.1,
               vibrato_hz=5.0, vibrato_cents=5.0, noise=0.02, brightness_velocity=1.0),
        Timbre("struck", "Piano", 20, 1.2, inharmonicity=4e-4, attack_s=0.002, release_s=0.3,
               decay_s=2.5, partial_decay=0.35, transient=0.08, brightness_velocity=0.9),
        Timbre("mallet", "Marimba, xylophone", 4, 0.0, ratios=(1.0, 3.93, 9.2, 16.3),
               attack_s=0.001, release_s=0.15, decay_s=0.5, partial_decay=1.2, transient=0.1),
        Timbre("organ", "Organ", 16, 0.9, attack_s=0.03, release_s=0.08),
    )
}
DRUM_KINDS = ("kick", "snare", "hat", "tom")
DRUM_CLASS = "Drum kit"
SINGING_CLASS = "Singing"
TIMBRE_CLASS: dict[str, str] = {
    **{name: t.class_name for name, t in TIMBRES.items()},
    "drums": DRUM_CLASS,
    "voice": SINGING_CLASS,
}

# Formant frequencies (Hz) and bandwidths (Hz) of five vowels, F1..F5; "adult" (male-ish) and
# "high" (female/soprano-ish) sets after Peterson & Barney (1952) and common singing tables.
VOWEL_FORMANTS: dict[str, dict[str, tuple]] = {
    "adult": {
        "a": ((730, 1090, 2440, 3400, 4000), (80, 90, 120, 150, 200)),
        "e": ((530, 1840, 2480, 3400, 4000), (60, 100, 120, 150, 200)),
        "i": ((270, 2290, 3010, 3400, 4000), (60, 90, 100, 150, 200)),
        "o": ((570, 840, 2410, 3400, 4000), (70, 80, 100, 150, 200)),
        "u": ((300, 870, 2240, 3400, 4000), (60, 80, 100, 150, 200)),
    },
    "high": {
        "a": ((850, 1220, 2810, 3700, 4500), (90, 100, 120, 150, 200)),
        "e": ((610, 2330, 2990, 3800, 4600), (70, 100, 120, 150, 200)),
        "i": ((310, 2790, 3310, 3900, 4700), (60, 100, 120, 150, 200)),
        "o": ((590, 920, 2710, 3700, 4500), (80, 90, 100, 150, 200)),
        "u": ((370, 950, 2670, 3700, 4500), (60, 80, 100, 150, 200)),
    },
}
VOWELS = tuple(VOWEL_FORMANTS["adult"])


def _check_common(f0_hz: float, dur_s: float, sr: int) -> None:
    if not (isinstance(sr, (int, np.integer)) and sr >= 4000):
        raise UserError(f"sample rate sr={sr!r} is not an integer >= 4000 Hz; pass e.g. sr=22050")
    if not (np.isfinite(dur_s) and dur_s > 0):
        raise UserError(f"note duration dur_s={dur_s!r} must be a positive number of seconds")
    if not (np.isfinite(f0_hz) and 0 < f0_hz < 0.45 * sr):
        raise UserError(f"note frequency f0_hz={f0_hz!r} must be in (0, {0.45 * sr:.0f}) Hz at sr={sr}")


def _timbre(timbre: str | Timbre) -> Timbre:
    if isinstance(timbre, Timbre):
        return timbre
    try:
        return TIMBRES[timbre]
    except KeyError:
        raise UserError(f"unknown timbre {timbre!r}; use one of {sorted(TIMBRES)}") from None


def _envelope(n: int, sr: int, attack_s: float, hold_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine attack, flat hold, exponential release that ends at exactly zero."""
    env = np.ones(n, dtype=np.float32)
    n_att = max(1, int(round(attack_s * sr)))
    k = min(n_att, n)
    env[:k] = 0.5 - 0.5 * np.cos(np.float32(np.pi / n_att) * np.arange(k, dtype=np.float32))
    i_rel = min(n, int(round(hold_s * sr)))
    if i_rel < n:
        m = n - i_rel
        tau = max(release_s, 1e-3) / 4.0 * sr  # samples
        fade = np.exp(np.arange(m, dtype=np.float32) * np.float32(-1.0 / tau))
        fade *= np.linspace(1.0, 0.0, m, dtype=np.float32)
        env[i_rel:] *= fade
    return env


def _cycles(f0_hz: float, n: int, sr: int, vib_hz: float, vib_cents: float,
            rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
    """Running phase in cycles (float64) of a tone with delayed vibrato and optional jitter.

    The relative frequency deviation is evaluated every CONTROL_STEP samples (held in between;
    steps of at most a few cents every 0.7 ms at 22 kHz) and integrated exactly.
    """
    t = np.arange(n) / sr
    if vib_hz <= 0 and jitter <= 0:
        return f0_hz * t
    n_ctl = n // CONTROL_STEP + 1
    tc = np.arange(n_ctl) * (CONTROL_STEP / sr)
    dev = np.zeros(n_ctl)
    if vib_hz > 0 and vib_cents > 0:
        depth = 2.0 ** (vib_cents / 1200.0) - 1.0
        rate = vib_hz * (1.0 + 0.05 * rng.standard_normal())
        dev += depth * np.minimum(tc / 0.25, 1.0) * np.sin(2 * np.pi * rate * tc + rng.uniform(0, 2 * np.pi))
    if jitter > 0:
        dev += jitter * rng.standard_normal(n_ctl)
    dev = np.repeat(dev.astype(np.float32), CONTROL_STEP)[:n]
    return f0_hz * (t + np.cumsum(dev) / sr)


def _partial_amps(tb: Timbre, k: np.ndarray, velocity: float, rng: np.random.Generator) -> np.ndarray:
    slope = max(0.0, tb.slope - tb.brightness_velocity * (velocity - 0.5))
    amps = k.astype(np.float64) ** -slope
    if tb.even_gain != 1.0:
        amps = np.where(k % 2 == 0, amps * tb.even_gain, amps)
    amps *= np.exp(0.15 * rng.standard_normal(k.size))  # exemplar-to-exemplar spectral jitter
    return amps


def _filtered_noise(n: int, sr: int, lo_hz: float, hi_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Band-passed Gaussian noise: a random (rng) excerpt of a fixed 4 s noise bank per band.

    Band edges are rounded to 1/3 octave, so the banks (a memoised pure function of the band and
    ``sr``) are reused; notes longer than the bank wrap around.
    """
    hi_hz = min(_third_octave(hi_hz), 0.45 * sr)
    lo_hz = min(_third_octave(lo_hz), 0.5 * hi_hz)
    bank = _noise_bank(float(lo_hz), float(hi_hz), int(sr))
    if n <= bank.size:
        start = int(rng.integers(bank.size - n + 1))
        return bank[start: start + n].copy()
    return np.resize(np.roll(bank, -int(rng.integers(bank.size))), n)


@lru_cache(maxsize=64)
def _noise_bank(lo_hz: float, hi_hz: float, sr: int) -> np.ndarray:
    sos = signal.butter(2, [lo_hz, hi_hz], btype="bandpass", fs=sr, output="sos")
    x = signal.sosfilt(sos, np.random.default_rng(12345).standard_normal(int(NOISE_BANK_S * sr)))
    x = (x / np.sqrt(np.mean(x**2))).astype(np.float32)
    x.flags.writeable = False
    return x


def _third_octave(f_hz: float) -> float:
    return float(1000.0 * 2.0 ** (np.round(3 * np.log2(f_hz / 1000.0)) / 3))


def _wavetable(k: np.ndarray, amps: np.ndarray, phases_cycles: np.ndarray) -> np.ndarray:
    """One period (WAVETABLE_SIZE samples) of sum_k amps_k cos(2 pi (k x + phase_k)), via irfft."""
    spec = np.zeros(WAVETABLE_SIZE // 2 + 1, dtype=np.complex128)
    spec[k] = amps * np.exp(2j * np.pi * phases_cycles) * (WAVETABLE_SIZE / 2)
    return np.fft.irfft(spec, WAVETABLE_SIZE).astype(np.float32)


def _read_wavetable(table: np.ndarray, cyc: np.ndarray) -> np.ndarray:
    """Nearest-sample wavetable lookup at running phase ``cyc`` (cycles)."""
    idx = ((cyc - np.floor(cyc)) * WAVETABLE_SIZE + 0.5).astype(np.int32)
    idx &= WAVETABLE_SIZE - 1
    return np.take(table, idx)


def _decay_rates(tb: Timbre, k: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Exponential decay rate (1/s) of each partial; zeros for sustained timbres."""
    if tb.decay_s is None:
        return np.zeros(k.size)
    return (1.0 + tb.partial_decay * ((ratios if tb.ratios else k) - 1.0)) / tb.decay_s


def _additive_blocks(freqs_hz: np.ndarray, amps: np.ndarray, phases_cycles: np.ndarray,
                     rates: np.ndarray, n: int, sr: int) -> np.ndarray:
    """sum_k amps_k exp(-rates_k t) sin(2 pi (freqs_k t + phases_k)), exactly, via two matmuls.

    With blocks of ADDITIVE_BLOCK samples, sin(a_kb + w_k m) = sin(a_kb) cos(w_k m) +
    cos(a_kb) sin(w_k m), and the decay factorises the same way, so the output blocks are
    P.T @ C + Q.T @ S with P, Q [K, n_blocks] (block starts) and C, S [K, block] (within a block).
    """
    L = ADDITIVE_BLOCK
    n_blk = -(-n // L)
    w = 2 * np.pi * freqs_hz / sr  # rad / sample
    d = rates / sr  # 1 / sample
    start = np.arange(n_blk) * L
    # angles reduced mod 2 pi in float64, transcendentals in float32 (errors < 1e-4)
    a = np.mod(np.outer(w, start) + 2 * np.pi * phases_cycles[:, None], 2 * np.pi).astype(np.float32)
    g = (amps[:, None] * np.exp(-np.outer(d, start))).astype(np.float32)
    m = np.arange(L, dtype=np.float32)
    dm = np.exp(np.multiply.outer(-d.astype(np.float32), m))
    wm = np.multiply.outer(w.astype(np.float32), m)
    p, q = g * np.sin(a), g * np.cos(a)
    c, s = np.cos(wm) * dm, np.sin(wm) * dm
    return (p.T @ c + q.T @ s).reshape(-1)[:n]


def synth_note(f0_hz: float, dur_s: float, sr: int, timbre: str, velocity: float,
               rng: np.random.Generator) -> np.ndarray:
    """Render one note of an instrument.

    Parameters
    ----------
    f0_hz : float
        Fundamental frequency in Hz, below 0.45 * sr.
    dur_s : float
        Sounding (held) duration in seconds; the release tail follows it.
    sr : int
        Sample rate in Hz.
    timbre : str
        A key of :data:`TIMBRES`.
    velocity : float
        Loudness in [0, 1]; scales the amplitude and brightens the spectrum.
    rng : np.random.Generator
        Source of partial phases, spectral jitter, vibrato phase and noise.

    Returns
    -------
    np.ndarray, float32, shape (round((dur_s + release_s) * sr),)
        The note, peak amplitude about ``velocity``; it ends at zero.
    """
    _check_common(f0_hz, dur_s, sr)
    tb = _timbre(timbre)
    velocity = float(np.clip(velocity, 0.0, 1.0))
    n = max(1, int(round((dur_s + tb.release_s) * sr)))
    env = _envelope(n, sr, tb.attack_s, dur_s, tb.release_s)
    cyc = _cycles(f0_hz, n, sr, tb.vibrato_hz, tb.vibrato_cents, rng)
    vib_margin = 2.0 ** (tb.vibrato_cents / 1200.0)

    if tb.ratios:
        ratios = np.asarray(tb.ratios, dtype=np.float64)
        k = np.arange(1, ratios.size + 1)
    else:
        k_all = np.arange(1, min(tb.n_partials, MAX_PARTIALS) + 1)
        ratios = k_all * np.sqrt(1.0 + tb.inharmonicity * k_all**2)
        k = k_all
    keep = ratios * f0_hz * vib_margin < 0.45 * sr
    ratios, k = ratios[keep], k[keep]
    amps = _partial_amps(tb, k, velocity, rng)
    phases = rng.uniform(0.0, 1.0, k.size)

    if tb.sustained:
        # static harmonic spectrum: one period in a wavetable, read with the running phase
        y = _read_wavetable(_wavetable(k, amps, phases - 0.25), cyc) * env
    elif tb.vibrato_hz == 0:
        y = _additive_blocks(f0_hz * ratios, amps, phases, _decay_rates(tb, k, ratios), n, sr) * env
    else:
        # additive with vibrato, broadcast over partials: the phase of partial k is
        # 2 pi (k frac(c) + (r_k - k) c + phi_k), exact mod 2 pi for harmonic k
        two_pi = np.float32(2 * np.pi)
        fc = (cyc - np.floor(cyc)).astype(np.float32)
        s = np.multiply.outer((two_pi * k).astype(np.float32), fc)
        dr = ((ratios - k) * 2 * np.pi).astype(np.float32)
        if np.any(dr != 0):
            s += np.multiply.outer(dr, cyc.astype(np.float32))
        s += (two_pi * phases).astype(np.float32)[:, None]
        np.sin(s, out=s)
        if tb.decay_s is not None:
            s *= np.exp(-np.outer(_decay_rates(tb, k, ratios), np.arange(n) / sr)).astype(np.float32)
        y = (amps.astype(np.float32) @ s) * env

    if tb.noise > 0:
        y += tb.noise * np.abs(y).max(initial=1e-9) * env * _filtered_noise(
            n, sr, 1.5 * f0_hz, 8.0 * f0_hz + 2000.0, rng)
    if tb.transient > 0:
        m = min(n, int(0.012 * sr))
        decay = np.exp(-np.arange(m, dtype=np.float32) / np.float32(0.003 * sr))
        burst = _filtered_noise(m, sr, 800.0, 9000.0, rng) * decay
        y[:m] += tb.transient * np.abs(y).max(initial=1e-9) * burst
    peak = np.abs(y).max(initial=0.0)
    if peak > 0:
        y *= velocity / peak
    return y.astype(np.float32, copy=False)


@dataclass(frozen=True)
class DrumKit:
    """How one drum kit is tuned and damped (the defaults are the standard kit of :func:`drum_hit`).

    Attributes
    ----------
    tune : float
        Multiplier on every drum pitch (kick sweep, snare head modes, tom pitch).
    decay : float
        Multiplier on every decay time constant (damped < 1 < ringing).
    hat_lo_hz : float
        Lower edge of the hi-hat's noise band in Hz (darker cymbals have lower edges).
    snare_noise : float
        Level of the snare wires' noise relative to the drum head.
    """

    tune: float = 1.0
    decay: float = 1.0
    hat_lo_hz: float = 6000.0
    snare_noise: float = 0.9


def random_kit(rng: np.random.Generator) -> DrumKit:
    """A random kit: pitches +-0.6 octave, decays x0.6-1.7, hat band from 3-8 kHz, snare wires 0.3-1.2."""
    return DrumKit(tune=float(2 ** rng.uniform(-0.6, 0.6)), decay=float(np.exp(rng.uniform(-0.5, 0.5))),
                   hat_lo_hz=float(rng.uniform(3000.0, 8000.0)), snare_noise=float(rng.uniform(0.3, 1.2)))


def drum_hit(kind: str, sr: int, rng: np.random.Generator, velocity: float = 1.0,
             kit: DrumKit | None = None) -> np.ndarray:
    """Render one drum hit.

    Parameters
    ----------
    kind : {"kick", "snare", "hat", "tom"}
        Kick: a 150 -> 50 Hz pitch-swept sine with a click; snare: two drum-head modes (185 and
        330 Hz) plus band-passed noise (the snares); hat: high-passed noise (from 6 kHz) with
        metallic square partials; tom: a pitch-swept sine at a random drum pitch (90-200 Hz).
        Frequencies and decays are those of the default :class:`DrumKit`.
    sr : int
        Sample rate in Hz.
    rng : np.random.Generator
        Source of noise and small parameter jitter.
    velocity : float
        Peak amplitude in [0, 1].
    kit : DrumKit, optional
        Tuning, damping and brightness of the kit (default ``DrumKit()``).

    Returns
    -------
    np.ndarray, float32
        The hit (0.2 s for a hat up to 0.45 s for a kick or tom, times ``kit.decay``), ending near zero.
    """
    if kind not in DRUM_KINDS:
        raise UserError(f"unknown drum kind {kind!r}; use one of {DRUM_KINDS}")
    _check_common(100.0, 0.1, sr)
    kit = DrumKit() if kit is None else kit
    jit = np.exp(0.05 * rng.standard_normal()) * kit.tune
    dk = kit.decay
    dur_s = {"kick": 0.45, "snare": 0.35, "hat": 0.2, "tom": 0.45}[kind] * dk
    n = int(dur_s * sr)
    t = np.arange(n, dtype=np.float64) / sr
    if kind == "kick":
        f = jit * (50.0 + 100.0 * np.exp(-t / 0.03))
        y = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / (0.18 * dk))
        y[: int(0.004 * sr)] += 0.5 * _filtered_noise(int(0.004 * sr), sr, 1000, 6000, rng)
    elif kind == "snare":
        head = 0.6 * np.sin(2 * np.pi * 185 * jit * t) + 0.35 * np.sin(2 * np.pi * 330 * jit * t)
        y = head * np.exp(-t / (0.05 * dk)) + kit.snare_noise * _filtered_noise(n, sr, 1200, 8000, rng) \
            * np.exp(-t / (0.1 * dk))
    elif kind == "hat":
        bright = kit.hat_lo_hz / 6000.0
        metal = sum(np.sign(np.sin(2 * np.pi * f * (jit / kit.tune) * bright * t)) for f in (2050, 3140, 4320, 5400))
        hp_lo = min(kit.hat_lo_hz, 0.3 * sr)
        y = (_filtered_noise(n, sr, hp_lo, 0.45 * sr, rng) + 0.15 * metal) * np.exp(-t / (0.05 * dk))
    else:  # tom
        f_tom = rng.uniform(90.0, 200.0) * kit.tune
        f = f_tom * (1.0 + 0.4 * np.exp(-t / 0.04))
        y = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / (0.15 * dk))
        y[: int(0.005 * sr)] += 0.3 * _filtered_noise(int(0.005 * sr), sr, 500, 5000, rng)
    y *= np.linspace(1.0, 0.0, n) ** 0.5 if kind != "hat" else 1.0
    peak = np.abs(y).max()
    return (float(np.clip(velocity, 0.0, 1.0)) * y / peak).astype(np.float32)


def _resonator_ba(freq_hz: float, bw_hz: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Klatt (1980) 2-pole resonator (b, a) with unit gain at 0 Hz."""
    c = -np.exp(-2 * np.pi * bw_hz / sr)
    b = 2 * np.exp(-np.pi * bw_hz / sr) * np.cos(2 * np.pi * freq_hz / sr)
    a = 1.0 - b - c
    return np.array([a]), np.array([1.0, -b, -c])


def formant_response(f_hz: np.ndarray, freqs_hz, bws_hz, sr: int) -> np.ndarray:
    """Magnitude response at ``f_hz`` of a cascade of Klatt resonators (formants above 0.45 sr skipped)."""
    z1 = np.exp(-2j * np.pi * np.asarray(f_hz, np.float64) / sr)
    h = np.ones(z1.shape)
    for f, bw in zip(freqs_hz, bws_hz):
        if f < 0.45 * sr:
            b, a = _resonator_ba(f, bw, sr)
            h *= np.abs(b[0] / (a[0] + a[1] * z1 + a[2] * z1**2))
    return h


def sung_note(f0: float, dur: float, vowel: str, sr: int, rng: np.random.Generator,
              velocity: float = 0.8) -> np.ndarray:
    """Formant synthesis of a sung vowel.

    A glottal-like source (harmonics of f0 with a -12 dB/octave tilt, i.e. a smoothed glottal
    pulse train) is shaped by a cascade of five 2-pole Klatt formant resonators of ``vowel`` and
    +6 dB/octave lip radiation. The cascade is applied as its steady-state response to the
    periodic source (its magnitude at each harmonic, :func:`formant_response`), which gives one
    wavetable read with vibrato (5.5 Hz, +-40 cents, delayed) and jitter; band-passed aspiration
    noise (1-4 kHz) is added.

    Parameters
    ----------
    f0 : float
        Fundamental frequency in Hz.
    dur : float
        Held duration in seconds (a 0.08 s release follows).
    vowel : str
        One of :data:`VOWELS` ("a", "e", "i", "o", "u"). Formants of the "high" set are used
        when f0 > 250 Hz.
    sr : int
        Sample rate in Hz.
    rng : np.random.Generator
        Source of phases, vibrato phase, jitter and noise.
    velocity : float
        Peak amplitude in [0, 1].

    Returns
    -------
    np.ndarray, float32, shape (round((dur + 0.08) * sr),)
    """
    _check_common(f0, dur, sr)
    if vowel not in VOWELS:
        raise UserError(f"unknown vowel {vowel!r}; use one of {VOWELS}")
    release_s = 0.08
    n = max(1, int(round((dur + release_s) * sr)))
    env = _envelope(n, sr, 0.04, dur, release_s)
    cyc = _cycles(f0, n, sr, 5.5, 40.0, rng, jitter=0.003)
    k = np.arange(1, max(2, int(0.45 * sr / (f0 * 1.03))) + 1)
    fk = k * f0
    source = 1.0 / (1.0 + (k - 1.0) ** 2 * 0.5)  # smoothed glottal pulse: ~ -12 dB/octave
    freqs, bws = VOWEL_FORMANTS["high" if f0 > 250 else "adult"][vowel]
    gain = formant_response(fk, freqs, bws, sr) * 2 * np.sin(np.pi * fk / sr)  # + lip radiation
    y = _read_wavetable(_wavetable(k, source * gain, np.zeros(k.size)), cyc)
    # aspiration noise in the F2-F3 region, following the glottal envelope
    y += 0.04 * np.abs(y).max(initial=1e-9) * _filtered_noise(n, sr, 1000.0, 4000.0, rng)
    y = y * env
    peak = np.abs(y).max(initial=0.0)
    if peak > 0:
        y *= float(np.clip(velocity, 0.0, 1.0)) / peak
    return y.astype(np.float32, copy=False)


def reverb(x: np.ndarray, sr: int, rt60_s: float, rng: np.random.Generator, wet: float = 0.35,
           predelay_s: float = 0.01) -> np.ndarray:
    """Cheap room reverb: FFT convolution with an exponentially decaying noise impulse response.

    The IR is Gaussian noise with a 60 dB decay over ``rt60_s`` (length ``rt60_s``), gently
    low-passed as it decays (the noise is mixed towards its smoothed version), normalised to
    unit energy.

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Dry signal(s); the last axis is time.
    sr : int
        Sample rate in Hz.
    rt60_s : float
        Reverberation time in seconds (> 0).
    rng : np.random.Generator
        Source of the impulse response noise.
    wet : float
        Mix of the reverberant part in [0, 1].
    predelay_s : float
        Delay of the reverberant part in seconds.

    Returns
    -------
    np.ndarray, float32, same shape as ``x`` (the tail beyond the input is cut).
    """
    if not (np.isfinite(rt60_s) and rt60_s > 0):
        raise UserError(f"reverb time rt60_s={rt60_s!r} must be a positive number of seconds")
    x = np.asarray(x, dtype=np.float32)
    n_ir = max(2, int(rt60_s * sr))
    t = np.arange(n_ir) / sr
    noise = rng.standard_normal(n_ir)
    smooth = np.convolve(noise, np.ones(4) / 4, mode="same")
    mix = np.clip(t / rt60_s, 0.0, 1.0)
    ir = ((1 - mix) * noise + mix * smooth) * np.exp(-6.91 * t / rt60_s)
    ir = np.concatenate([np.zeros(int(predelay_s * sr)), ir])
    ir /= np.sqrt(np.sum(ir**2))
    ir = ir.astype(np.float32).reshape((1,) * (x.ndim - 1) + (-1,))
    wet_sig = signal.fftconvolve(x, ir, axes=-1)[..., : x.shape[-1]]
    dry_rms = np.sqrt(np.mean(x**2, axis=-1, keepdims=True)) + 1e-12
    wet_rms = np.sqrt(np.mean(wet_sig**2, axis=-1, keepdims=True)) + 1e-12
    return ((1 - wet) * x + wet * wet_sig * (dry_rms / wet_rms)).astype(np.float32)
