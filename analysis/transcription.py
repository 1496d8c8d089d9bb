"""Transcription metrics with mir_eval: frame-level and note-level F1, and the note-prior baseline.

A piano roll here is a bool array ``[n_frames, 128]`` (MIDI note numbers) sampled at
``frame_times_s``. Frame-level scores count (frame, note) pairs, as ``mir_eval.multipitch`` does for
notes on the semitone grid; note-level scores are ``mir_eval.transcription`` with onsets only
(50 ms tolerance, offsets ignored), the usual "note F1" of transcription papers.

The *note prior* is what a model that ignores the audio can reach: it predicts, at every frame,
the notes that sound most often in the training rolls (the set chosen to maximise frame F1 on the
training rolls). A transcription model has learned its task only when it beats that baseline on
held-out clips.
"""
from __future__ import annotations

import numpy as np

from harness.errors import UserError


def _check_roll(roll, name: str) -> np.ndarray:
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != 128:
        raise UserError(f"{name} must be a piano roll [frames, 128], got shape {roll.shape}")
    return roll.astype(bool)


def frame_scores(ref_roll, est_roll, frame_times_s) -> dict:
    """Frame-level precision, recall and F1 of an estimated piano roll.

    Every (frame, note) pair is one item: precision = correct pairs / estimated pairs, recall =
    correct pairs / reference pairs, over the clip (the ``Precision`` and ``Recall`` of
    ``mir_eval.multipitch.metrics`` for notes on the semitone grid; tested against it). Computed on the
    roll directly because mir_eval's multipitch refuses estimates above 5 kHz (MIDI > 111), which an
    untrained head produces.

    Parameters
    ----------
    ref_roll, est_roll : np.ndarray of bool, shape (n_frames, 128)
        Reference and estimate on the same frames.
    frame_times_s : np.ndarray, shape (n_frames,)
        Frame times in s (checked against the rolls).

    Returns
    -------
    dict with ``precision``, ``recall``, ``f1``; two empty rolls score 1 (mir_eval's convention).
    """
    ref, est = _check_roll(ref_roll, "ref_roll"), _check_roll(est_roll, "est_roll")
    t = np.asarray(frame_times_s, dtype=float)
    if ref.shape != est.shape or t.shape != (ref.shape[0],):
        raise UserError(f"ref_roll {ref.shape}, est_roll {est.shape} and frame_times_s {t.shape} must agree in frames")
    n_ref, n_est, tp = int(ref.sum()), int(est.sum()), int((ref & est).sum())
    if n_ref == 0 and n_est == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    p = tp / n_est if n_est else 0.0
    r = tp / n_ref if n_ref else 0.0
    return {"precision": p, "recall": r, "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r)}


def roll_to_notes(roll, frame_times_s, frame_hop_s: float | None = None, min_frames: int = 2):
    """Notes (intervals in s, pitches in Hz) from a piano roll: each run of active frames of one pitch.

    Parameters
    ----------
    roll : np.ndarray of bool, shape (n_frames, 128)
    frame_times_s : np.ndarray, shape (n_frames,)
    frame_hop_s : float, optional
        Frame hop (default: the median spacing of ``frame_times_s``); a note ends one hop after its
        last active frame.
    min_frames : int
        Runs shorter than this are dropped (isolated flickers of a frame-wise estimate).

    Returns
    -------
    intervals : np.ndarray, shape (n_notes, 2)
    pitches_hz : np.ndarray, shape (n_notes,)
    """
    from stimuli.pitch import midi_to_hz

    roll = _check_roll(roll, "roll")
    t = np.asarray(frame_times_s, dtype=float)
    hop = float(frame_hop_s) if frame_hop_s is not None else float(np.median(np.diff(t))) if t.size > 1 else 0.01
    padded = np.concatenate([np.zeros((1, 128), bool), roll, np.zeros((1, 128), bool)])
    d = np.diff(padded.astype(np.int8), axis=0)
    iv, pitch = [], []
    for note in np.flatnonzero(roll.any(0)):
        starts, ends = np.flatnonzero(d[:, note] == 1), np.flatnonzero(d[:, note] == -1)
        for s, e in zip(starts, ends):
            if e - s >= min_frames:
                iv.append((t[s], t[e - 1] + hop))
                pitch.append(note)
    if not iv:
        return np.zeros((0, 2)), np.zeros(0)
    order = np.lexsort((np.asarray(pitch), np.asarray(iv)[:, 0]))
    return np.asarray(iv, dtype=float)[order], np.asarray(midi_to_hz(np.asarray(pitch)[order]), dtype=float)


def note_scores(ref_intervals, ref_pitches_hz, est_intervals, est_pitches_hz, onset_tolerance_s: float = 0.05) -> dict:
    """Note-level precision, recall and F1, onsets only (``mir_eval.transcription``, offsets ignored).

    Returns
    -------
    dict with ``precision``, ``recall``, ``f1``.
    """
    import mir_eval

    ref_iv = np.asarray(ref_intervals, dtype=float).reshape(-1, 2)
    est_iv = np.asarray(est_intervals, dtype=float).reshape(-1, 2)
    ref_p, est_p = np.asarray(ref_pitches_hz, dtype=float), np.asarray(est_pitches_hz, dtype=float)
    if ref_iv.shape[0] == 0 and est_iv.shape[0] == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    if ref_iv.shape[0] == 0 or est_iv.shape[0] == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_iv, ref_p, est_iv, est_p, onset_tolerance=onset_tolerance_s, offset_ratio=None)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def note_prior(train_rolls) -> np.ndarray:
    """The training rolls' note-prior prediction: a bool [128] set of notes predicted at every frame.

    The notes are taken in order of how often they sound in ``train_rolls`` ([..., 128], any leading
    shape); the prefix of that order with the highest frame-level F1 on the training rolls is the prior.
    """
    rolls = np.asarray(train_rolls).reshape(-1, 128).astype(bool)
    if rolls.shape[0] == 0 or not rolls.any():
        raise UserError("note_prior needs training rolls with at least one sounding note")
    counts = rolls.sum(0).astype(float)
    order = np.argsort(-counts, kind="stable")
    n_true = counts.sum()
    n_frames = rolls.shape[0]
    tp = np.cumsum(counts[order])                    # true positives predicting the top-k notes everywhere
    n_pred = n_frames * np.arange(1, 129)
    f1 = 2 * tp / (n_pred + n_true)
    k = int(np.argmax(f1)) + 1
    out = np.zeros(128, dtype=bool)
    out[order[:k]] = True
    return out


def prior_roll(prior: np.ndarray, n_frames: int) -> np.ndarray:
    """The note prior as a piano roll [n_frames, 128] (the same notes at every frame)."""
    return np.repeat(np.asarray(prior, dtype=bool)[None, :], int(n_frames), axis=0)


def transcription_scores(ref_rolls, est_rolls, frame_times_s, ref_notes=None, min_frames: int = 2) -> dict:
    """Frame and note scores per clip, for a set of clips.

    Parameters
    ----------
    ref_rolls, est_rolls : np.ndarray of bool, shape (n_clips, n_frames, 128)
    frame_times_s : np.ndarray, shape (n_frames,)
    ref_notes : list of (intervals, pitches_hz), optional
        The reference notes of each clip (default: :func:`roll_to_notes` of the reference roll with
        ``min_frames=1``).
    min_frames : int
        Minimum run length of an estimated note.

    Returns
    -------
    dict of np.ndarray [n_clips]: ``frame_f1``, ``frame_precision``, ``frame_recall``, ``note_f1``.
    """
    ref_rolls, est_rolls = np.asarray(ref_rolls, bool), np.asarray(est_rolls, bool)
    if ref_rolls.shape != est_rolls.shape or ref_rolls.ndim != 3:
        raise UserError(f"ref_rolls {ref_rolls.shape} and est_rolls {est_rolls.shape} must both be [clips, frames, 128]")
    out = {k: np.zeros(len(ref_rolls)) for k in ("frame_f1", "frame_precision", "frame_recall", "note_f1")}
    for i, (ref, est) in enumerate(zip(ref_rolls, est_rolls)):
        fs = frame_scores(ref, est, frame_times_s)
        out["frame_f1"][i], out["frame_precision"][i], out["frame_recall"][i] = fs["f1"], fs["precision"], fs["recall"]
        r_iv, r_p = ref_notes[i] if ref_notes is not None else roll_to_notes(ref, frame_times_s, min_frames=1)
        e_iv, e_p = roll_to_notes(est, frame_times_s, min_frames=min_frames)
        out["note_f1"][i] = note_scores(r_iv, r_p, e_iv, e_p)["f1"]
    return out
