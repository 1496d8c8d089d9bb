"""Linear probes: chord label mapping and mir_eval formatting, scoring, batched fitting."""
import mir_eval
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.probes import (chord_labels_to_classes, chord_majmin_score, chord_vocabulary, classes_to_chord_labels,
                             encode_tags, fit_softmax_probe, frames_to_intervals, global_features, labels_at_frames,
                             probe_accuracy_per_item)
from harness.errors import UserError


def test_vocabulary_is_valid_mir_eval_majmin():
    vocab = chord_vocabulary()
    assert len(vocab) == 25 and vocab[-1] == "N"
    for lab in vocab:
        mir_eval.chord.validate_chord_label(lab)
    np.testing.assert_array_equal(chord_labels_to_classes(vocab), np.arange(25))


def test_label_mapping_enharmonics_and_other_qualities():
    cls = chord_labels_to_classes(["Db:maj", "C#:maj", "A:min", "A:min7", "C:dim", "X", "N", "G:maj/5", "Bb"])
    np.testing.assert_array_equal(cls, [1, 1, 21, 21, -1, -1, 24, 7, 10])


@given(st.lists(st.integers(0, 24), min_size=1, max_size=60))
@settings(max_examples=50, deadline=None)
def test_frames_to_intervals_roundtrip(frames):
    hop = 0.02
    intervals, labels = frames_to_intervals(np.array(frames), hop)
    for lab in labels:
        mir_eval.chord.validate_chord_label(lab)
    assert intervals[0, 0] == 0 and intervals[-1, 1] == pytest.approx(len(frames) * hop)
    assert all(labels[i] != labels[i + 1] for i in range(len(labels) - 1))  # runs merged
    back = chord_labels_to_classes(labels_at_frames(intervals, labels, len(frames), hop))
    np.testing.assert_array_equal(back, frames)


def test_probe_output_scores_in_mir_eval():
    hop = 0.1
    ref_int = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    ref_lab = ["C:maj", "A:min7", "N"]
    perfect = chord_labels_to_classes(labels_at_frames(ref_int, ref_lab, 30, hop))
    est_int, est_lab = frames_to_intervals(perfect, hop)
    assert chord_majmin_score(ref_int, ref_lab, est_int, est_lab) == pytest.approx(1.0)
    half = perfect.copy()
    half[:10] = 12  # C:min for the first second
    est_int, est_lab = frames_to_intervals(half, hop)
    assert chord_majmin_score(ref_int, ref_lab, est_int, est_lab) == pytest.approx(2 / 3)
    with pytest.raises(UserError):
        classes_to_chord_labels([25])


def test_softmax_probe_separable_and_batched():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    centers = rng.normal(0, 4, (3, 5))
    good = centers[y] + rng.normal(0, 0.5, (300, 5))
    noise = rng.normal(0, 1, (300, 5))
    x = np.stack([good, noise]).astype(np.float32)
    acc = probe_accuracy_per_item(x[:, :200], y[:200], x[:, 200:], y[200:], n_classes=3)
    assert acc.shape == (2, 100)
    assert acc[0].mean() > 0.95
    assert acc[1].mean() < 0.6
    # a batched fit equals the single fit
    single = fit_softmax_probe(good[:200], y[:200], 3)
    batched = fit_softmax_probe(x[:, :200], y[:200], 3)
    np.testing.assert_array_equal(single.predict(good[None, 200:])[0], batched.predict(x[:, 200:])[0])
    # ignored labels
    probe = fit_softmax_probe(good[:200], np.where(y[:200] == 2, -1, y[:200]), 3)
    assert set(np.unique(probe.predict(good[None])[0])) <= {0, 1}


def test_encode_tags_and_global_features():
    tr, te, vocab = encode_tags(["b", "a", "b"], ["a", "c"])
    np.testing.assert_array_equal(tr, [1, 0, 1])
    np.testing.assert_array_equal(te, [0, -1])
    cls = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    seq = np.zeros((3, 4, 2))
    seq[:, :, 1] = 2.0
    feats = global_features(cls, seq, track=np.array([0, 0, 1]), n_tracks=2)
    np.testing.assert_allclose(feats["cls"], [[2.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(feats["avg"], [[1.0, 1.0], [0.0, 2.0]])
