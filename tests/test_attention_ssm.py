"""Novelty peak picking, the circular-shift surrogate test (incl. its false-positive rate), SSM tools."""
import mir_eval
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.attention import (absolute_difference, circular_shift_test, events_to_frames, layerwise_event_test, onset_f_measure,
                                pick_peaks, received_attention, rectified_difference, shifted_frame_f_measure)
from analysis.ssm import (checkerboard_novelty, chord_change_times, cosine_ssm, mfcc_from_log_mel,
                          onset_context_features, ssm_correlation)
from harness.errors import UserError


def test_received_attention_torch_and_numpy():
    w = torch.softmax(torch.randn(2, 3, 4, 6, 6), dim=-1)
    r = received_attention(w)
    assert r.shape == (2, 3, 5)
    np.testing.assert_allclose(r, received_attention(w.numpy()), atol=1e-6)
    # a head that always attends to frame 2 makes it receive the most
    w2 = torch.zeros(1, 1, 6, 6)
    w2[..., 3] = 1.0
    assert received_attention(w2)[0].argmax() == 2


def test_rectified_difference():
    np.testing.assert_array_equal(rectified_difference(np.array([0.0, 1.0, 0.5, 2.0])), [0.0, 1.0, 0.0, 1.5])
    np.testing.assert_array_equal(absolute_difference(np.array([0.0, 1.0, 0.5, 2.0])), [0.0, 1.0, 0.5, 1.5])


@given(st.integers(0, 199), st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_peak_picking_is_shift_equivariant(shift, seed):
    c = np.random.default_rng(seed).random(200)
    np.testing.assert_array_equal(pick_peaks(np.roll(c, shift)), np.roll(pick_peaks(c), shift))


def test_frame_f_matches_mir_eval_for_separated_events():
    rng = np.random.default_rng(0)
    hop, n, tol = 0.02, 3000, 2
    for _ in range(20):
        ref_idx = np.sort(rng.choice(np.arange(0, n, 10), 60, replace=False))  # >= 10 frames apart
        est_idx = np.sort(rng.choice(np.arange(3, n, 10), 50, replace=False)) + rng.integers(-3, 4, 50)
        est_idx = np.clip(est_idx, 0, n - 1)
        ref, est = events_to_frames(ref_idx * hop, n, hop), events_to_frames(est_idx * hop, n, hop)
        f_frame = shifted_frame_f_measure(est, ref, tol)[0]
        f_mir = mir_eval.onset.f_measure(ref_idx * hop, np.unique(est_idx) * hop, window=tol * hop + 1e-9)[0]
        assert f_frame == pytest.approx(f_mir, abs=1e-9)
    # every shift equals a direct computation on the rolled peaks
    f_all = shifted_frame_f_measure(est, ref, tol)
    for s in (1, 17, 999):
        assert f_all[s] == pytest.approx(shifted_frame_f_measure(np.roll(est, s), ref, tol)[0])


def test_shift_test_detects_aligned_events():
    rng = np.random.default_rng(1)
    n, hop = 4000, 0.02
    onsets = np.sort(rng.choice(np.arange(5, n, 20), 150, replace=False))
    curve = rng.random(n) * 0.1
    curve[onsets] += 1.0
    ref = events_to_frames(onsets * hop, n, hop)
    res = circular_shift_test(pick_peaks(curve), ref, tol_frames=2, n_shifts=1000, seed=0)
    assert res["f"] > 0.8 and res["p"] < 0.01 and res["excess"] > 0.5
    lw = layerwise_event_test(np.stack([rng.random(n), curve]), ref, tol_frames=2, n_shifts=1000, seed=0)
    assert lw["best_layer"] == 1 and lw["p_corrected"] < 0.01


def test_surrogate_false_positive_rate_near_alpha():
    """On null data (curves independent of the events) p < alpha about alpha of the time."""
    rng = np.random.default_rng(2)
    n, alpha, reps = 2000, 0.05, 300
    kernel = np.hanning(9)
    rejections = 0
    for r in range(reps):
        curve = np.convolve(rng.random(n), kernel, mode="same")  # autocorrelated null curve
        events = np.zeros(n, dtype=bool)
        events[np.cumsum(rng.integers(8, 40, n // 8))[: n // 30] % n] = True
        res = circular_shift_test(pick_peaks(curve), events, tol_frames=2, n_shifts=1000, seed=r)
        rejections += res["p"] < alpha
    rate = rejections / reps
    # binomial 99.9 % band around 0.05 for 300 draws is about [0.018, 0.095]
    assert 0.015 <= rate <= 0.095, rate


def test_onset_f_measure_edges():
    assert onset_f_measure([], [0.1]) == 0.0
    assert onset_f_measure([0.5, 1.0], [0.52, 1.2]) == pytest.approx(0.5)
    with pytest.raises(UserError):
        pick_peaks(np.zeros((2, 3)))
    with pytest.raises(UserError):
        circular_shift_test(np.zeros(10, bool), np.zeros(10, bool), 1, min_shift_frames=50)


def test_cosine_ssm_and_correlation():
    x = np.random.default_rng(0).standard_normal((2, 30, 4))
    s = cosine_ssm(x)
    assert s.shape == (2, 30, 30)
    np.testing.assert_allclose(np.diagonal(s, axis1=1, axis2=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(s, np.swapaxes(s, 1, 2), atol=1e-6)
    assert ssm_correlation(s[0], s[0]) == pytest.approx(1.0)
    r = ssm_correlation(s[0], s[0] * 2 + 1)
    assert r == pytest.approx(1.0)
    assert abs(ssm_correlation(s[0], s[1])) < 0.3
    assert ssm_correlation(s, s[0]).shape == (2,)


def test_checkerboard_novelty_peaks_at_block_boundaries():
    # three homogeneous segments: boundaries at frames 40 and 90
    labels = np.repeat([0, 1, 2], [40, 50, 60])
    feats = np.eye(3)[labels] + 0.05 * np.random.default_rng(0).standard_normal((150, 3))
    nov = checkerboard_novelty(cosine_ssm(feats), half_frames=10)
    peaks = np.flatnonzero(pick_peaks(nov, max_frames=5, avg_frames=20, delta_std=1.0))
    assert set(peaks) == {40, 90}
    assert checkerboard_novelty(np.stack([cosine_ssm(feats)] * 2), 10).shape == (2, 150)
    with pytest.raises(UserError):
        checkerboard_novelty(np.eye(5), 5)


def test_reference_features_and_chord_changes():
    m = np.random.default_rng(0).standard_normal((2, 50, 16)).astype(np.float32)
    assert mfcc_from_log_mel(m).shape == (2, 50, 12)
    ctx = onset_context_features(m, context_frames=3)
    assert ctx.shape == (2, 50, 7) and np.all(ctx > 0)
    t = chord_change_times(np.array([[0, 1], [1, 2], [2, 3], [3, 4]]), ["C:maj", "C:maj", "A:min", "N"], t_max_s=2.5)
    np.testing.assert_array_equal(t, [2.0])


def test_layer_separation_detects_different_and_same_layers():
    from analysis.ssm import layer_separation
    rng = np.random.default_rng(0)
    layers = np.arange(4)
    chroma = -((layers - 3) ** 2) * 0.05  # best at layer 3
    timbre = -((layers - 0) ** 2) * 0.05  # best at layer 0
    r = np.stack([chroma, timbre, timbre], -1)[None] + 0.02 * rng.standard_normal((40, 4, 3))
    res = layer_separation(r, n_boot=2000)
    assert res["best_layers"] == [3, 0, 0] and res["low"] > 0 and res["p_same"] < 0.01
    same = np.stack([chroma, chroma, chroma], -1)[None] + 0.02 * rng.standard_normal((40, 4, 3))
    res = layer_separation(same, n_boot=2000)
    assert res["low"] == 0.0 and res["p_same"] > 0.5
    with pytest.raises(UserError):
        layer_separation(np.zeros((1, 4, 3)))
