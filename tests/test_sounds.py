"""Tests for stimuli/sounds.py: the procedural non-music sound generators."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from stimuli import sounds
from stimuli.sounds import NONMUSIC_GENERATORS, make_sound, speech_source

SR = 22050


def _tonality(x: np.ndarray, frame: int = 1024) -> float:
    """Fraction of the power (50 Hz-8 kHz, 46 ms frames) in spectral peaks 20x above the local median."""
    from scipy.ndimage import median_filter

    f = np.fft.rfftfreq(frame, 1 / SR)
    band = (f > 50) & (f < 8000)
    frames = x[: len(x) // frame * frame].reshape(-1, frame).astype(np.float64)
    p = (np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2)[:, band]
    local = median_filter(p, size=(1, 31), mode="nearest")
    return float((p * (p > 20 * local)).sum() / p.sum())


@pytest.mark.parametrize("name", sorted(NONMUSIC_GENERATORS))
def test_every_generator_shape_level_and_determinism(name):
    a = make_sound(name, np.random.default_rng(3), 0.7, SR)
    b = make_sound(name, np.random.default_rng(3), 0.7, SR)
    c = make_sound(name, np.random.default_rng(4), 0.7, SR)
    assert a.dtype == np.float32 and a.shape == (int(round(0.7 * SR)),)
    assert np.isfinite(a).all()
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("dur_s", [0.25, 1.0])
def test_no_generator_is_silent_even_for_short_clips(dur_s):
    silent = [(name, seed) for name in NONMUSIC_GENERATORS for seed in range(6)
              if not np.any(make_sound(name, np.random.default_rng(seed), dur_s, SR))]
    assert silent == []


def test_unknown_class_and_bad_duration_raise_user_error():
    with pytest.raises(UserError, match="unknown non-music sound class"):
        make_sound("Piano", np.random.default_rng(0), 1.0, SR)
    with pytest.raises(UserError, match="positive"):
        make_sound("Rain", np.random.default_rng(0), 0.0, SR)


def test_harmonic_tone_wavetable_matches_direct_sum():
    """Analytical: the wavetable equals sum_k a_k sin(2 pi k f0 t + phi_k) for a constant f0."""
    amps = np.array([1.0, 0.5, 0.25, 0.1])
    f0 = np.full(4410, 441.0)
    x = sounds.harmonic_tone(f0, SR, amps, rng=np.random.default_rng(1))
    phi = np.random.default_rng(1).uniform(0, 2 * np.pi, len(amps))
    t = np.arange(1, len(f0) + 1) / SR
    ref = sum(a * np.sin(2 * np.pi * (k + 1) * 441.0 * t + p) for k, (a, p) in enumerate(zip(amps, phi)))
    assert np.max(np.abs(x - ref)) < 1e-4


def test_harmonic_tone_mutes_partials_above_nyquist():
    x = sounds.harmonic_tone(np.full(SR, 3000.0), SR, np.ones(10))
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert spec[freqs > 0.45 * SR].max() < 1e-3 * spec.max()
    peaks = freqs[np.argsort(spec)[-3:]]
    assert set(np.round(peaks)) == {3000.0, 6000.0, 9000.0}


def test_inharmonic_tone_stretches_partials():
    x = sounds.harmonic_tone(np.full(SR, 200.0), SR, np.array([0.0, 0.0, 1.0]), inharmonicity=0.01)
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    peak = freqs[np.argmax(np.abs(np.fft.rfft(x)))]
    assert peak == pytest.approx(600 * np.sqrt(1 + 0.01 * 9), abs=1.5)


@given(st.floats(50, 1000), st.floats(0.2, 1.0))
@settings(max_examples=25, deadline=None)
def test_pulse_train_count_matches_f0(f0, dur_s):
    n = int(dur_s * SR)
    p = sounds.pulse_train(np.full(n, f0), SR)
    assert abs(p.sum() - f0 * n / SR) <= 1


@given(st.integers(1, 400), st.integers(50, 3000))
@settings(max_examples=30, deadline=None)
def test_smooth_keeps_length_and_constants(width, n):
    x = np.full(n, 2.5)
    y = sounds.smooth(x, width)
    assert y.shape == (n,)
    np.testing.assert_allclose(y, 2.5)


def test_smooth_is_a_centred_moving_average():
    x = np.zeros(101)
    x[50] = 1.0
    y = sounds.smooth(x, 5)
    np.testing.assert_allclose(y[48:53], 0.2)
    assert y.sum() == pytest.approx(1.0)


def test_stft_shape_flat_envelope_is_identity_and_zero_silences():
    x = np.random.default_rng(0).standard_normal(10000)
    y = sounds.stft_shape(x, SR, lambda t, f: np.ones((len(t), len(f))))
    np.testing.assert_allclose(y, x, atol=1e-9)
    z = sounds.stft_shape(x, SR, lambda t, f: np.zeros((len(t), len(f))))
    assert np.abs(z).max() < 1e-12
    with pytest.raises(UserError):
        sounds.stft_shape(x, SR, lambda t, f: np.ones((len(t), len(f))), n_fft=512, hop=300)


def test_fft_filter_lowpass_removes_high_tone():
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 300 * t) + np.sin(2 * np.pi * 5000 * t)
    y = sounds.fft_filter(x, SR, lambda f: (f < 1000) * 1.0)
    np.testing.assert_allclose(y, np.sin(2 * np.pi * 300 * t), atol=1e-9)


@pytest.mark.parametrize("slope", [-6.0, 0.0, 3.0])
def test_colored_noise_slope(slope):
    x = sounds.colored_noise(np.random.default_rng(0), 4 * SR, SR, slope)
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    lo = p[(f > 500) & (f < 1000)].mean()
    hi = p[(f > 4000) & (f < 8000)].mean()
    # 3 octaves between the band centres (~707 Hz and ~5657 Hz)
    assert 10 * np.log10(hi / lo) == pytest.approx(3 * slope, abs=1.5)


TONAL = ["Siren", "Vehicle horn, car horn, honking", "Whistling", "Beep, bleep", "Alarm", "Ding"]
NOISY = ["Rain", "Wind", "Stream", "Fire"]


def test_tonal_non_music_is_tonal_and_noise_is_not():
    """Tonal / harmonic non-music exists: power in sharp spectral peaks, unlike the noise textures."""
    rng = np.random.default_rng(0)
    tonal = [np.median([_tonality(make_sound(n, rng, 1.0, SR)) for _ in range(5)]) for n in TONAL]
    noisy = [np.median([_tonality(make_sound(n, rng, 1.0, SR)) for _ in range(5)]) for n in NOISY]
    assert min(tonal) > 0.8, dict(zip(TONAL, tonal))
    assert max(noisy) < 0.25, dict(zip(NOISY, noisy))


@pytest.mark.parametrize("name", ["Tick-tock", "Walk, footsteps", "Insect"])
def test_rhythmic_non_music_is_periodic(name):
    """Rhythmic non-music exists: the amplitude envelope has a strong autocorrelation peak."""
    x = make_sound(name, np.random.default_rng(2), 3.0, SR).astype(np.float64)
    hop = 110  # 5 ms
    env = np.sqrt(np.add.reduceat(x ** 2, np.arange(0, len(x), hop)))
    env = env - env.mean()
    ac = np.correlate(env, env, mode="full")[len(env) - 1:]
    ac = ac / ac[0]
    lags = np.arange(len(ac)) * hop / SR
    window = (lags > 0.03) & (lags < 1.5)
    assert ac[window].max() > 0.4


def test_speech_source_has_syllabic_modulation_and_voice_pitch():
    x32 = speech_source(np.random.default_rng(5), 4.0, SR)
    assert x32.dtype == np.float32 and x32.shape == (4 * SR,) and np.isfinite(x32).all()
    x = x32.astype(np.float64)
    hop = 220  # 10 ms envelope
    env = np.sqrt(np.add.reduceat(x ** 2, np.arange(0, len(x), hop)))
    mod = np.abs(np.fft.rfft(env - env.mean())) ** 2
    fm = np.fft.rfftfreq(len(env), hop / SR)
    syllabic = mod[(fm >= 2) & (fm <= 10)].sum()
    assert syllabic / mod[fm > 0.5].sum() > 0.3
    # long-term spectrum: energy concentrated below 4 kHz (formants), not flat
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    assert p[(f > 100) & (f < 4000)].sum() > 0.7 * p[f > 100].sum()


