"""Tests for stimuli.features: the Kim et al. log-mel front end, generic mel frames, the
log-frequency spectrogram, resampling and amplitude utilities."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from harness.errors import UserError
from stimuli import features as F

torch.set_num_threads(1)
SR = 22050
FAST = settings(max_examples=15, deadline=None)


def tone(freq_hz, dur_s, sr, amp=0.5, phase=0.0):
    t = np.arange(int(round(dur_s * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t + phase)).astype(np.float32)


def reference_logmel(audio, sr=SR, n_fft=551, hop=275, n_mels=64, f_max=8000.0):
    """float64 numpy reference: pad end so frame k is centred on k*hop, reflect pad, periodic Hann."""
    import librosa

    x = np.asarray(audio, dtype=np.float64)
    frames = 1 + int(np.ceil(x.shape[-1] / hop))
    extra = (frames - 1) * hop + n_fft - 2 * (n_fft // 2) - x.shape[-1]
    x = np.pad(x, ((0, 0), (0, extra)))
    x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    fr = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[:, ::hop][:, :frames]
    power = np.abs(np.fft.rfft(fr * win, axis=-1)) ** 2
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=f_max, htk=True, norm=None,
                             dtype=np.float64)
    return librosa.power_to_db((power @ fb.T).transpose(0, 2, 1), ref=1.0, amin=1e-10, top_db=None)


@pytest.fixture(scope="module")
def noise_10s():
    return (0.1 * np.random.default_rng(0).normal(size=(2, 10 * SR))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Kim et al. log-mel
# --------------------------------------------------------------------------------------------
def test_ten_second_clip_gives_64_by_803(noise_10s):
    out = F.logmel(noise_10s)
    assert out.shape == (2, 64, 803) and out.dtype == np.float32
    assert F.n_frames(10 * SR) == 803 and F.LogMel().n_frames(220500) == 803
    assert F.logmel(noise_10s[0]).shape == (64, 803)  # one 1-D clip
    assert F.n_frames(2 * SR) == 162 and F.logmel(noise_10s[:, : 2 * SR]).shape == (2, 64, 162)


def test_logmel_matches_float64_reference_and_librosa(noise_10s):
    import librosa

    out = F.logmel(noise_10s)
    ref = reference_logmel(noise_10s)
    assert np.max(np.abs(out - ref)) < 0.01
    # librosa's own pipeline on the end-padded clip (51 zeros) frames identically
    padded = np.pad(noise_10s[0].astype(np.float64), (0, 51))
    S = librosa.feature.melspectrogram(y=padded, sr=SR, n_fft=551, hop_length=275, n_mels=64, fmin=0, fmax=8000,
                                       htk=True, norm=None, power=2.0, center=True, pad_mode="reflect")
    assert S.shape == (64, 803)
    assert np.max(np.abs(out[0] - librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None))) < 0.01


def test_db_conversion_analytical():
    p = torch.tensor([1.0, 10.0, 1e-3, 1e-12, 0.0, 1e6])
    assert F.power_to_db(p).tolist() == pytest.approx([0.0, 10.0, -30.0, -100.0, -100.0, 60.0], abs=1e-4)
    # no top_db: a loud tone followed by silence spans far more than 80 dB (no clipping)
    x = np.concatenate([tone(1000, 1.0, SR, amp=1.0), np.zeros(SR, np.float32)])
    out = F.logmel(x)
    assert out.max() > 30 and out[:, -20:].max() == pytest.approx(-100.0) and out.max() - out.min() > 120
    ref = reference_logmel(x[None])[0]
    top = out > out.max() - 60  # float32 spectra are accurate to < 0.01 dB within 60 dB of the peak
    assert np.max(np.abs(out[top] - ref[top])) < 0.01
    # silence sits exactly at the floor
    assert np.all(F.logmel(np.zeros((1, SR), np.float32)) == pytest.approx(-100.0))


@FAST
@given(st.floats(1e-3, 1e3))
def test_gain_shifts_db_by_20_log10(gain):
    x = tone(440, 0.5, SR) + 0.05 * np.random.default_rng(1).normal(size=int(0.5 * SR)).astype(np.float32)
    a, b = F.logmel(x), F.logmel(x * np.float32(gain))
    mask = (a > -60) & (b > -60)  # away from the -100 dB floor
    assert mask.sum() > 1000
    assert np.allclose((b - a)[mask], 20 * np.log10(np.float32(gain)), atol=0.01)


def test_1khz_tone_peaks_in_the_nearest_band():
    centres = F.mel_to_hz(np.linspace(F.hz_to_mel(0.0), F.hz_to_mel(8000.0), 66))[1:-1]
    out = F.logmel(tone(1000, 2.0, SR)).mean(axis=-1)
    assert int(np.argmax(out)) == int(np.argmin(np.abs(centres - 1000.0)))


@FAST
@given(st.floats(150.0, 7500.0))
def test_tone_peak_band_contains_the_frequency(freq):
    edges = F.mel_to_hz(np.linspace(F.hz_to_mel(0.0), F.hz_to_mel(8000.0), 66))
    band = int(np.argmax(F.logmel(tone(freq, 0.5, SR)).mean(axis=-1)))
    assert edges[band] <= freq <= edges[band + 2]  # inside that band's triangle


def test_mel_filterbank_matches_librosa():
    import librosa

    for scale, norm in (("htk", None), ("slaney", "slaney")):
        ours = F.mel_filterbank(SR, 551, 64, 0.0, 8000.0, scale, norm)
        ref = librosa.filters.mel(sr=SR, n_fft=551, n_mels=64, fmin=0, fmax=8000, htk=scale == "htk", norm=norm,
                                  dtype=np.float64)
        assert np.max(np.abs(ours - ref)) < 1e-12


def test_device_argument_batching_and_input_types(noise_10s):
    x = noise_10s[:, :SR]
    a = F.logmel(x, device="cpu")
    assert np.array_equal(a, F.logmel(x, device=torch.device("cpu")))
    assert np.array_equal(a, F.logmel(torch.from_numpy(x)))
    assert np.allclose(a, F.logmel(x, batch_size=1), atol=1e-4)
    assert F.LogMel().to("cpu")(torch.from_numpy(x)).shape == (2, 64, F.n_frames(SR))
    with pytest.raises(UserError, match="device"):
        F.logmel(x, device="not-a-device")
    if torch.cuda.is_available():
        assert np.allclose(a, F.logmel(x, device="cuda"), atol=1e-2)


def test_sample_rate_and_shape_errors():
    x = np.zeros((1, 16000), np.float32)
    with pytest.raises(UserError, match=r"sr=16000.*22050.*stimuli\.features\.resample"):
        F.logmel(x, sr=16000)
    with pytest.raises(UserError, match="shape"):
        F.logmel(np.zeros((1, 1, SR), np.float32))
    with pytest.raises(UserError, match="shorter"):
        F.logmel(np.zeros((1, 100), np.float32))
    with pytest.raises(UserError, match="batch_size"):
        F.logmel(np.zeros((1, SR), np.float32), batch_size=0)


# --------------------------------------------------------------------------------------------
# generic mel frames and the log-frequency spectrogram
# --------------------------------------------------------------------------------------------
def test_mel_frames_kong_settings_match_librosa():
    import librosa

    x = (0.1 * np.random.default_rng(2).normal(size=(2, 4 * 16000))).astype(np.float32)
    out = F.mel_frames(x, sr=16000, n_mels=128, n_fft=1024, hop_length=160)
    assert out.shape == (2, 128, 1 + 64000 // 160)
    S = librosa.feature.melspectrogram(y=x[1].astype(np.float64), sr=16000, n_fft=1024, hop_length=160, n_mels=128,
                                       htk=True, norm=None, power=2.0, center=True, pad_mode="reflect")
    assert np.max(np.abs(out[1] - librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None))) < 0.01
    assert F.mel_frames(x, sr=16000).shape == (2, 128, 1 + 64000 // 256)  # default hop n_fft // 4


@pytest.mark.parametrize("method", ["filterbank", "cqt"])
def test_log_frequency_spectrogram_tracks_pitch(method):
    sr = 16000
    midis = np.array([36, 45, 57, 69, 81])  # C2 ... A5
    x = np.stack([tone(440.0 * 2 ** ((m - 69) / 12), 1.0, sr) for m in midis])
    out = F.log_frequency_spectrogram(x, sr=sr, method=method)
    assert out.shape[:2] == (5, 84) and out.dtype == np.float32
    peaks = out.mean(axis=-1).argmax(axis=1)
    assert peaks.tolist() == (midis - 24).tolist()  # bin 0 is C1 = MIDI 24
    assert np.allclose(F.log_frequency_centres()[peaks], 440.0 * 2 ** ((midis - 69) / 12), rtol=1e-3)


def test_log_frequency_errors():
    with pytest.raises(UserError, match="Nyquist"):
        F.log_frequency_spectrogram(np.zeros((1, 8000), np.float32), sr=8000, n_bins=120)
    with pytest.raises(UserError, match="method"):
        F.log_frequency_spectrogram(np.zeros((1, 8000), np.float32), sr=8000, method="wavelet")


# --------------------------------------------------------------------------------------------
# resampling and amplitude
# --------------------------------------------------------------------------------------------
def test_resample_preserves_frequency_and_types():
    x = np.stack([tone(1000, 2.0, 44100), tone(3000, 2.0, 44100)])
    y = F.resample(x, 44100, SR)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (2, 2 * SR)
    spec = np.abs(np.fft.rfft(y, axis=-1))
    assert np.fft.rfftfreq(2 * SR, 1 / SR)[spec.argmax(axis=1)].tolist() == pytest.approx([1000.0, 3000.0])
    assert F.rms(y[:, 1000:-1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    t = F.resample(torch.from_numpy(x), 44100, SR)
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), y, atol=1e-6)
    assert F.resample(x[0], 44100, 16000).shape == (32000,)
    assert np.array_equal(F.resample(x, 44100, 44100), x)
    with pytest.raises(UserError):
        F.resample(x, 0, SR)


@FAST
@given(st.integers(0, 10**6), st.floats(1e-3, 10.0))
def test_rms_normalise_hits_target(seed, target):
    x = np.random.default_rng(seed).normal(scale=np.random.default_rng(seed).uniform(0.01, 3), size=(3, 500))
    x = x.astype(np.float32)
    y = F.rms_normalise(x, target)
    assert y.dtype == np.float32 and F.rms(y) == pytest.approx(np.full(3, target), rel=1e-4)
    yt = F.rms_normalise(torch.from_numpy(x), target)
    assert np.allclose(yt.numpy(), y, rtol=1e-5, atol=1e-7)


def test_amplitude_utilities_analytical():
    x = np.stack([tone(500, 1.0, SR, amp=1.0), np.zeros(SR, np.float32)])
    assert F.rms(x).tolist() == pytest.approx([1 / np.sqrt(2), 0.0], rel=1e-4)
    assert F.power(x)[0] == pytest.approx(0.5, rel=1e-4)
    y = F.rms_normalise(x, 0.1)
    assert F.rms(y).tolist() == pytest.approx([0.1, 0.0], rel=1e-4)  # silence stays silent
    non_music = np.random.default_rng(0).normal(scale=0.2, size=(4, SR))
    ref = float(F.power(non_music).mean())
    for ratio in (1 / 2, 1 / 64):
        music = F.attenuate_to_power_ratio(x[:1], ref, ratio)
        assert F.power(music)[0] / ref == pytest.approx(ratio, rel=1e-4)
    with pytest.raises(UserError):
        F.attenuate_to_power_ratio(x, ref, 0.0)
    with pytest.raises(UserError):
        F.rms_normalise(x, -1.0)
