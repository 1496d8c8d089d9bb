"""Pitch stimuli for RSA of pitch height and chroma (Grasse & Tata 2026, our operationalisation).

Tones on every semitone in several timbres, several exemplars per pitch, all RMS-normalised:

- ``pure``: a sine at f0;
- ``harmonic``: harmonics 1..H with a 1/h envelope;
- ``harmonic_random``: harmonics 1..H with a random (log-uniform) envelope per exemplar;
- ``harmonic_lowpass``: harmonics with a fixed spectral envelope (a -12 dB/octave low-pass at 1.5 kHz),
  so the formant stays put while f0 moves;
- ``instrument``: an instrument-like note (fast attack, exponential decay that is faster for
  upper partials, slight vibrato, a bright or dull envelope per exemplar);
- ``missing_fundamental``: harmonics 2..H with a 1/h envelope (no energy at f0);
- ``shepard``: octave-spaced partials under a fixed bell-shaped log-frequency envelope (a pitch-class
  only control: its height is ambiguous by construction).

Harmonics stop below ``0.45 * sr`` (no aliasing). Exemplars differ in random partial phases,
envelope draws and a small level jitter before RMS normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.errors import UserError

TIMBRES = ("pure", "harmonic", "harmonic_random", "harmonic_lowpass", "instrument",
           "missing_fundamental", "shepard")
DEFAULT_TIMBRES = TIMBRES
PITCH_TIMBRES = tuple(t for t in TIMBRES if t != "shepard")   # timbres with a defined height
TARGET_RMS = 0.05
MAX_HARMONICS = 40


def midi_to_hz(midi) -> np.ndarray:
    """Equal-tempered frequency in Hz of MIDI numbers (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


@dataclass
class PitchSet:
    """A labelled set of tones.

    Attributes
    ----------
    audio : np.ndarray, float32, shape (n, n_samples)
        RMS-normalised waveforms at ``sr``.
    sr : int
        Sample rate in Hz.
    midi, pitch_class, octave, exemplar : np.ndarray of int, shape (n,)
        MIDI number, pitch class (0 = C), octave (MIDI 60 = C4 is octave 4), exemplar index.
    f0_hz : np.ndarray of float, shape (n,)
        Nominal fundamental frequency (for ``shepard``, the frequency of the MIDI number).
    timbre : np.ndarray of str, shape (n,)
    config : dict
        The arguments that built the set (for cache keys).
    """

    audio: np.ndarray
    sr: int
    midi: np.ndarray
    pitch_class: np.ndarray
    octave: np.ndarray
    f0_hz: np.ndarray
    timbre: np.ndarray
    exemplar: np.ndarray
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    def subset(self, mask) -> "PitchSet":
        """Return the tones selected by a boolean mask or an index array."""
        mask = np.asarray(mask)
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask
        return PitchSet(self.audio[idx], self.sr, self.midi[idx], self.pitch_class[idx], self.octave[idx],
                        self.f0_hz[idx], self.timbre[idx], self.exemplar[idx], dict(self.config, subset=True))

    def select(self, timbres) -> "PitchSet":
        """Return the tones of the given timbre(s)."""
        timbres = (timbres,) if isinstance(timbres, str) else tuple(timbres)
        return self.subset(np.isin(self.timbre, timbres))


def _harmonic_amps(timbre: str, f0: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Partial amplitudes [n, MAX_HARMONICS] (0 above 0.45 sr) for the harmonic timbres."""
    n = f0.shape[0]
    h = np.arange(1, MAX_HARMONICS + 1, dtype=np.float64)
    freqs = f0[:, None] * h[None, :]
    if timbre == "pure":
        amps = np.zeros((n, MAX_HARMONICS))
        amps[:, 0] = 1.0
    elif timbre == "harmonic":
        amps = np.broadcast_to(1.0 / h, (n, MAX_HARMONICS)).copy()
    elif timbre == "harmonic_random":
        amps = 10.0 ** rng.uniform(-1.5, 0.0, size=(n, MAX_HARMONICS))   # -30..0 dB per partial
    elif timbre == "harmonic_lowpass":
        amps = 1.0 / (1.0 + (freqs / 1500.0) ** 2)
    elif timbre == "instrument":
        tilt = rng.uniform(0.8, 2.0, size=(n, 1))                          # bright .. dull
        amps = h[None, :] ** (-tilt)
    elif timbre == "missing_fundamental":
        amps = np.broadcast_to(1.0 / h, (n, MAX_HARMONICS)).copy()
        amps[:, 0] = 0.0
    else:  # pragma: no cover - guarded by the caller
        raise UserError(f"unknown timbre {timbre!r}")
    amps = np.where(freqs < 0.45 * sr, amps, 0.0)
    if timbre == "missing_fundamental":
        # keep at least two partials (h=2,3) even for the highest notes; they are all below Nyquist
        # for f0 < 0.15 sr, which the caller checks.
        pass
    return amps


def _render_partials(freqs: np.ndarray, amps: np.ndarray, t: np.ndarray, rng: np.random.Generator,
                     decay: np.ndarray | None = None, vibrato: np.ndarray | None = None) -> np.ndarray:
    """Sum of sinusoids: freqs, amps [n, K]; t [samples] in s. Loops over partials, batched over tones."""
    n, k = freqs.shape
    out = np.zeros((n, t.shape[0]), dtype=np.float64)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(n, k))
    vib = 0.0 if vibrato is None else vibrato                                   # [n, samples] phase factor
    for j in range(k):
        a = amps[:, j]
        if not np.any(a > 0):
            continue
        phase = 2.0 * np.pi * freqs[:, j:j + 1] * (t[None, :] + vib) + phases[:, j:j + 1]
        part = a[:, None] * np.sin(phase)
        if decay is not None:
            part *= np.exp(-t[None, :] * decay[:, j:j + 1])
        out += part
    return out


def pitch_set(midi=range(36, 84), timbres=DEFAULT_TIMBRES, n_exemplars: int = 4, dur_s: float = 0.5,
              sr: int = 16000, seed: int = 0, ramp_ms: float = 10.0) -> PitchSet:
    """Build a labelled set of tones on the given semitones.

    Parameters
    ----------
    midi : iterable of int
        MIDI numbers (every semitone over >= 4 octaves, e.g. ``range(36, 84)``).
    timbres : sequence of str
        Any of :data:`TIMBRES`.
    n_exemplars : int
        Exemplars per (pitch, timbre).
    dur_s : float
        Duration of each tone in s.
    sr : int
        Sample rate in Hz.
    seed : int
        Seed of the phase / envelope draws.
    ramp_ms : float
        Raised-cosine onset and offset ramps in ms.

    Returns
    -------
    PitchSet
        Ordered by timbre, then MIDI number, then exemplar.
    """
    midi = np.asarray(list(midi), dtype=np.int64)
    timbres = (timbres,) if isinstance(timbres, str) else tuple(timbres)
    bad = [t for t in timbres if t not in TIMBRES]
    if bad:
        raise UserError(f"unknown timbre {bad[0]!r}: choose from {', '.join(TIMBRES)}")
    if midi.size == 0 or n_exemplars < 1 or dur_s <= 0 or sr <= 0:
        raise UserError("pitch_set needs at least one MIDI number, n_exemplars >= 1, dur_s > 0 and sr > 0")
    if midi_to_hz(midi.max()) >= 0.15 * sr:
        raise UserError(f"MIDI {int(midi.max())} ({midi_to_hz(midi.max()):.0f} Hz) is too high for sr={sr}: "
                        f"keep f0 below 0.15*sr so every timbre has >= 3 partials below 0.45*sr, or raise sr")
    rng = np.random.default_rng(seed)
    n_samples = int(round(dur_s * sr))
    t = np.arange(n_samples) / sr
    ramp = np.ones(n_samples)
    n_ramp = min(int(round(ramp_ms * 1e-3 * sr)), n_samples // 2)
    if n_ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_ramp) / n_ramp)
        ramp[:n_ramp] = r
        ramp[-n_ramp:] = r[::-1]

    m_grid = np.repeat(midi, n_exemplars)
    e_grid = np.tile(np.arange(n_exemplars), midi.size)
    chunks, labels = [], []
    for timbre in timbres:
        f0 = midi_to_hz(m_grid)
        n = f0.shape[0]
        if timbre == "shepard":
            # partials at pc-frequency * 2^k spanning 20 Hz .. 0.45 sr, bell envelope on log2 f centred at 500 Hz
            base = f0 / 2.0 ** np.floor(np.log2(f0 / 20.0))                    # in [20, 40) Hz
            k = np.arange(12)
            freqs = base[:, None] * 2.0 ** k[None, :]
            amps = np.exp(-0.5 * ((np.log2(freqs) - np.log2(500.0)) / 1.2) ** 2)
            amps = np.where(freqs < 0.45 * sr, amps, 0.0)
            wave = _render_partials(freqs, amps, t, rng)
        else:
            amps = _harmonic_amps(timbre, f0, rng, sr)
            freqs = f0[:, None] * np.arange(1, MAX_HARMONICS + 1)[None, :]
            decay = vibrato = None
            if timbre == "instrument":
                h = np.arange(1, MAX_HARMONICS + 1)[None, :]
                decay = rng.uniform(1.0, 4.0, size=(n, 1)) * (1.0 + 0.3 * (h - 1))   # 1/s, faster up top
                vib_hz = rng.uniform(4.5, 6.0, size=(n, 1))
                depth = 0.003                                                      # ~5 cents
                vibrato = depth / (2 * np.pi * vib_hz) * (1.0 - np.cos(2 * np.pi * vib_hz * t[None, :]))
            wave = _render_partials(freqs, amps, t, rng, decay=decay, vibrato=vibrato)
            if timbre == "instrument":
                attack = np.minimum(1.0, t / 0.015)
                wave *= attack[None, :]
        wave *= ramp[None, :] * rng.uniform(0.7, 1.3, size=(n, 1))
        rms = np.sqrt(np.mean(wave ** 2, axis=1, keepdims=True))
        wave = wave / np.maximum(rms, 1e-12) * TARGET_RMS
        chunks.append(wave.astype(np.float32))
        labels.append(np.full(n, timbre, dtype=object))

    audio = np.concatenate(chunks, axis=0)
    midi_all = np.tile(m_grid, len(timbres))
    return PitchSet(
        audio=audio, sr=int(sr), midi=midi_all, pitch_class=midi_all % 12, octave=midi_all // 12 - 1,
        f0_hz=midi_to_hz(midi_all), timbre=np.concatenate(labels).astype(str),
        exemplar=np.tile(e_grid, len(timbres)),
        config=dict(midi=[int(m) for m in midi], timbres=list(timbres), n_exemplars=int(n_exemplars),
                    dur_s=float(dur_s), sr=int(sr), seed=int(seed), ramp_ms=float(ramp_ms), version="pitch-1"),
    )


FEATURE_KINDS = ("log_mel", "log_cqt", "chroma_cqt")


def pitch_features(audio: np.ndarray, sr: int, kind: str = "log_mel", n_mels: int = 64,
                   hop_length: int = 512) -> np.ndarray:
    """Time-averaged spectral representation of every tone (acoustic controls and reference features).

    Parameters
    ----------
    audio : np.ndarray, shape (n, n_samples)
    sr : int
        Sample rate in Hz.
    kind : {"log_mel", "log_cqt", "chroma_cqt"}
        ``log_mel``: dB mel power (n_fft 1024, ``n_mels`` bands up to sr/2); ``log_cqt``: dB
        constant-Q magnitude, 12 bins/octave from C1 over 7 octaves (capped below Nyquist);
        ``chroma_cqt``: librosa's chroma_cqt (12 bins).
    hop_length : int
        Hop in samples.

    Returns
    -------
    np.ndarray, float32, shape (n, n_features)
    """
    import warnings

    import librosa

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise UserError(f"pitch_features expects audio [n, samples], got shape {audio.shape}")
    if kind == "log_mel":
        s = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=1024, hop_length=hop_length, n_mels=n_mels)
        out = librosa.power_to_db(s, ref=1.0, top_db=None)
    elif kind in ("log_cqt", "chroma_cqt"):
        fmin = librosa.note_to_hz("C1")
        n_bins = int(min(84, np.floor(12 * np.log2(0.45 * sr / fmin))))
        with warnings.catch_warnings():   # librosa warns that its decimated top octaves are short; expected
            warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
            if kind == "log_cqt":
                c = np.abs(librosa.cqt(audio, sr=sr, hop_length=hop_length, fmin=fmin, n_bins=n_bins))
                out = librosa.amplitude_to_db(c, ref=1.0, top_db=None)
            else:
                out = librosa.feature.chroma_cqt(y=audio, sr=sr, hop_length=hop_length, fmin=fmin,
                                                 n_octaves=n_bins // 12)
    else:
        raise UserError(f"unknown feature kind {kind!r}: choose from {', '.join(FEATURE_KINDS)}")
    return out.mean(axis=-1).astype(np.float32)
