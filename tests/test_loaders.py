"""Real-data loaders: AudioSet metadata (real CSVs + ontology), a generated audio folder with missing and
corrupt clips, resampling and mixdown, the 165 natural sounds, a user folder."""
import numpy as np
import pytest
import soundfile as sf

from harness.errors import UserError
from harness.options import DataRoots
from stimuli.audio_io import read_audio
from stimuli.loaders import (KIM_SINGING_CLASSES, MUSIC_ROOT_ID, audioset_class_ids, descendants,
                             kim_excluded_ids, kim_training_variants, load_audioset, load_folder,
                             load_natsound165, load_ontology, music_analysis_sets, music_class_mask,
                             read_segments, speech_class_mask)


@pytest.fixture(scope="module")
def roots(pytestconfig):
    return DataRoots.from_config(pytestconfig)


@pytest.fixture(scope="module")
def audioset_meta(roots):
    p = roots.get("audioset_meta")
    if p is None or not (p / "ontology.json").is_file():
        pytest.skip(f"AudioSet metadata not found ({roots.missing_reason('audioset_meta') or p}); "
                    "set --audioset-meta or MEC_SHARED_DATA")
    return p


@pytest.fixture(scope="module")
def kim_dir(roots):
    p = roots.get("kim2024_lists")
    if p is None:
        pytest.skip(f"Kim et al. lists not found: {roots.missing_reason('kim2024_lists')}")
    return p


@pytest.fixture(scope="module")
def ontology(audioset_meta):
    return load_ontology(audioset_meta / "ontology.json")


@pytest.fixture(scope="module")
def class_ids(audioset_meta, ontology):
    return audioset_class_ids(ontology, [audioset_meta / "balanced_train_segments.csv",
                                         audioset_meta / "eval_segments.csv"])


# ---------------------------------------------------------------------------------------------
# AudioSet metadata (real files)
# ---------------------------------------------------------------------------------------------
@pytest.mark.needs_data
def test_segment_csv_parsing(audioset_meta):
    rows = read_segments(audioset_meta / "balanced_train_segments.csv")
    assert len(rows) == 22160                              # the header says num_segs=22160
    assert rows[0]["clip_id"] == "--PJHxphWEs_30.000"
    assert rows[0]["labels"] == ["/m/09x0r", "/t/dd00088"]  # quoted, comma-separated, no stray spaces
    assert rows[2]["labels"] == ["/m/03fwl", "/m/04rlf", "/m/09x0r"]
    dur = np.array([r["end_s"] - r["start_s"] for r in rows])
    assert dur.max() <= 10.0 + 1e-6 and dur.min() > 0 and np.median(dur) == 10.0   # a few segments are shorter
    assert sum(len(r["labels"]) for r in rows) == 52882     # num_positive_labels in the header


@pytest.mark.needs_data
def test_label_space_and_music_definition(ontology, class_ids, kim_dir):
    assert len(ontology) == 632
    assert len(class_ids) == 527
    names = [ontology[c]["name"] for c in class_ids]
    assert names[0] == "Speech" and names[-1] == "Field recording"
    subtree = set(descendants(ontology, MUSIC_ROOT_ID))
    assert len(subtree) == 189 and sum(c in subtree for c in class_ids) == 150
    music = music_class_mask(ontology, class_ids, kim_dir / "music_categories.txt")
    assert music.sum() == 158                               # 150 Music-subtree classes + 8 singing outside it
    music_names = {n for n, m in zip(names, music) if m}
    assert set(KIM_SINGING_CLASSES) <= music_names
    assert "Speech" not in music_names and "Dog" not in music_names
    # Kim et al.'s list names only Music-subtree classes: without it the mask is the same
    np.testing.assert_array_equal(music, music_class_mask(ontology, class_ids))
    assert speech_class_mask(ontology, class_ids).sum() == 8


@pytest.mark.needs_data
def test_kim_excluded_list(kim_dir):
    ids = kim_excluded_ids(kim_dir / "excluded_clips.csv")
    assert len(ids) == 503                                  # 507 rows, 503 unique
    assert "-A0MTi2NMGI_30.000" in ids and "0FMR_VBW5TU_70.000" in ids


def test_bad_music_list_and_missing_files_raise(tmp_path, ontology, class_ids):
    bad = tmp_path / "music.txt"
    bad.write_text("Music\nNot a class\n")
    with pytest.raises(UserError, match="Not a class"):
        music_class_mask(ontology, class_ids, bad)
    with pytest.raises(UserError, match="does not exist"):
        read_segments(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="does not exist"):
        load_ontology(tmp_path / "ontology.json")


# ---------------------------------------------------------------------------------------------
# AudioSet audio folder (generated fixtures)
# ---------------------------------------------------------------------------------------------
def _tone(sr, f0, dur_s, channels=1):
    t = np.arange(int(sr * dur_s)) / sr
    x = 0.5 * np.sin(2 * np.pi * f0 * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.fixture()
def audioset_fixture(tmp_path, audioset_meta):
    rows = read_segments(audioset_meta / "balanced_train_segments.csv")[:6]
    csv_path = tmp_path / "tiny_segments.csv"
    lines = ["# Segments csv (test fixture)", "# num_ytids=6", "# YTID, start_seconds, end_seconds, positive_labels"]
    lines += [f'{r["ytid"]}, {r["start_s"]:.3f}, {r["end_s"]:.3f}, "{",".join(r["labels"])}"' for r in rows]
    csv_path.write_text("\n".join(lines) + "\n")
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / f"{rows[0]['ytid']}_30.000.wav", _tone(48000, 440, 1.0, channels=2), 48000)  # 48 kHz stereo
    sf.write(audio / f"{rows[1]['ytid']}_{int(rows[1]['start_s'])}.flac", _tone(16000, 300, 0.5), 16000)  # "50" not "50.000"
    sf.write(audio / f"{rows[2]['clip_id']}.wav", _tone(22050, 500, 12.0), 22050)                 # longer than 10 s
    (audio / f"{rows[3]['clip_id']}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")       # corrupt
    sf.write(audio / f"{rows[5]['clip_id']}.wav", _tone(44100, 200, 1.0), 44100)                 # rows[4] missing
    return dict(rows=rows, csv=csv_path, audio=audio)


@pytest.mark.needs_data
def test_audioset_loader_counts_missing_and_corrupt(audioset_fixture, audioset_meta, kim_dir, class_ids):
    fx = audioset_fixture
    clips, report = load_audioset(audioset_meta, fx["audio"], {"train": [fx["csv"]]}, sr=22050, clip_s=10,
                                  kim_dir=kim_dir, progress=False, val_fraction=0.0,
                                  label_csvs=[audioset_meta / "balanced_train_segments.csv",
                                              audioset_meta / "eval_segments.csv"])
    assert (report["listed"], report["loaded"], report["missing"], report["corrupt"]) == (6, 4, 1, 1)
    assert report["missing_ids"] == [fx["rows"][4]["clip_id"]]
    assert fx["rows"][3]["clip_id"] in report["corrupt_files"][0]["file"]
    assert clips.audio.shape == (4, 220500) and clips.audio.dtype == np.float32
    assert clips.labels.shape == (4, 527) and clips.manifest["class_ids"] == class_ids
    kept = [fx["rows"][i] for i in (0, 1, 2, 5)]
    assert clips.clip_ids == [r["clip_id"] for r in kept]
    col = {c: i for i, c in enumerate(class_ids)}
    for i, r in enumerate(kept):
        assert sorted(np.flatnonzero(clips.labels[i])) == sorted(col[lab] for lab in r["labels"])
    # 1-s clips are zero-padded to 10 s, the 12-s clip is cut
    assert np.all(clips.audio[0, 22050 + 100:] == 0) and np.abs(clips.audio[2, -100:]).max() > 0.1
    assert len(clips.manifest["excluded_ids"]) == 503
    # the same load into a memory map on disk
    mm, rep2 = load_audioset(audioset_meta, fx["audio"], {"train": [fx["csv"]]}, sr=22050, clip_s=10,
                             progress=False, val_fraction=0.0, memmap_path=fx["audio"].parent / "audio.npy")
    assert isinstance(mm.audio, np.memmap) and rep2["loaded"] == 4
    np.testing.assert_array_equal(np.asarray(mm.audio), clips.audio)


@pytest.mark.needs_data
def test_variants_and_analysis_sets(audioset_fixture, audioset_meta, kim_dir):
    fx = audioset_fixture
    clips, _ = load_audioset(audioset_meta, fx["audio"], {"train": [fx["csv"]]}, clip_s=1, kim_dir=kim_dir,
                             progress=False, val_fraction=0.0)
    music_any = clips.music_label_count > 0
    assert 0 < music_any.sum() < len(clips)
    v = kim_training_variants(clips, excluded_ids={clips.clip_ids[-1]}, seed=3)
    assert v["with_music"].clip_ids == clips.clip_ids
    no_music = [c for c, m in zip(clips.clip_ids, music_any) if not m and c != clips.clip_ids[-1]]
    assert v["without_music"].clip_ids == no_music
    assert not v["without_music_and_speech"].has_speech.any()
    sh = v["shuffled_labels"]
    np.testing.assert_array_equal(sh.labels.sum(1), clips.labels.sum(1))
    assert not np.array_equal(sh.labels, clips.labels)
    sets = music_analysis_sets(clips, split="train")
    assert (sets["music"].is_music == 1).all() and (sets["no_music"].is_music == 0).all()
    assert len(sets["music"]) + len(sets["no_music"]) <= len(clips)


def test_audioset_loader_needs_an_audio_folder(tmp_path):
    with pytest.raises(UserError, match="audio folder"):
        load_audioset(tmp_path, tmp_path / "missing", progress=False)


# ---------------------------------------------------------------------------------------------
# audio files
# ---------------------------------------------------------------------------------------------
def test_read_audio_resamples_48k_stereo_to_22050_mono(tmp_path):
    f = tmp_path / "stereo48k.wav"
    left, right = _tone(48000, 440, 1.0), _tone(48000, 440, 1.0) * 0.0
    sf.write(f, np.stack([left, right], axis=1), 48000, subtype="PCM_16")
    x = read_audio(f, 22050)
    assert x.dtype == np.float32 and x.shape == (22050,)
    spec = np.abs(np.fft.rfft(x))
    assert np.argmax(spec) * 22050 / len(x) == pytest.approx(440, abs=2)
    assert np.abs(x[1000:-1000]).max() == pytest.approx(0.25, abs=0.01)     # mono = mean of channels


def test_read_audio_names_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(UserError, match="broken.wav"):
        read_audio(bad, 22050)
    with pytest.raises(UserError, match="absent.wav"):
        read_audio(tmp_path / "absent.wav", 22050)


def test_load_folder(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(16000, 440, 0.5), 16000)
    sf.write(tmp_path / "b.flac", _tone(44100, 220, 1.0, channels=2), 44100)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "c.wav", _tone(22050, 330, 0.25), 22050)
    (tmp_path / "labels.csv").write_text('file,labels,split\na.wav,Music,train\nb,"Speech; Dog",test\nsub/c.wav,Dog,\n')
    clips = load_folder(tmp_path, "labels.csv", sr=22050)
    assert clips.audio.shape == (3, 22050)                      # padded to the longest clip (1 s)
    assert clips.class_names == ["Music", "Speech", "Dog"]
    np.testing.assert_array_equal(clips.music_classes, [True, False, False])
    np.testing.assert_array_equal(clips.speech_classes, [False, True, False])
    assert clips.is_music.tolist() == [1, 0, 0] and clips.split.tolist() == ["train", "test", "test"]
    assert clips.clip_ids == ["a", "b", "sub/c"]
    (tmp_path / "bad.csv").write_text("file,labels\nmissing.wav,Music\n")
    with pytest.raises(UserError, match="missing.wav"):
        load_folder(tmp_path, "bad.csv")


# ---------------------------------------------------------------------------------------------
# 165 natural sounds (real files when present)
# ---------------------------------------------------------------------------------------------
@pytest.mark.needs_data
def test_natsound165(roots):
    root = roots.get("natsound165")
    if root is None:
        pytest.skip(f"165 natural sounds not found: {roots.missing_reason('natsound165')}")
    clips = load_natsound165(root, sr=22050)
    assert len(clips) == 165 and clips.audio.shape == (165, 44100) and clips.sr == 22050
    assert (clips.is_music == 1).sum() == 35 and (clips.is_music == 0).sum() == 130
    assert len(clips.class_names) == 11
    assert dict(zip(*np.unique(clips.categories, return_counts=True)))["Mechanical"] == 39
    assert np.all(np.abs(clips.audio).max(axis=1) > 0)
