"""analysis/transcription.py against analytical cases and mir_eval itself."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.transcription import (frame_scores, note_prior, note_scores, prior_roll, roll_to_notes,
                                    transcription_scores)
from harness.errors import UserError

HOP = 0.02
T = np.arange(50) * HOP


def _roll(*notes):
    """notes: (midi, first frame, end frame)."""
    r = np.zeros((T.size, 128), bool)
    for m, a, b in notes:
        r[a:b, m] = True
    return r


def test_perfect_and_disjoint_frames():
    ref = _roll((60, 0, 20), (64, 10, 30))
    assert frame_scores(ref, ref, T) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert frame_scores(ref, _roll((61, 0, 20)), T)["f1"] == 0.0
    assert frame_scores(np.zeros_like(ref), np.zeros_like(ref), T)["f1"] == 1.0


def test_half_the_frames_is_precision_one_recall_half():
    ref = _roll((60, 0, 20))
    s = frame_scores(ref, _roll((60, 0, 10)), T)
    assert s["precision"] == 1.0 and s["recall"] == 0.5 and s["f1"] == pytest.approx(2 / 3)


def test_frame_scores_match_mir_eval_multipitch():
    """Random rolls inside mir_eval's range (MIDI <= 100): the same precision and recall."""
    import mir_eval

    from stimuli.pitch import midi_to_hz

    rng = np.random.default_rng(0)
    ref = rng.random((T.size, 128)) < 0.03
    est = ref ^ (rng.random((T.size, 128)) < 0.02)
    ref[:, 101:] = est[:, 101:] = False
    ref[:, :24] = est[:, :24] = False
    hz = lambda r: [np.asarray(midi_to_hz(np.flatnonzero(x)), float) for x in r]  # noqa: E731
    m = mir_eval.multipitch.metrics(T, hz(ref), T, hz(est))
    ours = frame_scores(ref, est, T)
    assert ours["precision"] == pytest.approx(m[0]) and ours["recall"] == pytest.approx(m[1])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_frame_f1_is_symmetric(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((T.size, 128)) < 0.05, rng.random((T.size, 128)) < 0.05
    assert frame_scores(a, b, T)["f1"] == pytest.approx(frame_scores(b, a, T)["f1"])


def test_roll_to_notes_finds_runs_and_drops_flickers():
    iv, hz = roll_to_notes(_roll((60, 5, 15), (60, 20, 21), (67, 0, 3)), T, min_frames=2)
    np.testing.assert_allclose(iv, [[0.0, 3 * HOP], [5 * HOP, 15 * HOP]])
    np.testing.assert_allclose(hz, [392.0, 261.6256], rtol=1e-4)


def test_note_scores_onset_only():
    ref_iv, ref_hz = np.array([[0.0, 0.5], [0.5, 1.0]]), np.array([440.0, 440.0])
    assert note_scores(ref_iv, ref_hz, ref_iv + [0.03, 0.4], ref_hz)["f1"] == 1.0   # offsets ignored
    assert note_scores(ref_iv, ref_hz, ref_iv[:1] + 0.08, ref_hz[:1])["f1"] == 0.0  # onset 80 ms late
    assert note_scores(ref_iv, ref_hz, ref_iv[:1], ref_hz[:1])["f1"] == pytest.approx(2 / 3)


def test_note_prior_is_the_best_constant_prediction():
    """Brute force over every prefix of the frequency order: the prior has the highest training F1."""
    rng = np.random.default_rng(1)
    rolls = np.zeros((6, T.size, 128), bool)
    for m, p in ((60, 0.9), (64, 0.6), (67, 0.3), (40, 0.05)):
        rolls[..., m] = rng.random((6, T.size)) < p
    prior = note_prior(rolls)
    assert set(np.flatnonzero(prior)) == {60, 64, 67} or set(np.flatnonzero(prior)) <= {60, 64, 67}
    flat = rolls.reshape(-1, 128)
    f1 = lambda keep: frame_scores(flat, prior_roll(keep, flat.shape[0]), np.arange(flat.shape[0]))["f1"]  # noqa: E731
    best = f1(prior)
    order = np.argsort(-flat.sum(0), kind="stable")
    for k in range(1, 10):
        keep = np.zeros(128, bool)
        keep[order[:k]] = True
        assert f1(keep) <= best + 1e-12


def test_a_prior_scores_no_better_than_itself_and_a_model_can_beat_it():
    ref = np.stack([_roll((60, 0, 25), (64, 25, 50)), _roll((64, 0, 25), (60, 25, 50))])
    prior = note_prior(ref)                            # both notes sound half the time: predict both
    assert set(np.flatnonzero(prior)) == {60, 64}
    base = transcription_scores(ref, np.broadcast_to(prior_roll(prior, T.size), ref.shape), T)
    exact = transcription_scores(ref, ref, T)
    np.testing.assert_allclose(base["frame_f1"], 2 / 3)
    np.testing.assert_allclose(exact["frame_f1"], 1.0)
    np.testing.assert_allclose(exact["note_f1"], 1.0)


def test_bad_shapes_are_one_line_user_errors():
    with pytest.raises(UserError, match="piano roll"):
        frame_scores(np.zeros((5, 12)), np.zeros((5, 12)), np.arange(5))
    with pytest.raises(UserError, match="agree in frames"):
        frame_scores(np.zeros((5, 128)), np.zeros((4, 128)), np.arange(5))
    with pytest.raises(UserError, match="at least one sounding note"):
        note_prior(np.zeros((3, 10, 128), bool))
