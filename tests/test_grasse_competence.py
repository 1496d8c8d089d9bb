"""The Grasse & Tata conditions' competence: held-out SSL masked-frame identification and held-out
transcription against the note prior, each able to fail (a network that never left its init)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.stats import Estimate
from claims.grasse2026._conditions import SSL_COMPETENCE, TRANSCRIPTION_COMPETENCE, competence
from models.ssl_audio import (ARCHS, _objective_loss, _top1_among_distractors, build_encoder, masked_frame_top1,
                              sample_negatives, span_mask, train_ssl, train_transcription, transcription_heldout)
from test_ssl_audio import _audio, _small, _two_notes  # the same tiny encoders and tones as the model tests

REPO = Path(__file__).resolve().parent.parent
SR = 16000
torch.set_num_threads(1)


def _mask_and_negatives(b=2, t=30, k=5, seed=0):
    rng = np.random.default_rng(seed)
    mask = span_mask(b, t, 0.5, 3, rng)
    return mask, sample_negatives(mask, k, rng)


def test_a_prediction_equal_to_its_target_identifies_every_masked_frame():
    mask, neg = _mask_and_negatives()
    target = torch.randn(2, 30, 8)
    np.testing.assert_array_equal(_top1_among_distractors(target.clone(), target, mask, neg), [1.0, 1.0])


def test_a_collapsed_target_identifies_nothing():
    """Every frame's target alike: each distractor ties with the positive, and ties lose."""
    mask, neg = _mask_and_negatives()
    target = torch.ones(2, 30, 8)
    np.testing.assert_array_equal(_top1_among_distractors(torch.randn(2, 30, 8), target, mask, neg), [0.0, 0.0])


def test_a_distractor_identical_to_the_target_is_dropped_not_counted_against_the_frame():
    """One clip, frames 0-3 masked; frame 0's distractors are frame 1 (the same target: a tied code) and
    frame 2 (a different one). A perfect prediction identifies frame 0 once the tie is dropped, as the
    wav2vec 2.0 loss drops it; under ties="lose" the tie beats it (the other three frames have no tie)."""
    mask = np.zeros((1, 4), dtype=bool)
    mask[0, :4] = True
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    neg = np.array([[[1, 2], [2, 3], [0, 3], [0, 2]]])
    np.testing.assert_array_equal(_top1_among_distractors(target.clone(), target, mask, neg), [1.0])
    np.testing.assert_array_equal(_top1_among_distractors(target.clone(), target, mask, neg, ties="lose"), [0.75])


def test_a_frame_whose_distractors_all_equal_its_target_counts_as_wrong():
    mask = np.ones((1, 3), dtype=bool)
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    neg = np.array([[[1, 1], [0, 0], [0, 1]]])        # frames 0 and 1: only each other; frame 2: two others
    np.testing.assert_allclose(_top1_among_distractors(target.clone(), target, mask, neg), [1 / 3])


def test_the_objective_loss_is_near_zero_for_a_perfect_prediction_and_log_k_plus_1_for_a_blind_one():
    """Orthogonal targets (one-hot per frame), 5 distractors, temperature 0.1: predicting the target gives
    log(1 + 5 e^-10); a prediction equally similar to every candidate gives log 6."""
    mask, neg = _mask_and_negatives(b=2, t=40, k=5, seed=3)
    target = torch.eye(40)[None].repeat(2, 1, 1)
    np.testing.assert_allclose(_objective_loss("wav2vec2", target.clone(), target, mask, neg),
                               [np.log1p(5 * np.exp(-10.0))] * 2, rtol=2e-3)
    np.testing.assert_allclose(_objective_loss("wav2vec2", torch.ones_like(target), target, mask, neg),
                               [np.log(6.0)] * 2, rtol=1e-5)
    np.testing.assert_allclose(_objective_loss("data2vec", target.clone(), target, mask, neg), [0.0, 0.0])


def test_a_random_prediction_is_near_chance():
    mask, neg = _mask_and_negatives(b=8, t=200, k=9, seed=1)
    top1 = _top1_among_distractors(torch.randn(8, 200, 16), torch.randn(8, 200, 16), mask, neg)
    assert abs(top1.mean() - 0.1) < 0.04


def test_a_clip_is_scored_over_all_its_whole_crops():
    """A clip of three crops plus a remainder scores the mean of its three crops scored as clips of their own
    (the same masks and distractors: the crops are drawn in the same order); the remainder is left out."""
    from transformers import Wav2Vec2ForPreTraining

    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(_small("wav2vec2"))
    crop = 8000
    clips = _audio(3, 1.6, seed=2)[:, :3 * crop + 1000]                 # 3 whole crops of 0.5 s and 1000 samples
    as_crops = clips[:, :3 * crop].reshape(9, crop)
    kw = dict(crop=crop, mask_prob=0.5, mask_length=3, n_distractors=5, seed=3, device="cpu", model=model,
              details=True)
    whole = masked_frame_top1("wav2vec2", clips, **kw)
    parts = masked_frame_top1("wav2vec2", as_crops, **kw)
    for k in ("top1", "top1_strict", "loss"):
        assert whole[k].shape == (3,)
        np.testing.assert_allclose(whole[k], parts[k].reshape(3, 3).mean(1), rtol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_ssl_at_learning_rate_zero_gains_nothing_and_is_incompetent(arch):
    """lr 0: the 'trained' network and heads are the initial ones, so held-out identification is
    exactly the init's, and the declared gain of 0.1 over init cannot be met."""
    enc = build_encoder(_small(arch), 0)
    held = _audio(4, 1.0, seed=5)
    _, _, ho = train_ssl(enc, _audio(4, 1.0), SR, steps=2, batch_size=2, crop_s=0.5, lr=0.0, seed=0,
                         heldout_audio=held)
    np.testing.assert_array_equal(ho["init"], ho["trained"])
    np.testing.assert_array_equal(ho["init_strict"], ho["trained_strict"])
    # data2vec's EMA step (tau * teacher + (1 - tau) * student, equal weights) rounds in the last bit
    np.testing.assert_allclose(ho["init_loss"], ho["trained_loss"], rtol=1e-5)
    assert ho["chance"] == pytest.approx(1 / 21) and ho["init"].shape == (4,)
    est = competence([{"competence": {"ssl": ho}}], ("ssl",))[SSL_COMPETENCE.name]
    assert est.value == 0.0
    assert not SSL_COMPETENCE.judge(est, "ci")["met"]


def test_transcription_at_learning_rate_zero_does_not_beat_the_note_prior():
    """Two clips, one constant note each: an untrained head is judged against the prior and misses."""
    audio, roll, frame_times = _two_notes()
    _, model, _ = train_transcription(build_encoder(_small("wav2vec2"), 0), audio, roll, frame_times, SR, steps=2,
                                      batch_size=2, crop_s=0.5, lr=0.0, seed=0)
    scores = transcription_heldout(model, audio, roll, audio, roll, frame_times, SR)
    np.testing.assert_allclose(scores["prior_frame_f1"], 2 / 3, atol=0.02)   # both notes everywhere
    est = competence([{"competence": {"transcription": scores}}], ("transcription",))[TRANSCRIPTION_COMPETENCE.name]
    assert est.value < 0.1 and not TRANSCRIPTION_COMPETENCE.judge(est, "ci")["met"]


def test_the_declarations_judge_gains_by_the_worst_seed():
    assert TRANSCRIPTION_COMPETENCE.judge(Estimate.over_seeds([0.3, 0.2]), "ci")["met"]
    assert not TRANSCRIPTION_COMPETENCE.judge(Estimate.over_seeds([0.3, 0.05]), "ci")["met"]
    assert not SSL_COMPETENCE.judge(Estimate.over_seeds([0.0, 0.5]), "ci")["met"]


@pytest.mark.slow
def test_an_lr_zero_encoder_makes_a_grasse_claim_inconclusive(tmp_path):
    """``--set lr=0`` through the plugin: neither trained condition leaves its initialisation, so
    grasse2026.chroma.transcription_gt_ssl misses both competences and earns no verdict."""
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    small = {"lr": 0, "steps": 3, "music_tracks": 4, "heldout_tracks": 2, "ssl_clips": 8,
             "heldout_clips": 4, "n_perm": 50, "n_boot": 50}
    cmd = [sys.executable, "-m", "pytest", "-m", "claims", "claims/grasse2026/test_chroma_transcription_gt_ssl.py",
           "-k", "wav2vec2", "-p", "no:cacheprovider", "-p", "no:xdist", "--mlflow-uri", "none",
           f"--report-dir={tmp_path}", "--seeds", "1", "-q"] + [a for k, v in small.items() for a in ("--set", f"{k}={v}")]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    row = json.loads((tmp_path / "latest" / "claims.json").read_text())["claims"][0]
    assert row["verdict"] == "INCONCLUSIVE" and row["competent"] is False, out.stdout[-3000:] + out.stderr[-2000:]
    assert row["inconclusive_reason"].startswith("model did not learn its task: ")
    names = {c["name"]: c for c in row["competence"]}
    assert set(names) == {TRANSCRIPTION_COMPETENCE.name, SSL_COMPETENCE.name}
    assert names[SSL_COMPETENCE.name]["value"] == 0.0 and not names[SSL_COMPETENCE.name]["met"]
    assert all(c["training_s"] is not None and c["training_s"] > 0 for c in row["competence"])
    assert "undertrained: grasse2026.chroma.transcription_gt_ssl[wav2vec2]" in out.stdout


def test_each_architecture_trains_both_its_conditions_on_its_own_batch_size_and_keys_on_it():
    from claims.grasse2026._conditions import CI_SETTINGS, LAB_SETTINGS, batch_size, condition_config

    assert (batch_size(CI_SETTINGS, "wav2vec2"), batch_size(CI_SETTINGS, "data2vec")) == (16, 8)
    assert batch_size(LAB_SETTINGS, "wav2vec2") == batch_size(LAB_SETTINGS, "data2vec") == LAB_SETTINGS["batch_size"]
    key = lambda s, arch: condition_config(arch, 0, "ci", s)["hash"]
    # wav2vec2's batch is in wav2vec2's key, not in data2vec's
    assert key(dict(CI_SETTINGS, batch_size_wav2vec2=8), "wav2vec2") != key(CI_SETTINGS, "wav2vec2")
    assert key(dict(CI_SETTINGS, batch_size_wav2vec2=8), "data2vec") == key(CI_SETTINGS, "data2vec")
