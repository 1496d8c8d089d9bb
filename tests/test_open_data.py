"""Open-dataset loaders (stimuli.open_data) on tiny folders laid out like the real datasets.

Every fixture is generated in tmp_path: a few short sine tones (soundfile) and the metadata in the
dataset's own format. Each loader is tested on the happy path and on a missing root, missing
metadata, a corrupt file (garbage bytes), a listed file that is absent and a wrong layout. One test
uses the real AudioSet ontology from ../shared/data/audioset when it is there.
"""
import json
import logging
import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from harness.errors import UserError
from harness.options import DataRoots
from stimuli import open_data as od
from stimuli.dataset import training_variant

SR = 16000


def _tone(f0: float, dur_s: float = 0.25, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(sr * dur_s))) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _write(path, f0: float = 440.0, dur_s: float = 0.25, sr: int = SR, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _tone(f0, dur_s, sr), sr, **kw)
    return path


def _garbage(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    return path


def _one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert str(n) in msg, f"{n!r} not in: {msg}"
    return msg


# =============================================================================================
# FSD50K
# =============================================================================================
#: A tiny ontology in AudioSet's format: Music subtree, the 9 singing names (the music mask looks
#: them up by name), Speech, and an animal branch.
TINY_ONTOLOGY = [
    ("/m/04rlf", "Music", ["/m/04szw"]),
    ("/m/04szw", "Musical instrument", ["/m/0342h"]),
    ("/m/0342h", "Guitar", ["/m/02sgy"]),
    ("/m/02sgy", "Electric guitar", []),
    ("/m/09l8g", "Human voice", ["/m/09x0r", "/m/015lz1", "/m/02bk07", "/m/01swy6", "/m/02fxyj"]),
    ("/m/09x0r", "Speech", []),
    ("/m/015lz1", "Singing", ["/m/05zppz_s", "/m/02zsn_s", "/m/0ytgt_s", "/t/dd00005", "/m/016cjb"]),
    ("/m/05zppz_s", "Male singing", []), ("/m/02zsn_s", "Female singing", []),
    ("/m/0ytgt_s", "Child singing", []), ("/t/dd00005", "Synthetic singing", []), ("/m/016cjb", "Rapping", []),
    ("/m/02bk07", "Chant", []), ("/m/01swy6", "Yodeling", []), ("/m/02fxyj", "Humming", []),
    ("/m/0jbk", "Animal", ["/m/0bt9lr"]),
    ("/m/0bt9lr", "Dog", ["/m/05tny_"]),
    ("/m/05tny_", "Bark", []),
]
#: FSD50K label name -> display name in the ontology.
FSD_NAMES = {"Music": "Music", "Musical_instrument": "Musical instrument", "Guitar": "Guitar",
             "Electric_guitar": "Electric guitar", "Human_voice": "Human voice", "Speech": "Speech",
             "Singing": "Singing", "Male_singing": "Male singing", "Chant": "Chant", "Animal": "Animal",
             "Dog": "Dog", "Bark": "Bark"}
DEV_ROWS = [("101", "Bark,Dog,Animal", "train"), ("102", "Electric_guitar,Guitar,Musical_instrument,Music", "train"),
            ("103", "Male_singing,Singing,Human_voice", "train"), ("104", "Speech,Human_voice", "train"),
            ("105", "Chant,Human_voice,Dog,Animal", "val"), ("106", "Dog,Animal", "val")]
EVAL_ROWS = [("201", "Dog,Animal"), ("202", "Music")]


def _ontology_json(path, entries=TINY_ONTOLOGY):
    path.write_text(json.dumps([{"id": i, "name": n, "description": "", "citation_uri": "", "positive_examples": [],
                                 "child_ids": c, "restrictions": []} for i, n, c in entries]))
    return path


def make_fsd50k(root, name_to_id=None, ontology=True):
    """An FSD50K folder: ground truth CSVs (quoted label lists), vocabulary.csv, one tone per clip."""
    if name_to_id is None:
        name_to_id = {i_name: i for i, i_name, _ in TINY_ONTOLOGY}
    mid = {fsd: name_to_id[disp] for fsd, disp in FSD_NAMES.items()}
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "vocabulary.csv").write_text("".join(f"{i},{n},{mid[n]}\n" for i, n in enumerate(FSD_NAMES)))

    def row(fname, labels, split=None):
        mids = ",".join(mid[x] for x in labels.split(","))
        return f'{fname},"{labels}","{mids}"' + (f",{split}" if split else "") + "\n"

    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "".join(row(*r) for r in DEV_ROWS))
    (gt / "eval.csv").write_text("fname,labels,mids\n" + "".join(row(*r) for r in EVAL_ROWS))
    for k, (fname, _, _) in enumerate(DEV_ROWS):
        _write(root / "FSD50K.dev_audio" / f"{fname}.wav", 200 + 50 * k, sr=44100)
    for k, (fname, _) in enumerate(EVAL_ROWS):
        _write(root / "FSD50K.eval_audio" / f"{fname}.wav", 300 + 50 * k, sr=44100)
    if ontology:
        _ontology_json(root / "ontology.json")
    return root


@pytest.fixture()
def fsd50k(tmp_path):
    return make_fsd50k(tmp_path / "FSD50K")


def test_fsd50k_labels_splits_and_music_mask(fsd50k):
    clips = od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, progress=False)
    assert clips.clip_ids == [r[0] for r in DEV_ROWS]
    assert clips.audio.shape == (6, 8000) and clips.audio.dtype == np.float32
    assert list(clips.split) == ["train"] * 4 + ["val"] * 2
    assert clips.class_names[:4] == ["Music", "Musical instrument", "Guitar", "Electric guitar"]   # ontology names
    assert clips.manifest["class_ids"][3] == "/m/02sgy"
    music = {n for n, m in zip(clips.class_names, clips.music_classes) if m}
    assert music == {"Music", "Musical instrument", "Guitar", "Electric guitar", "Singing", "Male singing", "Chant"}
    assert {n for n, m in zip(clips.class_names, clips.speech_classes) if m} == {"Speech"}
    assert clips.labels[0, clips.class_names.index("Bark")] and clips.labels[0].sum() == 3
    assert (clips.manifest["listed"], clips.manifest["loaded"], clips.manifest["missing"],
            clips.manifest["corrupt"]) == (6, 6, 0, 0)
    ev = od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, split="eval", progress=False)
    assert ev.clip_ids == ["201", "202"] and list(ev.split) == ["test", "test"]
    assert od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, split="val", progress=False).clip_ids == ["105", "106"]
    assert len(od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, split="all", progress=False)) == 8


def test_fsd50k_no_music_drops_music_subtree_and_singing(fsd50k):
    full = od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, progress=False)
    nm = od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, no_music=True, progress=False)
    # 102 guitar (Music subtree), 103 male singing, 105 chant (singing names outside the subtree)
    assert nm.clip_ids == ["101", "104", "106"]
    assert nm.manifest["dropped_music"] == 3 and nm.manifest["listed"] == 3    # dropped clips are not read
    assert nm.music_label_count.sum() == 0
    assert training_variant(full, "without_music").clip_ids == nm.clip_ids     # the AudioSet path's condition
    assert nm.manifest["hash"] != full.manifest["hash"]


@pytest.mark.needs_data
def test_fsd50k_with_the_real_audioset_ontology(tmp_path, pytestconfig):
    meta = DataRoots.from_config(pytestconfig).get("audioset_meta")
    if meta is None or not (meta / "ontology.json").is_file():
        pytest.skip("AudioSet ontology.json not found (../shared/data/audioset or --audioset-meta)")
    from stimuli.loaders import load_ontology

    onto = load_ontology(meta / "ontology.json")
    by_name = {}
    for cid, e in onto.items():
        by_name.setdefault(e["name"], cid)
    root = make_fsd50k(tmp_path / "FSD50K", name_to_id=by_name, ontology=False)
    clips = od.load_fsd50k(root, sr=SR, clip_s=0.5, ontology=meta, no_music=True, progress=False)
    assert clips.clip_ids == ["101", "104", "106"]
    assert clips.manifest["class_ids"][clips.class_names.index("Electric guitar")] == "/m/02sgy"


def test_fsd50k_counts_missing_and_corrupt_clips(fsd50k, caplog):
    (fsd50k / "FSD50K.dev_audio" / "104.wav").unlink()
    _garbage(fsd50k / "FSD50K.dev_audio" / "106.wav")
    with caplog.at_level(logging.WARNING, logger="mec.open_data"):
        clips = od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, progress=False)
    m = clips.manifest
    assert (m["listed"], m["loaded"], m["missing"], m["corrupt"]) == (6, 4, 1, 1)
    assert m["missing_files"] == ["FSD50K.dev_audio/104.wav"]
    assert m["corrupt_files"][0]["file"] == "FSD50K.dev_audio/106.wav"
    assert clips.clip_ids == ["101", "102", "103", "105"]
    assert any("skipped 2 of 6" in r.getMessage() for r in caplog.records)


def test_fsd50k_with_nothing_readable_raises(fsd50k):
    for f in (fsd50k / "FSD50K.eval_audio").iterdir():
        _garbage(f)
    with pytest.raises(UserError) as e:
        od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, split="eval", progress=False)
    _one_line_error(e, "none of the 2", "2 corrupt", "zenodo.org")


def test_fsd50k_missing_root_metadata_ontology_and_wrong_layout(tmp_path, fsd50k):
    with pytest.raises(UserError) as e:
        od.load_fsd50k(tmp_path / "nowhere", progress=False)
    _one_line_error(e, "nowhere", "does not exist", "https://zenodo.org/records/4060432")
    (fsd50k / "FSD50K.ground_truth" / "eval.csv").unlink()
    with pytest.raises(UserError) as e:
        od.load_fsd50k(fsd50k, split="eval", progress=False)
    _one_line_error(e, "eval.csv", "does not exist", "zenodo.org")
    (fsd50k / "FSD50K.dev_audio").rename(fsd50k / "dev_audio")            # unpacked under another name
    with pytest.raises(UserError) as e:
        od.load_fsd50k(fsd50k, progress=False)
    _one_line_error(e, "no FSD50K.dev_audio/ folder", "dev_audio/", "<fname>.wav")
    (fsd50k / "dev_audio").rename(fsd50k / "FSD50K.dev_audio")
    (fsd50k / "ontology.json").unlink()
    with pytest.raises(UserError) as e:
        od.load_fsd50k(fsd50k, progress=False)
    _one_line_error(e, "ontology.json", "audioset")
    with pytest.raises(UserError, match="unknown FSD50K split"):
        od.load_fsd50k(fsd50k, split="training", progress=False)


def test_fsd50k_bad_ground_truth_is_one_line(fsd50k):
    gt = fsd50k / "FSD50K.ground_truth" / "dev.csv"
    gt.write_text(gt.read_text().replace("fname,labels", "name,labels"))
    with pytest.raises(UserError) as e:
        od.load_fsd50k(fsd50k, progress=False)
    _one_line_error(e, "dev.csv", "fname,labels,mids,split")
    gt.write_text('fname,labels,mids,split\n1,"X","/m/unknown",train\n')
    with pytest.raises(UserError) as e:
        od.load_fsd50k(fsd50k, progress=False)
    _one_line_error(e, "/m/unknown", "vocabulary.csv")


def test_fsd50k_manifest_follows_content_not_location(tmp_path, fsd50k):
    h = od.load_fsd50k(fsd50k, sr=SR, clip_s=0.5, progress=False).manifest
    moved = tmp_path / "elsewhere" / "copy_of_fsd"
    shutil.move(str(fsd50k), str(moved))
    h_moved = od.load_fsd50k(moved, sr=SR, clip_s=0.5, progress=False).manifest
    assert h_moved["hash"] == h["hash"] and h_moved["root"] != h["root"]
    _write(moved / "FSD50K.dev_audio" / "103.wav", 999.0, sr=44100)                # same size, new content
    assert od.load_fsd50k(moved, sr=SR, clip_s=0.5, progress=False).manifest["hash"] != h["hash"]
    labels = moved / "FSD50K.ground_truth" / "dev.csv"
    before = od.load_fsd50k(moved, sr=SR, clip_s=0.5, progress=False).manifest["hash"]
    labels.write_text(labels.read_text().replace(",val\n", ",train\n", 1))
    assert od.load_fsd50k(moved, sr=SR, clip_s=0.5, progress=False).manifest["hash"] != before
    assert od.load_fsd50k(moved, sr=8000, clip_s=0.5, progress=False).manifest["hash"] != before


# =============================================================================================
# ESC-50
# =============================================================================================
ESC_ROWS = [("1-100032-A-0.wav", 1, 0, "dog", "True", "100032", "A"),
            ("1-100038-A-14.wav", 1, 14, "chirping_birds", "False", "100038", "A"),
            ("2-102414-B-0.wav", 2, 0, "dog", "True", "102414", "B"),
            ("5-9032-A-41.wav", 5, 41, "chainsaw", "False", "9032", "A")]


@pytest.fixture()
def esc50(tmp_path):
    root = tmp_path / "ESC-50-master"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n"
                                             + "".join(",".join(map(str, r)) + "\n" for r in ESC_ROWS))
    for k, r in enumerate(ESC_ROWS):
        _write(root / "audio" / r[0], 300 + 100 * k, sr=44100)
    return root


def test_esc50_happy_path_and_folds(esc50):
    clips = od.load_esc50(esc50.parent, sr=SR, clip_s=0.5, progress=False)     # the parent of ESC-50-master/
    assert clips.clip_ids == ["1-100032-A-0", "1-100038-A-14", "2-102414-B-0", "5-9032-A-41"]
    assert clips.class_names == ["dog", "chirping_birds", "chainsaw"]          # target order
    assert list(clips.categories) == ["dog", "chirping_birds", "dog", "chainsaw"]
    assert not clips.music_classes.any() and not clips.speech_classes.any()
    assert clips.manifest["fold"] == [1, 1, 2, 5] and clips.manifest["esc10"] == [True, False, True, False]
    np.testing.assert_array_equal(clips.labels.sum(1), 1)
    assert od.load_esc50(esc50, sr=SR, clip_s=0.5, folds=[5], progress=False).clip_ids == ["5-9032-A-41"]


def test_esc50_missing_corrupt_and_layout_errors(tmp_path, esc50, caplog):
    (esc50 / "audio" / ESC_ROWS[1][0]).unlink()
    _garbage(esc50 / "audio" / ESC_ROWS[2][0])
    with caplog.at_level(logging.WARNING, logger="mec.open_data"):
        clips = od.load_esc50(esc50, sr=SR, clip_s=0.5, progress=False)
    assert (clips.manifest["missing"], clips.manifest["corrupt"], len(clips)) == (1, 1, 2)
    assert clips.manifest["missing_files"] == [f"audio/{ESC_ROWS[1][0]}"]
    assert "ESC-50: skipped 2 of 4" in caplog.text
    with pytest.raises(UserError) as e:
        od.load_esc50(tmp_path / "absent")
    _one_line_error(e, "absent", "github.com/karolpiczak/ESC-50")
    (esc50 / "audio").rename(esc50 / "wav")
    with pytest.raises(UserError) as e:
        od.load_esc50(esc50)
    _one_line_error(e, "meta/esc50.csv", "no audio/ folder", "wav/")
    (esc50 / "meta" / "esc50.csv").unlink()
    with pytest.raises(UserError) as e:
        od.load_esc50(esc50)
    _one_line_error(e, "esc50.csv", "does not exist", "github.com/karolpiczak/ESC-50")


# =============================================================================================
# LibriSpeech
# =============================================================================================
UTTS = {"84/121123": ["0000", "0001", "0002"], "174/50561": ["0000"]}


@pytest.fixture()
def librispeech(tmp_path):
    root = tmp_path / "LibriSpeech"
    sub = root / "dev-clean"
    for k, (sc, utts) in enumerate(UTTS.items()):
        spk, ch = sc.split("/")
        lines = []
        for j, u in enumerate(utts):
            _write(sub / spk / ch / f"{spk}-{ch}-{u}.flac", 150 + 40 * k + 10 * j, dur_s=0.3)
            lines.append(f"{spk}-{ch}-{u} WORDS OF UTTERANCE {u}")
        (sub / spk / ch / f"{spk}-{ch}.trans.txt").write_text("\n".join(lines) + "\n")
    _write(sub / "84" / "121123" / "84-121123-0099.flac", 500)                  # no transcript line
    (root / "SPEAKERS.TXT").write_text("; ID  |SEX| SUBSET |MINUTES| NAME\n84 | F | dev-clean | 8.02 | Christie\n")
    return root


def test_librispeech_happy_path_draw_and_split(librispeech):
    clips = od.load_librispeech(librispeech.parent, sr=SR, clip_s=0.5, progress=False)
    assert clips.clip_ids == ["174-50561-0000", "84-121123-0000", "84-121123-0001", "84-121123-0002"]
    assert list(clips.categories) == ["174", "84", "84", "84"] and set(clips.split) == {"val"}
    assert clips.class_names == ["Speech"] and clips.speech_classes.all() and clips.labels.all()
    assert clips.manifest["transcripts"][1] == "WORDS OF UTTERANCE 0000" and clips.manifest["unlisted"] == 1
    a = od.load_librispeech(librispeech, sr=SR, clip_s=0.5, max_clips=2, seed=3, progress=False)
    b = od.load_librispeech(librispeech, sr=SR, clip_s=0.5, max_clips=2, seed=3, progress=False)
    assert a.clip_ids == b.clip_ids and len(a) == 2 and a.manifest["hash"] == b.manifest["hash"]
    assert a.manifest["hash"] != clips.manifest["hash"]


def test_librispeech_missing_corrupt_and_layout_errors(tmp_path, librispeech):
    sub = librispeech / "dev-clean"
    (sub / "84" / "121123" / "84-121123-0001.flac").unlink()
    _garbage(sub / "84" / "121123" / "84-121123-0002.flac")
    clips = od.load_librispeech(librispeech, sr=SR, clip_s=0.5, progress=False)
    assert (clips.manifest["missing"], clips.manifest["corrupt"], len(clips)) == (1, 1, 2)
    with pytest.raises(UserError) as e:
        od.load_librispeech(tmp_path / "absent")
    _one_line_error(e, "absent", "openslr.org/12")
    with pytest.raises(UserError) as e:
        od.load_librispeech(librispeech, subset="train-clean-100")
    _one_line_error(e, "train-clean-100", "dev-clean", "openslr.org/12")
    for t in sub.rglob("*.trans.txt"):
        t.unlink()
    with pytest.raises(UserError) as e:
        od.load_librispeech(librispeech)
    _one_line_error(e, "trans.txt", "openslr.org/12")
    sub.rename(librispeech / "flacs")
    with pytest.raises(UserError) as e:
        od.load_librispeech(librispeech)
    _one_line_error(e, "no <subset>/ folder", "flacs/", "dev-clean/<speaker>/<chapter>/*.flac")


# =============================================================================================
# FMA
# =============================================================================================
FMA_TRACKS = [(2, "small", "training", "Hip-Hop"), (5, "small", "training", "Hip-Hop"), (10, "small", "test", "Pop"),
              (140, "small", "validation", "Folk"), (3, "medium", "training", "Hip-Hop"), (1001, "large", "test", "")]


def _fma_tracks_csv(path):
    """tracks.csv as FMA writes it (pandas, two-level columns, index name row)."""
    cols = [("album", "title"), ("artist", "name"), ("set", "split"), ("set", "subset"), ("track", "genre_top"),
            ("track", "title")]
    lines = ["," + ",".join(c[0] for c in cols), "," + ",".join(c[1] for c in cols), "track_id" + "," * len(cols)]
    for tid, subset, split, genre in FMA_TRACKS:
        lines.append(f'{tid},"Album, {tid}",Artist {tid},{split},{subset},{genre},Title {tid}')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def fma(tmp_path):
    root = tmp_path / "fma"
    _fma_tracks_csv(root / "fma_metadata" / "tracks.csv")
    for k, (tid, subset, _, _) in enumerate(FMA_TRACKS):
        for sub in {"small": ("small", "medium"), "medium": ("medium",)}.get(subset, ()):   # no fma_large/
            _write(od.fma_audio_path(root / f"fma_{sub}", tid), 220 + 30 * k, dur_s=0.5, format="MP3")
    return root


def test_fma_tracks_csv_parses_as_pandas_does(fma):
    import pandas as pd

    tracks = pd.read_csv(fma / "fma_metadata" / "tracks.csv", index_col=0, header=[0, 1])
    ours = od.read_fma_tracks(fma / "fma_metadata" / "tracks.csv")
    assert [r["track_id"] for r in ours] == list(tracks.index)
    assert [r["subset"] for r in ours] == list(tracks["set", "subset"])
    assert [r["genre_top"] for r in ours if r["genre_top"]] == list(tracks["track", "genre_top"].dropna())


def test_fma_subset_split_labels_and_errors(tmp_path, fma):
    small = od.load_fma(fma, "small", sr=SR, clip_s=0.5, progress=False)
    assert small.clip_ids == ["000002", "000005", "000010", "000140"]
    assert small.class_names == ["Folk", "Hip-Hop", "Pop"] and small.music_classes.all()
    assert list(small.split) == ["train", "train", "test", "val"]
    assert np.abs(small.audio).max() > 0.1                                    # the MP3s decoded
    assert od.load_fma(fma, "small", sr=SR, clip_s=0.5, split="test", progress=False).clip_ids == ["000010"]
    medium = od.load_fma(fma, "medium", sr=SR, clip_s=0.5, progress=False)
    assert len(medium) == 5 and "000003" in medium.clip_ids                   # medium includes small
    _garbage(od.fma_audio_path(fma / "fma_small", 5))
    od.fma_audio_path(fma / "fma_small", 10).unlink()
    clips = od.load_fma(fma, "small", sr=SR, clip_s=0.5, progress=False)
    assert (clips.manifest["missing"], clips.manifest["corrupt"], clips.clip_ids) == (1, 1, ["000002", "000140"])
    assert clips.manifest["missing_files"] == ["fma_small/000/000010.mp3"]
    with pytest.raises(UserError) as e:
        od.load_fma(tmp_path / "absent")
    _one_line_error(e, "absent", "github.com/mdeff/fma")
    with pytest.raises(UserError) as e:
        od.load_fma(fma, "large")
    _one_line_error(e, "no fma_large/ folder", "fma_large/<NNN>/<NNNNNN>.mp3")
    (fma / "fma_metadata" / "tracks.csv").unlink()
    with pytest.raises(UserError) as e:
        od.load_fma(fma)
    _one_line_error(e, "tracks.csv", "does not exist", "github.com/mdeff/fma")


# =============================================================================================
# GTZAN
# =============================================================================================
def test_gtzan_kaggle_layout_with_its_csv(tmp_path):
    data = tmp_path / "gtzan" / "Data"
    rows = []
    for k, g in enumerate(("blues", "jazz", "rock")):
        for n in range(2):
            _write(data / "genres_original" / g / f"{g}.{n:05d}.wav", 200 + 60 * k + 7 * n, sr=22050)
            rows.append(f"{g}.{n:05d}.wav,661794,0.35,{g}")
    rows.append("jazz.00054.wav,661794,0.35,jazz")                              # listed, absent (as on Kaggle)
    _garbage(data / "genres_original" / "rock" / "rock.00001.wav")
    (data / "features_30_sec.csv").write_text("filename,length,chroma_stft_mean,label\n" + "\n".join(rows) + "\n")
    clips = od.load_gtzan(tmp_path / "gtzan", sr=SR, clip_s=0.5, progress=False)
    assert clips.clip_ids == ["blues.00000", "blues.00001", "jazz.00000", "jazz.00001", "rock.00000"]
    assert clips.class_names == list(od.GTZAN_GENRES) and clips.music_classes.all()
    assert list(clips.categories[:3]) == ["blues", "blues", "jazz"]
    assert (clips.manifest["missing"], clips.manifest["corrupt"]) == (1, 1)
    assert clips.manifest["listing"] == "Data/features_30_sec.csv"


def test_gtzan_original_layout_counts_against_the_canonical_list(tmp_path):
    for k, g in enumerate(od.GTZAN_GENRES):
        _write(tmp_path / "genres" / g / f"{g}.00000.au", 200 + 20 * k, sr=22050, format="AU", subtype="PCM_16")
    clips = od.load_gtzan(tmp_path, sr=SR, clip_s=0.5, progress=False)
    assert len(clips) == 10 and clips.manifest["listed"] == 1000 and clips.manifest["missing"] == 990
    assert clips.labels.sum(0).tolist() == [1] * 10


def test_gtzan_missing_and_wrong_layout(tmp_path):
    with pytest.raises(UserError) as e:
        od.load_gtzan(tmp_path / "absent")
    _one_line_error(e, "absent", "kaggle.com")
    _write(tmp_path / "flat" / "blues.00000.wav")
    with pytest.raises(UserError) as e:
        od.load_gtzan(tmp_path / "flat")
    _one_line_error(e, "no genres_original/", "blues.00000.wav", "genres_original/<genre>/<genre>.000NN.wav")


# =============================================================================================
# MAESTRO (MIDI + audio) -> the Grasse & Tata paper tier's *.npz excerpts
# =============================================================================================
TPQ, TEMPO_US = 384, 500000                                   # 120 qpm: 768 ticks per second


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(notes=(), pedal=(), tempo_us=TEMPO_US) -> bytes:
    """A format-1 MIDI file like MAESTRO's: track 0 tempo, track 1 notes (note-off as velocity 0) and CC 64.

    notes: (onset_s, offset_s, pitch, velocity); pedal: (time_s, value)."""
    def tick(s):
        return int(round(s * 1e6 / tempo_us * TPQ))

    ev = [(tick(on), 1, bytes([0x90, p, v])) for on, _, p, v in notes]
    ev += [(tick(off), 0, bytes([0x90, p, 0])) for _, off, p, _ in notes]
    ev += [(tick(t), 0, bytes([0xB0, 64, v])) for t, v in pedal]
    body, last = b"", 0
    for t, _, msg in sorted(ev, key=lambda e: (e[0], e[1])):
        body += _vlq(t - last) + msg
        last = t
    t0 = _vlq(0) + b"\xff\x51\x03" + tempo_us.to_bytes(3, "big") + _vlq(0) + b"\xff\x2f\x00"
    body += _vlq(0) + b"\xff\x2f\x00"

    def chunk(tag, data):
        return tag + struct.pack(">I", len(data)) + data

    return chunk(b"MThd", struct.pack(">HHH", 1, 2, TPQ)) + chunk(b"MTrk", t0) + chunk(b"MTrk", body)


MAESTRO_PIECES = [("train", "MIDI-Unprocessed_01_R1_2018_wav--1", [(0.125, 0.625, 60, 70), (1.25, 1.75, 64, 60)]),
                  ("validation", "MIDI-Unprocessed_02_R1_2018_wav--2", [(0.0, 2.4, 67, 50)]),
                  ("test", "MIDI-Unprocessed_03_R1_2018_wav--3", [(0.5, 0.9, 72, 80), (1.5, 2.2, 48, 80)])]


@pytest.fixture()
def maestro(tmp_path):
    root = tmp_path / "maestro-v3.0.0"
    lines = ["canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration"]
    for k, (split, name, notes) in enumerate(MAESTRO_PIECES):
        (root / "2018").mkdir(parents=True, exist_ok=True)
        (root / "2018" / f"{name}.midi").write_bytes(midi_bytes(notes))
        _write(root / "2018" / f"{name}.wav", 262 + 50 * k, dur_s=2.5, sr=44100)
        lines.append(f'Composer {k},"Piece {k}, Op. 1",{split},2018,2018/{name}.midi,2018/{name}.wav,2.5')
    (root / "maestro-v3.0.0.csv").write_text("\n".join(lines) + "\n")
    return root


def test_read_midi_notes_applies_tempo_and_sustain(tmp_path):
    f = tmp_path / "p.midi"
    f.write_bytes(midi_bytes([(0.0, 0.5, 60, 80), (0.0, 0.3, 62, 80), (0.6, 0.8, 62, 70), (1.5, 1.75, 64, 60)],
                             pedal=[(0.2, 127), (1.0, 0)]))
    plain = od.read_midi_notes(f, sustain=False)
    np.testing.assert_allclose(plain.onset_s, [0.0, 0.0, 0.6, 1.5], atol=2e-3)
    np.testing.assert_allclose(plain.offset_s, [0.5, 0.3, 0.8, 1.75], atol=2e-3)
    ped = od.read_midi_notes(f, sustain=True)
    got = sorted(zip(ped.onset_s.round(3), ped.midi, ped.offset_s.round(3)))
    # 60 held to the pedal release; 62 held until it is struck again at 0.6, then held to the release
    assert got == [(0.0, 60, 1.0), (0.0, 62, 0.6), (0.6, 62, 1.0), (1.5, 64, 1.75)]
    assert ped.velocity.tolist() == [80, 80, 70, 60]
    slow = tmp_path / "slow.midi"
    slow.write_bytes(midi_bytes([(0.5, 1.0, 60, 80)], tempo_us=1_000_000))      # times scale with the tempo
    np.testing.assert_allclose(od.read_midi_notes(slow).onset_s, [0.5], atol=2e-3)
    _garbage(tmp_path / "bad.midi")
    with pytest.raises(UserError, match="bad.midi"):
        od.read_midi_notes(tmp_path / "bad.midi")


def test_maestro_to_transcription_npz(tmp_path, maestro):
    from claims.grasse2026._conditions import _transcription_split

    out = tmp_path / "npz"
    rep = od.write_transcription_npz(maestro.parent, out, excerpt_s=1.0, frame_hop_s=0.01)
    assert rep["tracks"] == 3 and (rep["missing"], rep["corrupt"]) == (0, 0)
    assert rep["written"][0] == "1_train/MIDI-Unprocessed_01_R1_2018_wav--1_000.npz" and len(rep["written"]) == 6
    assert rep["written"][-1].startswith("3_test/")
    ex = np.load(out / rep["written"][1])                                       # train piece, second second
    assert ex["audio"].dtype == np.float32 and ex["audio"].shape == (16000,)
    assert ex["piano_roll"].dtype == bool and ex["piano_roll"].shape == (100, 128)
    np.testing.assert_allclose(ex["frame_times_s"], np.arange(100) * 0.01)
    on = np.flatnonzero(ex["piano_roll"][:, 64])                                # note 64 from 1.25 s to 1.75 s
    assert (on.min(), on.max()) == (25, 74) and ex["piano_roll"].sum() == 50
    # the paper tier reads them, and holds out the test split (the last files by path)
    train, held = _transcription_split(out, {"heldout_tracks": 2, "music_tracks": 10})
    assert [f.parent.name for f in held] == ["3_test", "3_test"] and len(train) == 4
    # deterministic bytes: the same conversion gives the same output manifest
    again = od.write_transcription_npz(maestro, out, excerpt_s=1.0, frame_hop_s=0.01)
    assert again["output"]["hash"] == rep["output"]["hash"] and again["source"]["hash"] == rep["source"]["hash"]
    assert json.loads((out / "conversion.json").read_text())["excerpts"] == 6
    with pytest.raises(UserError) as e:                                          # another conversion into it
        od.write_transcription_npz(maestro, out, excerpt_s=0.5)
    _one_line_error(e, "already holds 6", "new or empty")
    short = od.write_transcription_npz(maestro, tmp_path / "one", splits=("test",), excerpt_s=1.0,
                                       max_excerpts_per_track=1)
    assert short["written"] == ["3_test/MIDI-Unprocessed_03_R1_2018_wav--3_000.npz"]


def test_maestro_json_metadata_and_source_manifest(tmp_path, maestro):
    rows = [ln.split(",") for ln in (maestro / "maestro-v3.0.0.csv").read_text().splitlines()[1:]]
    cols = {"canonical_composer": {}, "canonical_title": {}, "split": {}, "year": {}, "midi_filename": {},
            "audio_filename": {}, "duration": {}}
    for i, r in enumerate(rows):
        split, midi, audio = r[3], r[5], r[6]
        for c, v in zip(cols, [f"C{i}", f"T{i}", split, 2018, midi, audio, 2.5]):
            cols[c][str(i)] = v
    h = od.write_transcription_npz(maestro, tmp_path / "a", excerpt_s=1.0)["source"]["hash"]
    (maestro / "maestro-v3.0.0.csv").unlink()
    (maestro / "maestro-v3.0.0.json").write_text(json.dumps(cols))
    rep = od.write_transcription_npz(maestro, tmp_path / "b", excerpt_s=1.0)
    assert rep["tracks"] == 3 and rep["source"]["hash"] != h                    # the metadata file is keyed too


def test_maestro_missing_corrupt_and_layout(tmp_path, maestro, caplog):
    name = MAESTRO_PIECES[0][1]
    (maestro / "2018" / f"{name}.wav").unlink()
    _garbage(maestro / "2018" / f"{MAESTRO_PIECES[1][1]}.midi")
    with caplog.at_level(logging.WARNING, logger="mec.open_data"):
        rep = od.write_transcription_npz(maestro, tmp_path / "out", excerpt_s=1.0)
    assert (rep["tracks"], rep["missing"], rep["corrupt"]) == (1, 1, 1)
    assert rep["missing_files"] == [f"2018/{name}.wav"]
    assert "midi" in rep["corrupt_files"][0]["file"] and "MAESTRO: skipped 2 of 3" in caplog.text
    with pytest.raises(UserError) as e:
        od.write_transcription_npz(tmp_path / "absent", tmp_path / "o2")
    _one_line_error(e, "absent", "magenta.tensorflow.org/datasets/maestro")
    (maestro / "2018").rename(maestro / "audio")
    with pytest.raises(UserError) as e:
        od.write_transcription_npz(maestro, tmp_path / "o3")
    _one_line_error(e, "none of its year folders", "2018/", "<year>/<name>.wav")
    (maestro / "maestro-v3.0.0.csv").unlink()
    with pytest.raises(UserError) as e:
        od.write_transcription_npz(maestro, tmp_path / "o4")
    _one_line_error(e, "maestro-v3.0.0.csv", "does not exist", "magenta.tensorflow.org")


# =============================================================================================
# GuitarSet (JAMS): notes for transcription, chords for Kong et al.
# =============================================================================================
def _jams(notes_by_string, instructed, performed, dur_s=2.0):
    def ann(namespace, data, source="0"):
        return {"annotation_metadata": {"curator": {"name": "", "email": ""}, "annotator": {}, "version": "",
                                        "corpus": "", "annotation_tools": "", "annotation_rules": "",
                                        "validation": "", "data_source": source},
                "namespace": namespace, "data": data, "sandbox": {}, "time": 0, "duration": dur_s}

    def obs(items):
        return [{"time": t, "duration": d, "value": v, "confidence": None} for t, d, v in items]

    anns = []
    for s in range(6):
        anns.append(ann("pitch_contour", {"time": [], "duration": [], "value": [], "confidence": []}, str(s)))
        anns.append(ann("note_midi", obs(notes_by_string.get(s, [])), str(s)))
    anns += [ann("chord", obs(instructed)), ann("chord", obs(performed)),
             ann("key_mode", obs([(0, dur_s, "G:major")]))]
    return {"annotations": anns, "file_metadata": {"title": "", "duration": dur_s}, "sandbox": {}}


GS = {"00_BN1-129-Eb_comp": ({0: [(0.1, 0.5, 40.03)], 2: [(0.6, 0.8, 50.96)]},
                             [(0.0, 1.0, "Eb:maj"), (1.0, 1.0, "C:min7")], [(0.0, 1.2, "Eb:maj"), (1.2, 0.8, "C:min")]),
      "04_Rock1-130-A_solo": ({5: [(0.0, 1.0, 69.0)]}, [(0.0, 2.0, "A:7")], [(0.0, 2.0, "A:7")]),
      "05_SS2-107-Ab_comp": ({1: [(0.2, 1.0, 44.0)]}, [(0.0, 2.0, "Ab:maj")], [(0.0, 1.0, "Ab:maj"), (1.0, 1.0, "N")])}


@pytest.fixture()
def guitarset(tmp_path):
    root = tmp_path / "GuitarSet"
    (root / "annotation").mkdir(parents=True)
    for k, (tid, (notes, ins, perf)) in enumerate(GS.items()):
        (root / "annotation" / f"{tid}.jams").write_text(json.dumps(_jams(notes, ins, perf)))
        _write(root / "audio_mono-mic" / f"{tid}_mic.wav", 110 * (k + 1), dur_s=2.0, sr=44100)
    return root


def test_guitarset_chords_and_notes(tmp_path, guitarset):
    ct = od.load_guitarset_chords(guitarset, sr=SR, clip_s=1.5, progress=False)
    assert ct.track_ids == list(GS) and ct.audio.shape == (3, 24000)
    iv, lab = ct.chords[0]
    np.testing.assert_allclose(iv, [[0.0, 1.2], [1.2, 1.5]])                   # cut at clip_s
    assert lab == ["Eb:maj", "C:min"]
    frames = ct.frame_labels(0.5)
    assert frames.shape == (3, 3) and frames[0].tolist() == ["Eb:maj", "Eb:maj", "Eb:maj"]
    assert od.load_guitarset_chords(guitarset, sr=SR, which="instructed", progress=False).chords[0][1] == \
        ["Eb:maj", "C:min7"]
    notes = od.guitarset_notes(guitarset / "annotation" / "00_BN1-129-Eb_comp.jams")
    assert notes.midi.tolist() == [40, 51] and notes.part.tolist() == [0, 2]
    rep = od.write_transcription_npz(guitarset, tmp_path / "npz", dataset="guitarset", excerpt_s=1.0)
    assert [w.split("/")[0] for w in rep["written"]] == ["1_train"] * 2 + ["2_validation"] * 2 + ["3_test"] * 2
    roll = np.load(tmp_path / "npz" / rep["written"][0])["piano_roll"]
    assert np.flatnonzero(roll[:, 40]).tolist() == list(range(10, 60))


def test_guitarset_missing_corrupt_and_layout(tmp_path, guitarset):
    (guitarset / "audio_mono-mic" / "04_Rock1-130-A_solo_mic.wav").unlink()
    (guitarset / "annotation" / "05_SS2-107-Ab_comp.jams").write_text("{not json")
    ct = od.load_guitarset_chords(guitarset, sr=SR, progress=False)
    assert ct.track_ids == ["00_BN1-129-Eb_comp"]
    assert (ct.manifest["missing"], ct.manifest["corrupt"]) == (1, 1)
    assert ct.manifest["missing_files"] == ["audio_mono-mic/04_Rock1-130-A_solo_mic.wav"]
    with pytest.raises(UserError) as e:
        od.load_guitarset_chords(tmp_path / "absent")
    _one_line_error(e, "absent", "zenodo.org/records/3371780")
    (guitarset / "audio_mono-mic").rename(guitarset / "audio")
    with pytest.raises(UserError) as e:
        od.load_guitarset_chords(guitarset)
    _one_line_error(e, "no audio_mono-mic/ folder", "audio/", "<id>_mic.wav")
    shutil.rmtree(guitarset / "annotation")
    with pytest.raises(UserError) as e:
        od.load_guitarset_chords(guitarset)
    _one_line_error(e, "annotation", ".jams", "zenodo.org")


# =============================================================================================
# .lab chord annotations (Isophonics layout) paired with audio
# =============================================================================================
BEATLES = "The Beatles/01_-_Please_Please_Me"


@pytest.fixture()
def chordlab(tmp_path):
    root = tmp_path / "beatles"
    labs = {"01_-_I_Saw_Her_Standing_There": "0.000000 0.400000 N\n0.400000 1.100000 E\n1.100000\t2.000000\tA:7/3\n",
            "02_-_Misery": "0.0 1.0 C\n1.0 2.0 G:maj\n",
            "03_-_Anna_(Go_To_Him)": "0.0 1.0 D\n"}
    for k, (name, text) in enumerate(labs.items()):
        (root / "chordlab" / BEATLES).mkdir(parents=True, exist_ok=True)
        (root / "chordlab" / BEATLES / f"{name}.lab").write_text(text)
        if k < 2:
            _write(root / "audio" / BEATLES / f"{name}.flac", 330 + 40 * k, dur_s=1.5 + k * 0.5)
    return root                                                  # track 03 has no audio


def test_lab_chords_pair_by_path_and_stem(chordlab):
    ct = od.load_lab_chords(chordlab, sr=SR, progress=False)
    assert ct.track_ids == [f"{BEATLES}/01_-_I_Saw_Her_Standing_There", f"{BEATLES}/02_-_Misery"]
    assert ct.audio.shape == (2, 32000)                         # padded to the longest (2 s)
    iv, lab = ct.chords[0]
    assert lab == ["N", "E", "A:7/3"] and iv[-1].tolist() == [1.1, 2.0]
    assert (ct.manifest["missing"], ct.manifest["corrupt"]) == (1, 0)
    assert ct.manifest["missing_files"] == [f"audio/{BEATLES}/03_-_Anna_(Go_To_Him).wav"]
    cut = od.load_lab_chords(chordlab, sr=SR, clip_s=1.0, progress=False)
    assert cut.chords[0][1] == ["N", "E"] and cut.chords[0][0][-1].tolist() == [0.4, 1.0]
    assert cut.manifest["hash"] != ct.manifest["hash"]


def test_manifests_of_other_loaders_follow_content_not_location(tmp_path, esc50, chordlab):
    before = (od.load_esc50(esc50, sr=SR, clip_s=0.5, progress=False).manifest["hash"],
              od.load_lab_chords(chordlab, sr=SR, progress=False).manifest["hash"])
    shutil.move(str(esc50), str(tmp_path / "moved_esc"))
    shutil.move(str(chordlab), str(tmp_path / "moved_chords"))
    after = (od.load_esc50(tmp_path / "moved_esc", sr=SR, clip_s=0.5, progress=False).manifest["hash"],
             od.load_lab_chords(tmp_path / "moved_chords", sr=SR, progress=False).manifest["hash"])
    assert after == before
    lab = tmp_path / "moved_chords" / "chordlab" / BEATLES / "02_-_Misery.lab"
    lab.write_text(lab.read_text().replace("G:maj", "G:min"))
    assert od.load_lab_chords(tmp_path / "moved_chords", sr=SR, progress=False).manifest["hash"] != before[1]


def test_lab_chords_bad_labels_and_layout(tmp_path, chordlab):
    (chordlab / "chordlab" / BEATLES / "02_-_Misery.lab").write_text("0.0 1.0 H:maj\n")
    ct = od.load_lab_chords(chordlab, sr=SR, progress=False)
    assert ct.manifest["corrupt"] == 1 and "H:maj" in ct.manifest["corrupt_files"][0]["reason"]
    with pytest.raises(UserError) as e:
        od.read_chord_lab(_garbage(tmp_path / "x.lab"))
    _one_line_error(e, "x.lab")
    (chordlab / "audio").rename(chordlab / "mp3")
    with pytest.raises(UserError) as e:
        od.load_lab_chords(chordlab)
    _one_line_error(e, "no audio/ folder", "mp3/")
    with pytest.raises(UserError) as e:
        od.load_lab_chords(chordlab, annotations="chords")
    _one_line_error(e, "chords", ".lab", "isophonics.net")


# =============================================================================================
# Export, registry and documentation
# =============================================================================================
def test_write_audio_folder_round_trip(tmp_path, chordlab, esc50):
    clips = od.load_esc50(esc50, sr=SR, clip_s=0.25, progress=False)
    files = od.write_audio_folder(clips, tmp_path / "music_audio")
    assert [f.name for f in files] == [f"{c}.flac" for c in clips.clip_ids]
    x, sr = sf.read(files[0], dtype="float32")
    assert sr == SR and np.abs(x - clips.audio[0]).max() < 1e-3


@pytest.mark.parametrize("name", list(od.OPEN_DATASETS))
def test_every_dataset_is_documented_and_names_its_source_when_absent(tmp_path, name):
    spec = od.OPEN_DATASETS[name]
    assert spec.licence and spec.size and spec.used_for and spec.url.startswith("http")
    assert spec.layout.startswith("::") and "<root>" in spec.layout
    with pytest.raises(UserError) as e:
        spec.loader(tmp_path / "not_downloaded")
    _one_line_error(e, "not_downloaded", spec.url)


def test_docs_are_in_sync_with_the_registry():
    assert od.DOCS_PATH.read_text() == od.render_docs(), "run: python -m stimuli.open_data --write"
