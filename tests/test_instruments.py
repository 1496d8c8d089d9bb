"""Tests of the synthesised instruments (stimuli/instruments.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.errors import UserError
from stimuli import instruments as ins
from stimuli.instruments import (DRUM_KINDS, TIMBRE_CLASS, TIMBRES, VOWELS, drum_hit, formant_response,
                                 reverb, sung_note, synth_note)

SR = 22050
REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    return Path(os.environ.get("MEC_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()


def _peak_hz(y: np.ndarray, sr: int, f_lo: float, f_hi: float) -> tuple[float, float]:
    """Frequency (parabolic interpolation) and magnitude of the largest spectral peak in [f_lo, f_hi]."""
    n = 1 << int(np.ceil(np.log2(y.size)) + 1)
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size), n))
    f = np.fft.rfftfreq(n, 1 / sr)
    band = np.nonzero((f >= f_lo) & (f <= f_hi))[0]
    i = band[np.argmax(spec[band])]
    a, b, c = np.log(spec[i - 1: i + 2] + 1e-12)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float(f[i] + delta * (f[1] - f[0])), float(spec[i])


def _yin_f0(y: np.ndarray, sr: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    return librosa.yin(y.astype(np.float64), fmin=fmin, fmax=fmax, sr=sr, frame_length=2048, hop_length=256)


@pytest.mark.parametrize("timbre", sorted(TIMBRES))
def test_note_shape_level_and_end(timbre):
    rng = np.random.default_rng(0)
    dur_s, vel = 0.5, 0.7
    y = synth_note(261.63, dur_s, SR, timbre, vel, rng)
    assert y.dtype == np.float32
    assert y.size == int(round((dur_s + TIMBRES[timbre].release_s) * SR))
    assert np.all(np.isfinite(y))
    assert np.abs(y).max() == pytest.approx(vel, rel=1e-4)
    assert abs(y[-1]) < 1e-3 * vel  # the release ends at zero: no click when notes are summed


@pytest.mark.parametrize("timbre", ["bowed", "blown", "flute", "brass", "organ", "struck", "plucked",
                                   "harpsichord", "mallet"])
@pytest.mark.parametrize("f0", [110.0, 261.63, 659.26])
def test_pitch_is_f0(timbre, f0):
    """The median YIN pitch (search range 0.7-3 f0, so no sub-octave errors) of the held part is
    within 25 cents of f0, and there is no sub-harmonic energy (f0/2 at least 40 dB down)."""
    y = synth_note(f0, 0.8, SR, timbre, 0.8, np.random.default_rng(1))
    held = y[int(0.1 * SR): int(0.7 * SR)]
    f_est = np.median(_yin_f0(held, SR, 0.7 * f0, 3.0 * f0))
    assert abs(1200 * np.log2(f_est / f0)) < 25.0, (timbre, f0, f_est)
    _, a_f0 = _peak_hz(held, SR, 0.95 * f0, 1.05 * f0)
    _, a_sub = _peak_hz(held, SR, 0.45 * f0, 0.55 * f0)
    assert a_sub < 0.01 * a_f0


def test_struck_is_inharmonic_and_organ_is_harmonic():
    f0 = 130.81
    rng = np.random.default_rng(2)
    stretch = {}
    for timbre in ("struck", "organ"):
        y = synth_note(f0, 1.5, SR, timbre, 1.0, rng)[: int(1.5 * SR)]
        f10, _ = _peak_hz(y, SR, 9.5 * f0, 10.8 * f0)
        stretch[timbre] = 1200 * np.log2(f10 / (10 * f0))
    expected = 1200 * np.log2(np.sqrt(1 + TIMBRES["struck"].inharmonicity * 100))  # ~ +34 cents
    assert abs(stretch["struck"] - expected) < 5.0, stretch
    assert abs(stretch["organ"]) < 3.0, stretch


def test_plucked_decays_and_organ_sustains():
    rng = np.random.default_rng(3)
    seg = int(0.1 * SR)
    ratios = {}
    for timbre in ("plucked", "struck", "mallet", "organ", "bowed"):
        y = synth_note(220.0, 2.0, SR, timbre, 0.8, rng)
        early = np.mean(y[int(0.15 * SR): int(0.15 * SR) + seg] ** 2)
        late = np.mean(y[int(1.85 * SR) - seg: int(1.85 * SR)] ** 2)
        ratios[timbre] = 10 * np.log10(early / late)
    assert ratios["plucked"] > 10 and ratios["struck"] > 5 and ratios["mallet"] > 20, ratios
    assert abs(ratios["organ"]) < 1.5 and abs(ratios["bowed"]) < 3.0, ratios


def test_blown_has_weak_even_partials():
    f0 = 220.0
    y_b = synth_note(f0, 1.0, SR, "blown", 0.5, np.random.default_rng(4))[: SR]
    y_s = synth_note(f0, 1.0, SR, "bowed", 0.5, np.random.default_rng(4))[: SR]
    _, b2 = _peak_hz(y_b, SR, 1.9 * f0, 2.1 * f0)
    _, b3 = _peak_hz(y_b, SR, 2.9 * f0, 3.1 * f0)
    _, s2 = _peak_hz(y_s, SR, 1.9 * f0, 2.1 * f0)
    _, s3 = _peak_hz(y_s, SR, 2.9 * f0, 3.1 * f0)
    assert b2 < 0.6 * b3  # clarinet-like: 2nd harmonic weaker than the 3rd
    assert s2 > s3  # bowed string: smooth 1/k envelope


def test_vibrato_on_bowed_not_on_organ():
    f0 = 440.0
    spread = {}
    for timbre in ("bowed", "organ"):
        y = synth_note(f0, 1.5, SR, timbre, 0.8, np.random.default_rng(5))
        f = _yin_f0(y[int(0.4 * SR): int(1.4 * SR)], SR, 200.0, 1000.0)
        spread[timbre] = np.std(1200 * np.log2(f / f0))
    assert spread["bowed"] > 5.0 and spread["organ"] < 1.0, spread


def test_additive_blocks_matches_direct_formula():
    rng = np.random.default_rng(6)
    freqs = rng.uniform(50, 5000, 7)
    amps, phases, rates = rng.uniform(0, 1, 7), rng.uniform(0, 1, 7), rng.uniform(0, 8, 7)
    n = 3 * ins.ADDITIVE_BLOCK + 17
    t = np.arange(n) / SR
    direct = (amps[:, None] * np.exp(-np.outer(rates, t))
              * np.sin(2 * np.pi * (np.outer(freqs, t) + phases[:, None]))).sum(0)
    fast = ins._additive_blocks(freqs, amps, phases, rates, n, SR)
    assert fast.shape == (n,)
    assert np.max(np.abs(fast - direct)) < 1e-4


def test_drum_hits_are_ordered_by_brightness():
    rng = np.random.default_rng(7)
    centroid = {}
    for kind in DRUM_KINDS:
        y = drum_hit(kind, SR, rng)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
        assert np.abs(y).max() == pytest.approx(1.0, rel=1e-4)
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(y.size, 1 / SR)
        centroid[kind] = float((f * spec).sum() / spec.sum())
    assert max(centroid["kick"], centroid["tom"]) < 400 < centroid["snare"] < centroid["hat"], centroid


def _centroid_hz(y: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    return float((np.fft.rfftfreq(y.size, 1 / SR) * spec).sum() / spec.sum())


def test_the_default_kit_is_the_standard_kit_and_kits_retune_and_damp():
    for kind in DRUM_KINDS:
        a = drum_hit(kind, SR, np.random.default_rng(3))
        b = drum_hit(kind, SR, np.random.default_rng(3), kit=ins.DrumKit())
        assert np.array_equal(a, b), kind
    low, high = ins.DrumKit(tune=0.7), ins.DrumKit(tune=1.4)
    assert _centroid_hz(drum_hit("kick", SR, np.random.default_rng(1), kit=low)) < \
        _centroid_hz(drum_hit("kick", SR, np.random.default_rng(1), kit=high))
    dark, bright = ins.DrumKit(hat_lo_hz=3000.0), ins.DrumKit(hat_lo_hz=8000.0)
    assert _centroid_hz(drum_hit("hat", SR, np.random.default_rng(1), kit=dark)) < \
        _centroid_hz(drum_hit("hat", SR, np.random.default_rng(1), kit=bright))
    short = drum_hit("snare", SR, np.random.default_rng(1), kit=ins.DrumKit(decay=0.6))
    long = drum_hit("snare", SR, np.random.default_rng(1), kit=ins.DrumKit(decay=1.6))
    assert short.size < long.size


@given(st.integers(0, 2 ** 31 - 1))
@settings(max_examples=25, deadline=None)
def test_random_kits_stay_in_their_documented_ranges(seed):
    kit = ins.random_kit(np.random.default_rng(seed))
    assert 2 ** -0.6 <= kit.tune <= 2 ** 0.6 and np.exp(-0.5) <= kit.decay <= np.exp(0.5)
    assert 3000 <= kit.hat_lo_hz <= 8000 and 0.3 <= kit.snare_noise <= 1.2


def test_sung_vowels_have_their_formants():
    """Energy 1.8-3 kHz relative to 0.5-1.2 kHz is much higher for /i/ (F2 2290 Hz) than /a/."""
    f0 = 150.0
    tilt = {}
    for vowel in ("a", "i"):
        y = sung_note(f0, 1.0, vowel, SR, np.random.default_rng(8))
        spec = np.abs(np.fft.rfft(y[: SR])) ** 2
        f = np.fft.rfftfreq(SR, 1 / SR)
        hi = spec[(f > 1800) & (f < 3000)].sum()
        lo = spec[(f > 500) & (f < 1200)].sum()
        tilt[vowel] = 10 * np.log10(hi / lo)
        f_est = np.median(_yin_f0(y[int(0.1 * SR): int(0.9 * SR)], SR, 60.0, 600.0))
        assert abs(1200 * np.log2(f_est / f0)) < 30.0
    assert tilt["i"] - tilt["a"] > 15.0, tilt


def test_formant_response_peaks_at_formants():
    f = np.arange(50.0, 5000.0, 5.0)
    freqs, bws = ins.VOWEL_FORMANTS["adult"]["a"]
    h = formant_response(f, freqs, bws, SR)
    peaks = f[1:-1][(h[1:-1] > h[:-2]) & (h[1:-1] > h[2:])]
    assert len(peaks) == 5
    assert np.all(np.abs(peaks - np.asarray(freqs)) < 0.02 * np.asarray(freqs)), peaks


def test_reverb_rt60_matches():
    """Schroeder backward integration of the reverberated impulse gives the requested RT60 (T30 fit)."""
    for rt60 in (0.5, 1.5):
        x = np.zeros(int(3 * SR), np.float32)
        x[100] = 1.0
        y = reverb(x, SR, rt60, np.random.default_rng(9), wet=1.0)
        edc = np.cumsum((y[::-1].astype(np.float64)) ** 2)[::-1]
        edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
        i5, i35 = np.argmax(edc_db < -5), np.argmax(edc_db < -35)
        t30 = (i35 - i5) / SR
        assert t30 * 2 == pytest.approx(rt60, rel=0.15), (rt60, 2 * t30)
        assert y.shape == x.shape


def test_reverb_batch_matches_single():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, SR)).astype(np.float32)
    yb = reverb(x, SR, 0.8, np.random.default_rng(1))
    y0 = reverb(x[0], SR, 0.8, np.random.default_rng(1))
    assert np.allclose(yb[0], y0, atol=1e-5)


def test_determinism_and_seed_sensitivity():
    a = synth_note(330.0, 0.4, SR, "bowed", 0.8, np.random.default_rng(11))
    b = synth_note(330.0, 0.4, SR, "bowed", 0.8, np.random.default_rng(11))
    c = synth_note(330.0, 0.4, SR, "bowed", 0.8, np.random.default_rng(12))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    s1 = sung_note(220.0, 0.3, "o", SR, np.random.default_rng(3))
    s2 = sung_note(220.0, 0.3, "o", SR, np.random.default_rng(3))
    assert np.array_equal(s1, s2)


@pytest.mark.parametrize("call", [
    lambda: synth_note(440.0, 0.5, SR, "kazoo", 0.5, np.random.default_rng(0)),
    lambda: synth_note(440.0, -1.0, SR, "organ", 0.5, np.random.default_rng(0)),
    lambda: synth_note(20000.0, 0.5, SR, "organ", 0.5, np.random.default_rng(0)),
    lambda: synth_note(440.0, 0.5, 22050.5, "organ", 0.5, np.random.default_rng(0)),
    lambda: drum_hit("cowbell", SR, np.random.default_rng(0)),
    lambda: sung_note(220.0, 0.5, "y", SR, np.random.default_rng(0)),
    lambda: reverb(np.zeros(100), SR, 0.0, np.random.default_rng(0)),
])
def test_bad_input_raises_user_error(call):
    with pytest.raises(UserError):
        call()


@settings(max_examples=40, deadline=None)
@given(f0=st.floats(30.0, 4000.0), dur=st.floats(0.02, 1.0), vel=st.floats(0.0, 1.0),
       timbre=st.sampled_from(sorted(TIMBRES)), seed=st.integers(0, 2**16))
def test_property_notes_are_bounded_and_sized(f0, dur, vel, timbre, seed):
    y = synth_note(f0, dur, SR, timbre, vel, np.random.default_rng(seed))
    assert y.size == max(1, int(round((dur + TIMBRES[timbre].release_s) * SR)))
    assert np.all(np.isfinite(y)) and np.abs(y).max(initial=0) <= vel + 1e-5


@settings(max_examples=20, deadline=None)
@given(f0=st.floats(60.0, 1000.0), vowel=st.sampled_from(VOWELS), seed=st.integers(0, 2**16))
def test_property_sung_notes_are_bounded(f0, vowel, seed):
    y = sung_note(f0, 0.2, vowel, 16000, np.random.default_rng(seed), velocity=0.5)
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 0.5 + 1e-5


def test_timbre_classes_exist_in_audioset_ontology():
    path = _shared_data() / "audioset" / "ontology.json"
    if not path.exists():
        pytest.skip(f"AudioSet ontology not found at {path}; set MEC_SHARED_DATA to the shared data folder")
    names = {node["name"] for node in json.loads(path.read_text())}
    assert set(TIMBRE_CLASS) >= set(TIMBRES) | {"drums", "voice"}
    missing = sorted(set(TIMBRE_CLASS.values()) - names)
    assert not missing, missing


