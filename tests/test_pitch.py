"""Tests of stimuli/pitch.py: labels, levels, spectra, determinism."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.errors import UserError
from stimuli.pitch import PITCH_TIMBRES, TARGET_RMS, TIMBRES, midi_to_hz, pitch_set

SR = 16000


def _spectrum(x, sr):
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.fft.rfftfreq(x.size, 1 / sr), mag


def test_labels_and_shapes():
    ps = pitch_set(range(36, 84), timbres=TIMBRES, n_exemplars=2, dur_s=0.1, sr=SR, seed=0)
    assert ps.audio.shape == (48 * len(TIMBRES) * 2, int(0.1 * SR))
    assert ps.audio.dtype == np.float32
    assert set(ps.midi) == set(range(36, 84))
    np.testing.assert_array_equal(ps.pitch_class, ps.midi % 12)
    assert ps.octave[ps.midi == 60][0] == 4 and ps.octave[ps.midi == 36][0] == 2
    np.testing.assert_allclose(ps.f0_hz[ps.midi == 69], 440.0)
    assert set(ps.timbre) == set(TIMBRES)
    assert set(ps.exemplar) == {0, 1}
    assert len(ps.select("pure")) == 96


def test_rms_normalised_and_finite():
    ps = pitch_set(range(36, 84, 7), n_exemplars=2, dur_s=0.2, sr=SR, seed=1)
    rms = np.sqrt(np.mean(ps.audio.astype(np.float64) ** 2, axis=1))
    np.testing.assert_allclose(rms, TARGET_RMS, rtol=1e-4)
    assert np.all(np.isfinite(ps.audio))


@pytest.mark.parametrize("midi", [36, 57, 83])
def test_pure_tone_peak_at_f0_and_missing_fundamental_has_none(midi):
    ps = pitch_set([midi], timbres=("pure", "missing_fundamental", "harmonic"), n_exemplars=1, dur_s=0.5, sr=SR)
    f0 = midi_to_hz(midi)
    freqs, pure = _spectrum(ps.select("pure").audio[0], SR)
    assert abs(freqs[np.argmax(pure)] - f0) < 3.0
    _, mf = _spectrum(ps.select("missing_fundamental").audio[0], SR)
    _, harm = _spectrum(ps.select("harmonic").audio[0], SR)
    at = lambda mag, f: mag[np.argmin(np.abs(freqs - f))]
    assert at(mf, f0) < 0.02 * at(mf, 2 * f0)          # no fundamental
    assert at(harm, f0) > at(harm, 2 * f0)              # 1/h envelope


def test_no_energy_above_045_sr():
    ps = pitch_set([36, 60, 83], timbres=PITCH_TIMBRES, n_exemplars=1, dur_s=0.5, sr=SR)
    for x in ps.audio:
        freqs, mag = _spectrum(x, SR)
        assert mag[freqs > 0.47 * SR].max() < 1e-3 * mag.max()


def test_shepard_tones_repeat_every_octave():
    ps = pitch_set([48, 60, 61], timbres=("shepard",), n_exemplars=1, dur_s=0.5, sr=SR, seed=3)
    specs = [_spectrum(x, SR)[1] for x in ps.audio]
    corr = lambda a, b: np.corrcoef(a, b)[0, 1]
    assert corr(specs[0], specs[1]) > 0.95            # same pitch class, one octave apart
    assert corr(specs[1], specs[2]) < 0.3             # a semitone apart


def test_deterministic_given_seed():
    a = pitch_set([40, 50], n_exemplars=2, dur_s=0.1, sr=SR, seed=5)
    b = pitch_set([40, 50], n_exemplars=2, dur_s=0.1, sr=SR, seed=5)
    c = pitch_set([40, 50], n_exemplars=2, dur_s=0.1, sr=SR, seed=6)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.allclose(a.audio, c.audio)


def test_exemplars_differ():
    ps = pitch_set([60], timbres=("harmonic_random",), n_exemplars=2, dur_s=0.1, sr=SR)
    assert not np.allclose(ps.audio[0], ps.audio[1])


def test_bad_input_raises_user_error():
    with pytest.raises(UserError):
        pitch_set([60], timbres=("violin",))
    with pytest.raises(UserError):
        pitch_set([100], sr=8000)
    with pytest.raises(UserError):
        pitch_set([], sr=SR)


@settings(max_examples=15, deadline=None)
@given(midi=st.lists(st.integers(24, 95), min_size=1, max_size=4, unique=True),
       timbre=st.sampled_from(TIMBRES), seed=st.integers(0, 1000))
def test_property_levels_and_labels(midi, timbre, seed):
    ps = pitch_set(midi, timbres=(timbre,), n_exemplars=1, dur_s=0.05, sr=22050, seed=seed)
    assert np.all(np.isfinite(ps.audio))
    np.testing.assert_allclose(np.sqrt(np.mean(ps.audio.astype(np.float64) ** 2, axis=1)), TARGET_RMS, rtol=1e-3)
    np.testing.assert_array_equal(ps.midi, midi)
    np.testing.assert_allclose(ps.f0_hz, 440 * 2 ** ((np.array(midi) - 69) / 12))
