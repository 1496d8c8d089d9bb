"""Tests for stimuli/corpus.py: the embedded AudioSet-like corpus, its splits, variants and audit."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from harness.errors import UserError
from stimuli import corpus as C
from stimuli.corpus import (CLASSES, ONTOLOGY, SPEECH_CLASSES, CorpusConfig, confound_audit, kim_protocol_ap,
                            make_corpus, median_level_db, parents, speech_source, write_examples)
from stimuli.dataset import ClipSet, training_variant

SR = 22050
DATA_ROOT = Path(os.environ.get("MEC_DATA_ROOT", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def _standin_music_source(rng, dur_s, sr, kind=None):
    """TEMPORARY STAND-IN used only if stimuli.music is missing: harmonic chords on a beat."""
    n = int(round(dur_s * sr))
    t = np.arange(n) / sr
    root_hz = 110 * 2 ** (rng.integers(0, 12) / 12)
    beat = (t * rng.uniform(1.5, 3)) % 1.0
    chord = sum(np.sin(2 * np.pi * root_hz * r * k * t) / k for r in (1, 1.26, 1.5) for k in range(1, 6))
    return (chord * np.exp(-beat * 3)).astype(np.float32), ["Music", "Piano"]


def _music_source():
    """The real music source over a few parsed scores (full parsing takes ~15 s), else the stand-in."""
    try:
        from functools import partial

        from stimuli.music import load_scores, music_source
    except ImportError:
        return _standin_music_source
    return partial(music_source, scores=load_scores(max_scores=4, seed=0))


@pytest.fixture(scope="module")
def music_source():
    return _music_source()


@pytest.fixture(scope="module")
def small(music_source):
    cfg = CorpusConfig(n_clips=100, clip_s=1.0, seed=3, music_fraction=0.3, mixed_fraction=0.1)
    return make_corpus(cfg, music_source=music_source, audit=False)


SMALL_CFG = CorpusConfig(n_clips=100, clip_s=1.0, seed=3, music_fraction=0.3, mixed_fraction=0.1)


# ----------------------------------------------------------------------------- ontology
def test_ontology_spans_audioset_branches_with_tonal_and_rhythmic_members():
    branches = {b for b, _ in ONTOLOGY.values()}
    assert {"Human sounds", "Animal", "Natural sounds", "Sounds of things"} <= branches
    for name in ("Siren", "Vehicle horn, car horn, honking", "Whistling", "Bird vocalization, bird call, bird song",
                 "Tick-tock", "Walk, footsteps", "Engine", "Insect"):
        assert name in ONTOLOGY
    assert set(SPEECH_CLASSES) <= set(CLASSES)
    assert "Music" not in CLASSES  # music columns come from the music source
    assert parents("Conversation") == ("Speech",) and "Animal" in parents("Bark")


def test_ontology_names_exist_in_audioset_and_are_not_kim_music():
    ont_path = DATA_ROOT / "audioset" / "ontology.json"
    music_path = DATA_ROOT / "kim2024" / "music_categories.txt"
    if not ont_path.exists() or not music_path.exists():
        pytest.skip(f"AudioSet ontology / Kim et al. lists not found under {DATA_ROOT} (set MEC_DATA_ROOT)")
    import json

    names = {o["name"] for o in json.loads(ont_path.read_text())}
    kim_music = {line.strip() for line in music_path.read_text().splitlines() if line.strip()}
    assert set(CLASSES) <= names, set(CLASSES) - names
    assert not set(CLASSES) & kim_music


# ----------------------------------------------------------------------------- the ClipSet
def test_corpus_shapes_types_and_levels(small):
    assert isinstance(small, ClipSet) and len(small) == 100
    assert small.audio.dtype == np.float32 and small.audio.shape == (100, SR)
    assert small.labels.dtype == bool and small.labels.shape == (100, len(small.class_names))
    assert np.isfinite(small.audio).all() and np.abs(small.audio).max() <= 1.0
    assert len(set(small.clip_ids)) == 100
    assert small.class_names[: len(CLASSES)] == list(CLASSES) and "Music" in small.class_names
    rms_db = 20 * np.log10(np.sqrt(np.mean(small.audio.astype(np.float64) ** 2, axis=1)))
    assert -46 < rms_db.min() and rms_db.max() < -11


def test_label_semantics_music_mixed_nonmusic(small):
    counts = small.manifest["counts"]
    assert counts == {"music": 30, "mixed": 10, "nonmusic": 60}
    is_music = small.is_music
    assert (is_music == 1).sum() == 30 and (is_music == -1).sum() == 10 and (is_music == 0).sum() == 60
    assert small.labels.any(axis=1).all()
    music_col = small.class_names.index("Music")
    assert small.labels[is_music == 1, music_col].all() and small.labels[is_music == -1, music_col].all()
    assert not small.labels[is_music == 0][:, small.music_classes].any()
    names = np.array(small.class_names)
    assert not small.music_classes[: len(CLASSES)].any() and small.music_classes[music_col]
    assert set(names[small.speech_classes]) == set(SPEECH_CLASSES)


def test_parent_labels_follow_their_leaves(small):
    col = {c: j for j, c in enumerate(small.class_names)}
    for leaf, (_, pars) in ONTOLOGY.items():
        rows = small.labels[:, col[leaf]]
        for p in pars:
            assert small.labels[rows, col[p]].all(), (leaf, p)


def test_splits_are_stratified(small):
    assert set(small.split) == {"train", "val", "test"}
    for kind, n in (("music", 30), ("mixed", 10), ("nonmusic", 60)):
        sel = {"music": small.is_music == 1, "mixed": small.is_music == -1, "nonmusic": small.is_music == 0}[kind]
        assert (small.split[sel] == "train").sum() == round(0.8 * n)
        assert (small.split[sel] == "val").sum() == round(0.1 * n)


def test_deterministic_for_a_seed_and_different_across_seeds(music_source, small):
    again = make_corpus(SMALL_CFG, music_source=music_source, audit=False)
    assert again.manifest["hash"] == small.manifest["hash"]
    np.testing.assert_array_equal(again.audio, small.audio)
    other = make_corpus(CorpusConfig(n_clips=10, clip_s=0.5, seed=4), music_source=music_source, audit=False)
    first = make_corpus(CorpusConfig(n_clips=10, clip_s=0.5, seed=3), music_source=music_source, audit=False)
    assert other.manifest["hash"] != first.manifest["hash"]


def test_loudness_is_drawn_from_one_distribution_for_music_and_non_music(small):
    rms_db = 20 * np.log10(np.sqrt(np.mean(small.audio.astype(np.float64) ** 2, axis=1)))
    m, nm = rms_db[small.is_music == 1], rms_db[small.is_music == 0]
    assert abs(np.median(m) - np.median(nm)) < 3.0
    from scipy.stats import mannwhitneyu

    assert mannwhitneyu(m, nm).pvalue > 0.01


def test_training_variants_drop_music_and_speech(small):
    no_music = training_variant(small, "without_music")
    assert len(no_music) == 60 and not no_music.labels[:, no_music.music_classes].any()
    no_ms = training_variant(small, "without_music_and_speech")
    assert not no_ms.labels[:, no_ms.speech_classes].any() and not no_ms.labels[:, no_ms.music_classes].any()
    assert 0 < len(no_ms) < len(no_music)


@pytest.mark.parametrize("bad", [dict(n_clips=0), dict(clip_s=0.0), dict(sr=4000), dict(music_fraction=0.9, mixed_fraction=0.2),
                                 dict(split_fractions=(0.5, 0.5)), dict(max_sources=4), dict(envelope_match=1.5),
                                 dict(music_kinds=(("drums", -1.0),)), dict(music_kinds=("drums",)),
                                 dict(music_varispeed_semitones=1.5), dict(music_varispeed_semitones=13),
                                 dict(music_varispeed_semitones=-1)])
def test_bad_config_raises_user_error(bad):
    with pytest.raises(UserError):
        make_corpus(CorpusConfig(**bad), music_source=_standin_music_source, audit=False)


def test_music_source_may_not_claim_non_music_classes():
    def bad_source(rng, dur_s, sr):
        return np.ones(int(dur_s * sr), np.float32), ["Music", "Speech"]

    with pytest.raises(UserError, match="non-music class"):
        make_corpus(CorpusConfig(n_clips=4, clip_s=0.5, music_fraction=1.0, mixed_fraction=0.0, music_kinds=()),
                    music_source=bad_source, audit=False)


def test_music_kinds_are_passed_to_the_source_and_a_source_without_kind_is_named():
    seen = []

    def source(rng, dur_s, sr, kind=None):
        seen.append(kind)
        return np.sin(np.arange(int(dur_s * sr)) * 0.1).astype(np.float32), ["Music"]

    cfg = CorpusConfig(n_clips=8, clip_s=0.2, music_fraction=1.0, mixed_fraction=0.0, max_sources=1,
                       music_kinds=(("drums", 1.0), ("solo", 0.0)))
    make_corpus(cfg, music_source=source, audit=False)
    assert seen == ["drums"] * 8

    def kindless(rng, dur_s, sr):
        return np.ones(int(dur_s * sr), np.float32), ["Music"]

    with pytest.raises(UserError, match="music_kinds=()"):
        make_corpus(cfg, music_source=kindless, audit=False)
    seen.clear()
    make_corpus(CorpusConfig(**{**cfg.__dict__, "music_kinds": ()}), music_source=source, audit=False)
    assert seen == [None] * 8


@pytest.mark.parametrize("semitones", [-7, -4, -1, 1, 4, 12])
def test_varispeed_moves_a_tone_by_whole_semitones_and_scales_its_length(semitones):
    """Analytical: a 440 Hz tone played 2 ** (k / 12) times faster sits at 440 * 2 ** (k / 12) Hz
    (within 0.5 Hz, the FFT's resolution here) and lasts 1 / 2 ** (k / 12) as long."""
    speed = 2.0 ** (semitones / 12)
    x = np.sin(2 * np.pi * 440.0 * np.arange(SR) / SR)
    y = C.varispeed(x, speed)
    assert abs(len(y) - SR / speed) <= 1
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), 8 * len(y)))
    assert abs(np.fft.rfftfreq(8 * len(y), 1 / SR)[spec.argmax()] - 440.0 * speed) < 0.5
    with pytest.raises(UserError, match="speed"):
        C.varispeed(x, 0.0)


def test_varispeed_changes_only_clips_with_music():
    """The semitone draw is taken only for music sources, so non-music clips are the same bits."""
    cfg = dict(n_clips=40, clip_s=0.5, seed=5, music_fraction=0.3, mixed_fraction=0.1, music_kinds=())
    asked = []

    def source(rng, dur_s, sr):
        asked.append(dur_s)
        return _standin_music_source(rng, dur_s, sr)

    plain = make_corpus(CorpusConfig(**cfg, music_varispeed_semitones=0), music_source=source, audit=False)
    asked.clear()
    sped = make_corpus(CorpusConfig(**cfg, music_varispeed_semitones=4), music_source=source, audit=False)
    non = plain.is_music == 0
    assert non.any() and np.array_equal(plain.audio[non], sped.audio[non])
    assert not np.array_equal(plain.audio[~non], sped.audio[~non])
    ratios = (np.array(asked) - 0.05) / cfg["clip_s"]                 # requested length / clip length
    semis = 12 * np.log2(ratios)
    assert np.allclose(semis, np.round(semis), atol=1e-9) and np.abs(semis).max() <= 4 and len(set(np.round(semis))) > 2


def test_envelope_match_flattens_long_term_log_mel_profile():
    """Analytical: with envelope_match=1 and no random EQ, band means of a coloured clip become flat."""
    rng = np.random.default_rng(0)
    from stimuli.sounds import colored_noise

    x = np.stack([colored_noise(rng, SR, SR, slope) for slope in (-6.0, 0.0, 3.0)])
    draws = [C._ClipDraw(audio=None, eq=(0.0, 1000.0, 0.0, 1.0), reverb=(), level_dbfs=-26.0) for _ in range(3)]
    before = C.band_statistics(C._post_process(x, draws, SR, 0.0), SR)[:, 2:62]
    after = C.band_statistics(C._post_process(x, draws, SR, 1.0), SR)[:, 2:62]
    spread = lambda f: np.std(f - f.mean(axis=1, keepdims=True), axis=1)  # noqa: E731
    assert spread(before)[0] > 5 and (spread(after) < 1.5).all(), (spread(before), spread(after))


def test_speech_source_is_exported_for_other_modules():
    x = speech_source(np.random.default_rng(0), 1.0, 16000)
    assert x.shape == (16000,) and x.dtype == np.float32 and np.any(x)


# ----------------------------------------------------------------------------- audit
def test_median_level_orders_dense_above_sparse():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR)
    clicks = np.zeros(SR)
    clicks[:: SR // 4] = 1.0
    lv = median_level_db(np.stack([noise, clicks]), SR)
    assert lv[0] > lv[1] + 20


def _toy_clipset(music_audio, nonmusic_audio):
    n_m, n_n = len(music_audio), len(nonmusic_audio)
    labels = np.zeros((n_m + n_n, 2), bool)
    labels[:n_m, 0] = True
    labels[n_m:, 1] = True
    split = np.array((["train"] * (n_m // 2) + ["test"] * (n_m - n_m // 2))
                     + (["train"] * (n_n // 2) + ["test"] * (n_n - n_n // 2)))
    return ClipSet(audio=np.concatenate([music_audio, nonmusic_audio]).astype(np.float32), sr=SR, labels=labels,
                   class_names=["Music", "Rain"], music_classes=np.array([True, False]),
                   speech_classes=np.array([False, False]), split=split,
                   clip_ids=[str(i) for i in range(n_m + n_n)])


def test_audit_detects_a_trivial_shortcut_and_not_an_absent_one():
    rng = np.random.default_rng(1)
    t = np.arange(SR // 2) / SR
    tones = np.stack([np.sin(2 * np.pi * rng.uniform(300, 400) * t) + 0.01 * rng.standard_normal(len(t)) for _ in range(40)])
    noise = rng.standard_normal((80, len(t)))
    easy = confound_audit(_toy_clipset(tones, noise), seed=0)
    assert easy["linear_ap"] > 0.95 and easy["level_db_music"] < easy["level_db_nonmusic"]
    assert easy["kim_protocol_ap"] > 0.95, easy["kim_protocol_ap"]
    same = confound_audit(_toy_clipset(rng.standard_normal((40, len(t))), noise), seed=0)
    assert same["linear_ap"] < 0.7, same["linear_ap"]
    assert same["kim_protocol_ap"] < 0.7 and same["kim_protocol_chance"] == pytest.approx(20 / 60, abs=1e-3)
    assert same["linear_ap_chance"] == pytest.approx(20 / 60, abs=1e-3)
    assert abs(same["level_db_difference"]) < 1.0


def test_kim_protocol_on_analytical_cases():
    """A music-only spectral line gives AP 1; spectrograms independent of the labels give about chance;
    the PCA keeps at most n_train - 1 components; one-class splits are refused with a UserError."""
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(30, bool), np.zeros(60, bool)]
    train = rng.permutation(np.r_[np.ones(45, bool), np.zeros(45, bool)])
    train[[0, 89]] = True, False                              # both kinds on both sides
    train[[1, 88]] = False, True
    lm = rng.normal(size=(90, 8, 20)).astype(np.float32)
    line = lm.copy()
    line[y, 3, :] += 4.0
    assert kim_protocol_ap(line, y, train)["ap"] == pytest.approx(1.0)
    null = [kim_protocol_ap(rng.normal(size=(90, 8, 20)), y, train)["ap"] for _ in range(20)]
    assert abs(np.mean(null) - y[~train].mean()) < 0.12, np.mean(null)
    assert kim_protocol_ap(lm, y, train)["n_components"] == train.sum() - 1
    with pytest.raises(UserError, match="both the train and held-out"):
        kim_protocol_ap(lm, y, y)


def test_out_of_fold_ap_on_analytical_cases():
    """Separable features give AP 1; features independent of the labels give about chance."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(35, bool), np.zeros(130, bool)]
    sep = np.c_[y * 5.0 + rng.normal(0, 0.1, y.size), rng.normal(size=(y.size, 3))]
    out = C.linear_band_ap_cv(sep, y, n_repeats=3)
    assert out["ap"] == pytest.approx(1.0) and out["chance"] == pytest.approx(35 / 165) and out["n"] == 165
    null = C.linear_band_ap_cv(rng.normal(size=(y.size, 8)), y, n_repeats=10)
    assert abs(null["ap"] - 35 / 165) < 0.12, null
    with pytest.raises(UserError, match="at least 5 music"):
        C.linear_band_ap_cv(sep[:40], y[:40] & (np.arange(40) < 3))


def test_matched_protocol_ap_uses_the_165_sounds_composition():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(300, bool), np.zeros(700, bool)]
    feats = np.c_[y * 3.0 + rng.normal(size=y.size), rng.normal(size=(y.size, 4))]
    out = C.matched_protocol_ap(feats, y, n_draws=3, seed=0)
    assert out["chance"] == pytest.approx(35 / 165) and out["n_draws"] == 3 and out["ap"] > 0.8
    assert out == C.matched_protocol_ap(feats, y, n_draws=3, seed=0)
    with pytest.raises(UserError, match="generate more clips"):
        C.matched_protocol_ap(feats[:100], y[:100] | (np.arange(100) >= 90))


def test_audit_lands_in_the_manifest_and_the_cache_round_trips(tmp_path, music_source):
    from harness.cache import Cache

    cache = Cache(tmp_path / "cache")
    cfg = CorpusConfig(n_clips=40, clip_s=0.5, seed=1)
    a = make_corpus(cfg, cache=cache, music_source=music_source, audit_network=False)
    b = make_corpus(cfg, cache=cache, music_source=music_source, audit_network=False)
    assert cache.hits >= 2 and a.manifest["hash"] == b.manifest["hash"]
    np.testing.assert_allclose(a.audio, b.audio)
    assert np.abs(a.audio * 32767 - np.round(a.audio * 32767)).max() < 1e-2   # stored as int16
    audit = b.manifest["audit"]
    for key in ("linear_ap", "linear_ap_chance", "level_db_music", "level_db_nonmusic", "class_level_db", "reference"):
        assert key in audit
    assert 0 <= audit["linear_ap"] <= 1 and b.manifest["generation"]["x_realtime"] > 0


def test_random_network_ratio_hook_runs(small):
    pytest.importorskip("models.kim_cnn")
    out = C.audit_random_network_ratio(small, seeds=(0,), max_clips=90)
    assert len(out["ms_unit_ratio"]) == 1 and np.isfinite(out["mean"]) and out["mean"] > 0


def test_listening_check_cli_writes_examples_sheet_and_index(music_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(C, "default_music_source", lambda: music_source)
    assert C.main(["--out", str(tmp_path / "ex"), "--clips", "30", "--per-class", "1"]) == 0
    wavs = sorted((tmp_path / "ex").glob("*.wav"))
    index = (tmp_path / "ex" / "index.md").read_text()
    assert wavs and (tmp_path / "ex" / "examples.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert all(w.name in index for w in wavs) and "wrote" in out
    assert (tmp_path / "ex" / "audit.png").exists() or "no audit.png: " in out, out
    assert C.main(["--out", str(tmp_path / "bad"), "--clips", "0"]) == 2
    assert capsys.readouterr().out.startswith("error: CorpusConfig.n_clips=0")


def test_audit_plot_with_and_without_real_sounds(small, tmp_path):
    audit = confound_audit(small, seed=0)
    rng = np.random.default_rng(0)
    real = (rng.standard_normal((6, SR)).astype(np.float32), SR, np.r_[np.ones(2, bool), np.zeros(4, bool)])
    for name, ref in (("plain.png", None), ("real.png", real)):
        png = C.plot_audit(small, audit, tmp_path / name, real=ref)
        assert png.stat().st_size > 10_000


def test_write_examples_covers_every_class(small, tmp_path):
    paths = write_examples(small, tmp_path / "ex", per_class=1)
    present = [c for j, c in enumerate(small.class_names) if small.labels[:, j].any()]
    assert len(paths) == len(present) and all(p.exists() for p in paths)
    import soundfile as sf

    x, sr = sf.read(paths[0])
    assert sr == SR and len(x) == SR






def test_natsound165_audit_set_is_none_without_the_sounds(tmp_path):
    assert C.natsound165_audit_set(tmp_path) is None


@pytest.mark.needs_data
def test_natsound165_audit_set_labels_music_and_song():
    root = DATA_ROOT / "natsound165"
    if not (root / "category_labels.csv").exists():
        pytest.skip(f"165 natural sounds not found at {root} (set MEC_DATA_ROOT)")
    audio, sr, y = C.natsound165_audit_set(root)
    assert audio.shape == (165, 2 * sr) and int(y.sum()) == 35


@pytest.mark.needs_data
def test_level_measurement_reproduces_the_natsound165_figures():
    """Regression: the same measurement gives about -7.7 dB (music) vs -14.8 dB (rest) on the 165 sounds."""
    root = DATA_ROOT / "natsound165"
    if not (root / "category_labels.csv").exists():
        pytest.skip(f"165 natural sounds not found at {root} (set MEC_DATA_ROOT)")
    import csv

    import soundfile as sf
    from scipy.signal import resample_poly

    rows = list(csv.reader((root / "category_labels.csv").open()))
    audio, music = [], []
    for stem, cat in rows:
        x, sr = sf.read(root / "wav" / f"{stem}.wav", dtype="float32")
        x = x.mean(axis=1) if x.ndim > 1 else x
        x = resample_poly(x, 1, 2) if sr == 44100 else x
        audio.append(np.pad(x[: 2 * SR], (0, max(0, 2 * SR - len(x)))))
        music.append(cat in ("Music", "Song"))
    lv = median_level_db(np.stack(audio), SR)
    music = np.array(music)
    assert np.median(lv[music]) == pytest.approx(-7.7, abs=1.0)
    assert np.median(lv[~music]) == pytest.approx(-14.8, abs=1.0)
