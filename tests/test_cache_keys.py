"""Cache entries are keyed by the content of the data they read (issue #18).

Every user-data option that feeds the cache is exercised on small generated folders: a folder with
the same file names and sizes but other sounds is rebuilt and gives other values, an edited labels
file at the same path is rebuilt, a permuted copy is rebuilt, and an unchanged folder is a hit.
"""
import os

import numpy as np
import pytest
import soundfile as sf

from harness.cache import (Cache, content_key, data_used, entry_ref, folder_manifest, generated_manifest)
from harness.errors import UserError

SR = 22050
NAT_CATEGORIES = ("Music", "Music", "Song", "Song", "Mechanical", "Mechanical", "Nature", "EngSpeech")


# ------------------------------------------------------------------------------------------ helpers
def _noise(seed: int, dur_s: float = 0.5, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(dur_s * sr))).astype(np.float32)


def write_wav(path, seed: int, dur_s: float = 0.5, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _noise(seed, dur_s, sr), sr, subtype="PCM_16")


def rewrite_wav(path, seed: int, dur_s: float = 0.5, sr: int = SR) -> None:
    """Another sound of the same length at the same path, written as a later edit would (mtime moves on)."""
    st = path.stat()
    write_wav(path, seed, dur_s, sr)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def make_natsounds(root, seed: int = 0, categories=NAT_CATEGORIES, audio_seeds=None):
    """A stand-in for the 165 natural sounds: ``wav/stimK.wav`` + ``category_labels.csv`` (same format)."""
    root.mkdir(parents=True, exist_ok=True)
    audio_seeds = audio_seeds if audio_seeds is not None else [1000 * seed + k for k in range(len(categories))]
    for k, s in enumerate(audio_seeds):
        write_wav(root / "wav" / f"stim{k}_sound.wav", s)
    (root / "category_labels.csv").write_text("".join(f"stim{k}_sound,{c}\n" for k, c in enumerate(categories)))
    return root


def edit_in_place(path, text: str) -> None:
    """Rewrite a file at the same path (same inode), as a later edit would: its mtime moves on."""
    st = path.stat()
    with open(path, "r+") as f:
        f.seek(0)
        f.write(text)
        f.truncate()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def flip_last_byte(path) -> None:
    """Change a file's content at the same path and size, as a later edit would."""
    b = bytearray(path.read_bytes())
    b[-1] ^= 0xFF
    st = path.stat()
    path.write_bytes(bytes(b))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def outcomes(cache, since: int = 0) -> dict:
    out = {}
    for e in cache.events[since:]:
        out.setdefault(e.namespace, []).append(e.outcome)
    return out


# ------------------------------------------------------------------------------------ the manifest
def test_folder_manifest_hashes_content_not_the_path(tmp_path):
    a = make_natsounds(tmp_path / "a")
    copy = make_natsounds(tmp_path / "elsewhere" / "copy")            # same files, another path
    other = make_natsounds(tmp_path / "b", seed=1)                    # same names and sizes, other sounds
    ma, mc, mo = folder_manifest(a), folder_manifest(copy), folder_manifest(other)
    assert ma["hash"] == mc["hash"] and ma["root"] != mc["root"]
    assert [f[:2] for f in ma["files"]] == [f[:2] for f in mo["files"]]   # same relative paths and sizes
    assert mo["hash"] != ma["hash"]
    assert ma["n_files"] == len(NAT_CATEGORIES) + 1 and ma["bytes"] > 0
    (a / ".DS_Store").write_text("x")                                   # hidden files are not data
    assert folder_manifest(a)["hash"] == ma["hash"]
    assert folder_manifest(a, "wav/*.wav")["n_files"] == len(NAT_CATEGORIES)


def test_folder_manifest_sees_an_edit_at_the_same_path_and_size(tmp_path):
    root = make_natsounds(tmp_path / "a")
    before = folder_manifest(root)["hash"]
    labels = root / "category_labels.csv"
    edit_in_place(labels, labels.read_text().replace("Nature", "Natura"))   # same size
    assert folder_manifest(root)["hash"] != before


def test_a_stat_manifest_is_cheap_and_still_sees_size_or_mtime_changes(tmp_path):
    root = make_natsounds(tmp_path / "a")
    m = folder_manifest(root, content=False)
    assert folder_manifest(root, content=False)["hash"] == m["hash"]
    edit_in_place(root / "category_labels.csv", (root / "category_labels.csv").read_text())
    assert folder_manifest(root, content=False)["hash"] != m["hash"]


def test_a_folder_of_symlinks_is_hashed_by_what_they_point_at(tmp_path):
    """A copy made of links (e.g. the 165 sounds permuted among their names) is hashed by content."""
    real = make_natsounds(tmp_path / "real")
    wavs = sorted((real / "wav").glob("*.wav"))
    for name, order in (("links", wavs), ("permuted", wavs[::-1])):
        (tmp_path / name / "wav").mkdir(parents=True)
        (tmp_path / name / "category_labels.csv").symlink_to(real / "category_labels.csv")
        for dst, src in zip(wavs, order):
            (tmp_path / name / "wav" / dst.name).symlink_to(src)
    m = folder_manifest(real)
    assert folder_manifest(tmp_path / "links")["hash"] == m["hash"]
    assert folder_manifest(tmp_path / "permuted")["hash"] != m["hash"]
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)       # the folder itself a link
    assert folder_manifest(tmp_path / "alias", files=wavs)["n_files"] == len(wavs)


def test_content_key_refuses_paths_and_bare_names(tmp_path):
    m = folder_manifest(make_natsounds(tmp_path / "a"))
    with pytest.raises(ValueError, match="needs the manifest"):
        content_key(stimulus="natsound165")
    with pytest.raises(ValueError, match="looks like a path"):
        content_key(m, root=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="is a path"):
        content_key(m, root=tmp_path / "a")
    with pytest.raises(ValueError, match="not a data manifest"):
        content_key({"name": "natsound165"})
    with pytest.raises(ValueError, match="looks like a path"):
        generated_manifest("corpus", out=str(tmp_path / "x"))


def test_derived_keys_carry_their_parents_and_data(tmp_path):
    a = folder_manifest(make_natsounds(tmp_path / "a"))
    b = folder_manifest(make_natsounds(tmp_path / "b", seed=1))
    g = generated_manifest("corpus-config", n_clips=10, seed=0)
    parent_a, parent_b = content_key(a, g, sr=SR), content_key(b, g, sr=SR)
    child_a = content_key(entry_ref("logmel", parent_a, version="1"), stimulus="natsound165")
    child_b = content_key(entry_ref("logmel", parent_b, version="1"), stimulus="natsound165")
    assert child_a["hash"] != child_b["hash"]                                   # the name alone is not a key
    assert content_key(entry_ref("logmel", parent_a, version="2"), stimulus="natsound165")["hash"] != child_a["hash"]
    assert child_a["data"] == sorted([f"{a['name']}:{a['hash']}", f"corpus-config:{g['hash']}"])


def test_cache_events_record_the_data_manifests(tmp_path):
    cache = Cache(tmp_path / "cache")
    m = folder_manifest(make_natsounds(tmp_path / "nat"), name="natsound165")
    cache.arrays("x", content_key(m), lambda: {"v": np.zeros(3)}, version="1")
    used = data_used(cache.events)
    assert [(u["name"], u["hash"]) for u in used] == [("natsound165", m["hash"])]
    assert used[0]["n_files"] == m["n_files"] and used[0]["root"] == m["root"]


# ------------------------------------------------------------------------ the 165 natural sounds
@pytest.fixture
def corpus_clips(tmp_path):
    """A tiny training corpus from a user folder (``load_folder``), with train and test clips."""
    from stimuli.loaders import load_folder

    root = tmp_path / "corpus"
    rows = []
    for k in range(8):
        write_wav(root / f"c{k}.wav", 50 + k, dur_s=1.0)
        rows.append(f"c{k}.wav,{'Music' if k % 2 else 'Dog'},{'train' if k < 6 else 'test'}\n")
    (root / "labels.csv").write_text("file,labels,split\n" + "".join(rows))
    return load_folder(root, "labels.csv", sr=SR, clip_s=1.0)


def kim(tmp_path, corpus_clips, cache=None):
    from claims.kim2024._conditions import KimConditions, tier_settings

    cond = KimConditions(tier_settings("ci", seeds=1), cache or Cache(tmp_path / "cache"), "cpu")
    cond._clips = corpus_clips
    return cond


def test_natsound_features_follow_the_folder_not_its_name(tmp_path, corpus_clips):
    """The issue's 574-clip folder: features of another folder are never served for the 165 sounds."""
    real = make_natsounds(tmp_path / "natsound165")
    bigger = make_natsounds(tmp_path / "other", seed=2, categories=NAT_CATEGORIES * 2)
    cond = kim(tmp_path, corpus_clips)
    f_real = cond.natsound_features("random_init", 0, real)
    f_big = cond.natsound_features("random_init", 0, bigger)
    assert f_real.shape[0] == len(NAT_CATEGORIES) and f_big.shape[0] == 2 * len(NAT_CATEGORIES)
    assert len(cond.natsound_logmel(bigger)["is_music"]) == f_big.shape[0]


def test_same_size_folder_with_other_sounds_is_rebuilt_and_differs(tmp_path, corpus_clips):
    a = make_natsounds(tmp_path / "a")
    b = make_natsounds(tmp_path / "b", seed=1)                       # same names, sizes and labels
    cond = kim(tmp_path, corpus_clips)
    fa = cond.natsound_features("random_init", 0, a)
    n0 = len(cond.cache.events)
    fb = cond.natsound_features("random_init", 0, b)
    assert outcomes(cond.cache, n0) == {"kim2024-natsound165": ["miss"], "kim2024-features": ["miss"]}
    assert fa.shape == fb.shape and not np.allclose(fa, fb)


def test_unchanged_folder_is_a_hit(tmp_path, corpus_clips):
    a = make_natsounds(tmp_path / "a")
    fa = kim(tmp_path, corpus_clips).natsound_features("random_init", 0, a)
    again = kim(tmp_path, corpus_clips, Cache(tmp_path / "cache"))   # a later run: new process state
    fa2 = again.natsound_features("random_init", 0, a)
    assert outcomes(again.cache) == {"kim2024-features": ["hit"]}
    np.testing.assert_array_equal(fa, fa2)
    copy = make_natsounds(tmp_path / "moved")                         # the same files elsewhere: still a hit
    np.testing.assert_array_equal(again.natsound_features("random_init", 0, copy), fa)
    assert outcomes(again.cache) == {"kim2024-features": ["hit", "hit"]}


def test_edited_labels_at_the_same_path_are_rebuilt(tmp_path, corpus_clips):
    """The issue's stale labels: after editing category_labels.csv the new labels are read."""
    a = make_natsounds(tmp_path / "a")
    cond = kim(tmp_path, corpus_clips)
    assert list(cond.natsound_logmel(a)["categories"]).count("Nature") == 1
    labels = a / "category_labels.csv"
    edit_in_place(labels, labels.read_text().replace("Nature", "Animal"))   # same size
    n0 = len(cond.cache.events)
    ns = cond.natsound_logmel(a)
    assert outcomes(cond.cache, n0) == {"kim2024-natsound165": ["miss"]}
    assert "Nature" not in ns["categories"] and "Animal" in ns["categories"]


def test_permuted_audio_with_the_labels_kept_is_rebuilt(tmp_path, corpus_clips):
    """The issue's silent wrong verdict: audio files permuted among the names are another data set."""
    seeds = list(range(len(NAT_CATEGORIES)))
    a = make_natsounds(tmp_path / "a", audio_seeds=seeds)
    perm = make_natsounds(tmp_path / "perm", audio_seeds=seeds[::-1])
    assert folder_manifest(a)["hash"] != folder_manifest(perm)["hash"]
    cond = kim(tmp_path, corpus_clips)
    fa = cond.natsound_features("random_init", 0, a)
    n0 = len(cond.cache.events)
    fp = cond.natsound_features("random_init", 0, perm)
    assert outcomes(cond.cache, n0) == {"kim2024-natsound165": ["miss"], "kim2024-features": ["miss"]}
    np.testing.assert_allclose(fp, fa[::-1], rtol=1e-4, atol=1e-5)   # the same sounds under other labels


def test_corpus_folder_edits_change_every_entry_computed_from_it(tmp_path, corpus_clips):
    """A derived entry (features of the corpus) follows the training data it comes from."""
    from stimuli.loaders import load_folder

    cond = kim(tmp_path, corpus_clips)
    f1 = cond.features("random_init", 0)["features"]
    root = tmp_path / "corpus"
    rewrite_wav(root / "c0.wav", 999, dur_s=1.0)                      # same name and size, other sound
    cond2 = kim(tmp_path, load_folder(root, "labels.csv", sr=SR, clip_s=1.0), Cache(tmp_path / "cache"))
    f2 = cond2.features("random_init", 0)["features"]
    assert outcomes(cond2.cache) == {"kim2024-logmel": ["miss"], "kim2024-features": ["miss"]}
    assert not np.allclose(f1[0], f2[0]) and np.allclose(f1[1:], f2[1:], atol=1e-5)


def test_a_stand_in_folder_without_song_is_a_one_line_error(tmp_path):
    """The issue's bare ``KeyError: 'Song'``: the claim stops first with the category, the file and the fix."""
    from types import SimpleNamespace

    root = make_natsounds(tmp_path / "standin", categories=("Music", "Music", "Mechanical", "Nature"))
    run = SimpleNamespace(require_data=lambda key: root)   # no cache, no device: nothing may be trained
    with pytest.raises(UserError) as exc:
        _claim_function()(run)
    msg = str(exc.value)
    assert "'Song'" in msg and str(root / "category_labels.csv") in msg and "--natsound165-root" in msg
    assert "\n" not in msg


def _claim_function():
    """The undecorated claim function of kim2024.natsound165.ratio (the decorator wraps it in a test)."""
    import inspect

    import claims.kim2024.test_natsound165_ratio as mod

    test = mod.test_natsound165_ratio
    return inspect.getclosurevars(test).nonlocals["fn"]


def test_natsound_categories_check(tmp_path):
    from stimuli.loaders import require_natsound_categories

    require_natsound_categories(make_natsounds(tmp_path / "ok"), ("Music", "Song"))
    with pytest.raises(UserError, match="no other category"):
        require_natsound_categories(make_natsounds(tmp_path / "only", categories=("Music", "Song")), ("Music", "Song"))
    with pytest.raises(UserError, match="'Music', 'Song'"):
        require_natsound_categories(make_natsounds(tmp_path / "none", categories=("Nature", "Dog")), ("Music", "Song"))


@pytest.mark.needs_data
def test_the_real_165_sounds_have_a_stable_manifest():
    from harness.options import DataRoots
    from stimuli.loaders import load_natsound165, natsound165_manifest, require_natsound_categories

    root = DataRoots.from_env().get("natsound165")
    if root is None:
        pytest.skip("the 165 natural sounds are not on disk")
    m = natsound165_manifest(root)
    assert m["n_files"] == 166 and natsound165_manifest(root)["hash"] == m["hash"]
    require_natsound_categories(root, ("Music", "Song"))
    assert load_natsound165(root).manifest["data"]["hash"] == m["hash"]


# ------------------------------------------------------------------------------- a user folder
def _user_folder(root, seeds=(1, 2, 3), labels=("Music", "Dog", "Speech")):
    for k, s in enumerate(seeds):
        write_wav(root / f"s{k}.wav", s)
    (root / "labels.csv").write_text("file,labels\n" + "".join(f"s{k}.wav,{lab}\n" for k, lab in enumerate(labels)))
    return root


def _folder_logmel(cache, root):
    """A cache entry that reads a user folder (``load_folder``), keyed by its data manifest."""
    from stimuli.features import logmel
    from stimuli.loaders import folder_data_manifest, load_folder

    key = content_key(folder_data_manifest(root, "labels.csv"), sr=SR)
    return cache.arrays("folder-logmel", key, lambda: {
        "x": logmel(load_folder(root, "labels.csv", sr=SR).audio, sr=SR),
        "music": load_folder(root, "labels.csv", sr=SR).is_music}, version="1")


def test_load_folder_data_is_keyed_by_content(tmp_path):
    from stimuli.loaders import load_folder

    a = _user_folder(tmp_path / "a")
    cache = Cache(tmp_path / "cache")
    xa = _folder_logmel(cache, a)
    assert load_folder(a, "labels.csv").manifest["data"]["hash"] == load_folder(a, "labels.csv").manifest["data"]["hash"]
    b = _user_folder(tmp_path / "b", seeds=(7, 8, 9))                  # same names, sizes and labels
    xb = _folder_logmel(cache, b)
    assert not np.allclose(xa["x"], xb["x"])
    assert [e.outcome for e in cache.events] == ["miss", "miss"]
    np.testing.assert_array_equal(_folder_logmel(Cache(tmp_path / "cache"), a)["x"], xa["x"])   # unchanged: hit
    edit_in_place(a / "labels.csv", (a / "labels.csv").read_text().replace("Dog", "Sax"))      # same size
    again = Cache(tmp_path / "cache")
    xa2 = _folder_logmel(again, a)
    assert [e.outcome for e in again.events] == ["miss"]
    assert load_folder(a, "labels.csv").class_names == ["Music", "Sax", "Speech"]
    np.testing.assert_array_equal(xa2["x"], xa["x"])
    # a labels CSV outside the folder is part of the manifest too
    (tmp_path / "outside.csv").write_text((a / "labels.csv").read_text())
    m1 = load_folder(a, tmp_path / "outside.csv").manifest["data"]["hash"]
    edit_in_place(tmp_path / "outside.csv", (tmp_path / "outside.csv").read_text().replace("Sax", "Dog"))
    assert load_folder(a, tmp_path / "outside.csv").manifest["data"]["hash"] != m1


# ---------------------------------------------------------------------- AudioSet (--audioset-*)
SINGING = ("Singing", "Humming", "Yodeling", "Chant", "Male singing", "Female singing", "Child singing",
           "Synthetic singing", "Rapping")


def make_audioset(root, n_train: int = 10, n_eval: int = 6):
    """A tiny AudioSet: ontology.json, the two segment CSVs, Kim et al.'s lists and 1-s clips."""
    import json

    meta, audio, kim_dir = root / "meta", root / "audio", root / "kim2024"
    for d in (meta, audio, kim_dir):
        d.mkdir(parents=True, exist_ok=True)
    classes = [("/m/04rlf", "Music", ["/m/guitar"]), ("/m/guitar", "Guitar", []), ("/m/09x0r", "Speech", []),
               ("/m/dog", "Dog", [])] + [(f"/m/sing{i}", n, []) for i, n in enumerate(SINGING)]
    (meta / "ontology.json").write_text(json.dumps([{"id": c, "name": n, "child_ids": ch} for c, n, ch in classes]))
    labels = ["/m/04rlf", "/m/dog", "/m/09x0r", "/m/guitar"]
    for name, n, off in (("balanced_train_segments.csv", n_train, 0), ("eval_segments.csv", n_eval, 100)):
        rows = [f'yt{off + i:03d}, 30.000, 31.000, "{labels[i % 4]}"' for i in range(n)]
        (meta / name).write_text("# segments\n# YTID, start_seconds, end_seconds, positive_labels\n" + "\n".join(rows) + "\n")
        for i in range(n):
            write_wav(audio / f"yt{off + i:03d}_30.000.wav", off + i, dur_s=1.0)
    (kim_dir / "music_categories.txt").write_text("Guitar\n")
    (kim_dir / "excluded_clips.csv").write_text("YTID,start_seconds\nyt000,30\n")
    return meta, audio, kim_dir


def audioset_kim(tmp_path, meta, audio, kim_dir, cache=None):
    from claims.kim2024._conditions import KimConditions, tier_settings
    from harness.options import DataRoots

    data = DataRoots({"audioset_meta": str(meta), "audioset_audio": str(audio), "kim2024_lists": str(kim_dir)})
    s = tier_settings("paper", clip_s=1.0, seeds=1)
    return KimConditions(s, cache or Cache(tmp_path / "cache"), "cpu", data=data)


def test_audioset_entries_follow_the_audio_and_the_metadata(tmp_path):
    meta, audio, kim_dir = make_audioset(tmp_path / "as")
    cond = audioset_kim(tmp_path, meta, audio, kim_dir)
    x = cond.logmel()
    key0 = cond.model_config("without_music", 0)["hash"]
    again = audioset_kim(tmp_path, meta, audio, kim_dir, Cache(tmp_path / "cache"))
    np.testing.assert_array_equal(again.logmel(), x)
    assert outcomes(again.cache) == {"kim2024-logmel": ["hit"]}
    assert again.model_config("without_music", 0)["hash"] == key0
    # one clip replaced by another sound of the same size, at the same path
    rewrite_wav(audio / "yt001_30.000.wav", 4242, dur_s=1.0)
    changed = audioset_kim(tmp_path, meta, audio, kim_dir, Cache(tmp_path / "cache"))
    x2 = changed.logmel()
    assert outcomes(changed.cache) == {"kim2024-logmel": ["miss"]}
    assert not np.allclose(x2[1], x[1]) and np.allclose(x2[0], x[0])
    key1 = changed.model_config("without_music", 0)["hash"]
    assert key1 != key0
    # Kim et al.'s excluded list edited at the same path: another training set, another network
    edit_in_place(kim_dir / "excluded_clips.csv", "YTID,start_seconds\nyt002,30\n")
    edited = audioset_kim(tmp_path, meta, audio, kim_dir, Cache(tmp_path / "cache"))
    assert edited.model_config("without_music", 0)["hash"] != key1
    assert edited.clips().manifest["excluded_ids"] == ["yt002_30.000"]
    # a segment's labels edited: another corpus
    csv = meta / "eval_segments.csv"
    key2 = edited.model_config("without_music", 0)["hash"]
    edit_in_place(csv, csv.read_text().replace('yt100, 30.000, 31.000, "/m/04rlf"', 'yt100, 30.000, 31.000, "/m/dog"  '))
    relabelled = audioset_kim(tmp_path, meta, audio, kim_dir, Cache(tmp_path / "cache"))
    assert relabelled.model_config("without_music", 0)["hash"] != key2


# ------------------------------------------------------------- Grasse et al. paper-tier folders
def test_grasse_paper_inputs_follow_the_files_read(tmp_path):
    """--speech-audio / --music-audio / --transcription-data / --checkpoints: the condition key
    follows the files the run reads, by content; unchanged folders give the same key."""
    from claims.grasse2026._conditions import PAPER_SETTINGS, _picked_files, training_inputs
    from harness.options import DataRoots

    for name in ("speech", "music"):
        for k in range(4):
            write_wav(tmp_path / name / f"{name}{k}.wav", 10 * k + len(name), dur_s=0.5, sr=16000)
    (tmp_path / "tr").mkdir()
    for k in range(2):
        np.savez(tmp_path / "tr" / f"x{k}.npz", audio=_noise(k, 0.5, 16000), piano_roll=np.zeros((5, 128), bool),
                 frame_times_s=np.arange(5) * 0.01)
    (tmp_path / "ck" / "wav2vec2").mkdir(parents=True)
    (tmp_path / "ck" / "wav2vec2" / "config.json").write_text('{"hidden": 8}')
    data = DataRoots({"speech_audio": str(tmp_path / "speech"), "music_audio": str(tmp_path / "music"),
                      "transcription": str(tmp_path / "tr"), "checkpoints": str(tmp_path / "ck")})
    s = dict(PAPER_SETTINGS, ssl_clips=4, music_tracks=2, heldout_clips=2, heldout_tracks=1)

    def key():
        return content_key(*training_inputs("wav2vec2", "paper", s, 0, data), arch="wav2vec2")["hash"]

    k0 = key()
    assert key() == k0
    # read: 2 training clips and 1 held-out clip per folder, 1 training and 1 held-out excerpt
    _, picked, _ = _picked_files(tmp_path / "speech", s["ssl_clips"] // 2 + s["heldout_clips"] // 2, 0)
    assert len(picked) == 3
    changed = {}
    for path in (picked[-1], tmp_path / "tr" / "x1.npz", tmp_path / "ck" / "wav2vec2" / "config.json"):
        old = path.read_bytes()
        flip_last_byte(path)
        changed[path.name] = key()
        path.write_bytes(old)
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 2_000_000_000))
    assert all(v != k0 for v in changed.values()) and len(set(changed.values())) == 3
    assert key() == k0
    unread = next(p for p in sorted((tmp_path / "speech").glob("*.wav")) if p not in picked)
    flip_last_byte(unread)                                   # a file the run does not read
    assert key() == k0
    from claims.grasse2026._conditions import training_data

    d = training_data("paper", dict(s, clip_s=0.25), 0, data)   # and those files are what it reads
    assert d["ssl_audio"].shape == (4, 4000) and d["heldout_ssl_audio"].shape == (2, 4000)
    assert d["music_audio"].shape == (1, 8000) and d["heldout_piano_roll"].shape == (1, 5, 128)


# --------------------------------------------------------------- Kong et al. --music-audio
def test_kong_music_audio_folder_feeds_the_pretraining_key(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import claims.kong2025.pipeline as kp

    for k in range(3):
        write_wav(tmp_path / "music" / f"m{k}.wav", k, dur_s=2.5, sr=16000)
    n_tracks, sr, clip_s = 24, 16000, 2.0
    tracks = np.stack([_noise(100 + i, clip_s, sr) for i in range(n_tracks)])
    monkeypatch.setattr(kp, "render_tracks", lambda cfg, cache=None: SimpleNamespace(audio=tracks))
    cfg = kp.KongConfig(n_tracks=n_tracks, clip_s=clip_s, crop_s=1.0, dim=16, depth=1, n_heads=2, mlp_ratio=1.0,
                        steps=1, batch_size=4, pretrain_source="music_audio", max_pretrain_clips=3, n_mels=16)

    def run():
        cache = Cache(tmp_path / "cache")
        kp.load_bundle(cfg, cache=cache, music_audio_root=tmp_path / "music")
        return outcomes(cache), data_used(cache.events)

    first, used = run()
    assert set(first["kong2025-vit1d"]) == {"miss"}
    assert "music_audio" in {u["name"] for u in used}
    second, _ = run()
    assert set(o for v in second.values() for o in v) == {"hit"}
    rewrite_wav(tmp_path / "music" / "m0.wav", 77, dur_s=2.5, sr=16000)     # same size, other music
    third, _ = run()
    assert third["kong2025-vit1d"] == ["miss"] and third["kong2025-logmel"] == ["hit"]
    assert third["kong2025-layers"] == ["miss", "miss"]
