"""Real-data loaders: AudioSet (with Kim et al.'s music definition), the 165 natural sounds, a user folder.

Every loader returns a :class:`stimuli.dataset.ClipSet` (mono float32 at the model's rate, equal
clip lengths), so models and analyses never care where the audio came from.

Layouts (see each function): AudioSet = segment CSVs + ``ontology.json`` + a folder of
``<YTID>_<start>.<ext>`` clips; natsound165 = ``wav/`` + ``category_labels.csv``; a user folder =
audio files + a CSV ``file,labels[,split][,category]``.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError
from stimuli.audio_io import AUDIO_EXTENSIONS, fit_length, read_audio
from stimuli.dataset import SPLITS, ClipSet, training_variant

MUSIC_ROOT_ID = "/m/04rlf"          # "Music"
SPEECH_ROOT_ID = "/m/09x0r"         # "Speech"
#: The 9 human-voice classes Kim et al. also count as music.
KIM_SINGING_CLASSES = ("Singing", "Humming", "Yodeling", "Chant", "Male singing", "Female singing",
                       "Child singing", "Synthetic singing", "Rapping")
DEFAULT_SPLIT_CSVS = {"train": "balanced_train_segments.csv", "test": "eval_segments.csv"}
NATSOUND_MUSIC_CATEGORIES = ("Music", "Song")
NATSOUND_SPEECH_CATEGORIES = ("EngSpeech", "ForSpeech")


# --------------------------------------------------------------------------------------------
# reading listed clips
# --------------------------------------------------------------------------------------------
def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@dataclass
class _Loaded:
    """What :func:`_read_clips` read: the audio of the readable files and the fate of every listed one."""

    audio: np.ndarray
    kept: list            # indices into the listed files
    missing: list         # relative paths
    corrupt: list         # {"file", "reason"}


def _read_clips(files: list, root: Path, sr: int, n_samples: int, desc: str, progress: bool = False,
                memmap_path=None) -> _Loaded:
    """Read ``files`` as mono float32 at ``sr`` cut or zero-padded to ``n_samples``; missing and corrupt
    files are recorded, never raised."""
    from tqdm.auto import tqdm

    store = (np.lib.format.open_memmap(Path(memmap_path), mode="w+", dtype=np.float32,
                                       shape=(max(len(files), 1), n_samples)) if memmap_path is not None else [])
    kept, missing, corrupt = [], [], []
    for i, f in enumerate(tqdm(files, desc=desc, disable=not progress)):
        if f is None or not Path(f).is_file():
            missing.append(_rel(Path(f), root) if f is not None else "?")
            continue
        try:
            wave = fit_length(read_audio(f, sr), n_samples)
        except UserError as e:
            corrupt.append({"file": _rel(Path(f), root), "reason": str(e)})
            continue
        if memmap_path is not None:
            store[len(kept)] = wave
        else:
            store.append(wave)
        kept.append(i)
    if memmap_path is not None:
        audio = store[: len(kept)]
    else:
        audio = np.stack(store).astype(np.float32) if store else np.zeros((0, n_samples), np.float32)
    return _Loaded(audio=audio, kept=kept, missing=missing, corrupt=corrupt)


# --------------------------------------------------------------------------------------------
# AudioSet metadata
# --------------------------------------------------------------------------------------------
def load_ontology(path) -> dict:
    """Read AudioSet's ``ontology.json``.

    Returns
    -------
    dict
        ``{id: {"name", "child_ids", "restrictions", "order"}}`` in file order (``order`` = position).
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {e["id"]: {"name": e["name"], "child_ids": list(e.get("child_ids", [])),
                          "restrictions": list(e.get("restrictions", [])), "order": i}
                for i, e in enumerate(entries)}
    except FileNotFoundError:
        raise UserError(f"AudioSet ontology {path} does not exist: point to the folder holding ontology.json") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"AudioSet ontology {path} is not a valid ontology.json ({e}): "
                        "download it again from github.com/audioset/ontology") from None


def descendants(ontology: dict, root_id: str) -> list:
    """``root_id`` and every class below it (depth-first, each once)."""
    if root_id not in ontology:
        raise UserError(f"class id {root_id} is not in the ontology: check the ontology.json version")
    out, stack, seen = [], [root_id], {root_id}
    while stack:
        cid = stack.pop()
        out.append(cid)
        for c in reversed(ontology[cid]["child_ids"]):
            if c not in seen and c in ontology:
                seen.add(c)
                stack.append(c)
    return out


def read_segments(path) -> list:
    """Read an AudioSet segment CSV (``# `` comment lines, then ``YTID, start, end, "l1,l2,..."``).

    Returns
    -------
    list of dict
        ``{"ytid", "start_s", "end_s", "labels": [ids], "clip_id": "<YTID>_<start:.3f>"}``, in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"AudioSet segment list {path} does not exist: give the folder holding the segment CSVs")
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        lines = (ln for ln in f if ln.strip() and not ln.lstrip().startswith("#"))
        for lineno, rec in enumerate(csv.reader(lines, skipinitialspace=True), 1):
            if len(rec) < 4:
                raise UserError(f"{path}: row {lineno} has {len(rec)} fields, expected "
                                "YTID, start_seconds, end_seconds, \"labels\"")
            try:
                start, end = float(rec[1]), float(rec[2])
            except ValueError:
                raise UserError(f"{path}: row {lineno} has a non-numeric start/end ({rec[1]!r}, {rec[2]!r})") from None
            labels = [lab.strip() for lab in ",".join(rec[3:]).split(",") if lab.strip()]
            rows.append({"ytid": rec[0].strip(), "start_s": start, "end_s": end, "labels": labels,
                         "clip_id": clip_id(rec[0].strip(), start)})
    return rows


def clip_id(ytid: str, start_s: float) -> str:
    """The canonical AudioSet clip id / file stem, ``<YTID>_<start with 3 decimals>``."""
    return f"{ytid}_{float(start_s):.3f}"


def audioset_class_ids(ontology: dict, segment_csvs) -> list:
    """The label set: every class id used in ``segment_csvs``, in ontology order (527 for AudioSet)."""
    used = set()
    for p in segment_csvs:
        for r in read_segments(p):
            used.update(r["labels"])
    unknown = sorted(used - set(ontology))
    if unknown:
        raise UserError(f"labels {unknown[:3]} in the segment CSVs are not in the ontology: use matching "
                        "ontology.json and CSV versions")
    return sorted(used, key=lambda c: ontology[c]["order"])


def music_class_mask(ontology: dict, class_ids, kim_music_names_path=None) -> np.ndarray:
    """Kim et al.'s music-related classes among ``class_ids``.

    The Music subtree (``/m/04rlf`` and everything below it) plus the 9 singing classes
    (:data:`KIM_SINGING_CLASSES`). With ``kim_music_names_path`` (``music_categories.txt``, one
    display name per line) every listed name is also included, and a name that is not in the
    ontology raises, so a mismatch between the list and the ontology cannot pass silently.

    Returns
    -------
    np.ndarray, bool, shape (len(class_ids),)
    """
    music = set(descendants(ontology, MUSIC_ROOT_ID))
    by_name = {}
    for cid, e in ontology.items():
        by_name.setdefault(e["name"], []).append(cid)
    names = list(KIM_SINGING_CLASSES)
    if kim_music_names_path is not None:
        p = Path(kim_music_names_path)
        if not p.is_file():
            raise UserError(f"Kim et al.'s music list {p} does not exist: point to the kim2024 folder")
        names += [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    missing = sorted({n for n in names if n not in by_name})
    if missing:
        raise UserError(f"music class names {missing[:3]} are not in the ontology: check the list against ontology.json")
    for n in names:
        music.update(by_name[n])
    return np.array([c in music for c in class_ids], dtype=bool)


def speech_class_mask(ontology: dict, class_ids) -> np.ndarray:
    """The Speech subtree (``/m/09x0r`` and below) among ``class_ids``."""
    speech = set(descendants(ontology, SPEECH_ROOT_ID))
    return np.array([c in speech for c in class_ids], dtype=bool)


def kim_excluded_ids(path) -> set:
    """Kim et al.'s hand-excluded clips (``excluded_clips.csv``: header ``YTID,start_seconds``) as clip ids."""
    path = Path(path)
    if path.is_dir():
        path = path / "excluded_clips.csv"
    if not path.is_file():
        raise UserError(f"Kim et al.'s excluded-clip list {path} does not exist: point to the kim2024 folder")
    out = set()
    with path.open(newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f, skipinitialspace=True):
            try:
                out.add(clip_id(rec["YTID"].strip(), float(rec["start_seconds"])))
            except (KeyError, ValueError, AttributeError):
                raise UserError(f"{path}: expected columns YTID,start_seconds, got {rec}") from None
    return out


def _index_audio_dir(audio_dir: Path) -> dict:
    """Map canonical clip ids to files named ``<YTID>_<start>.<ext>`` (any start format, e.g. 30 or 30.000)."""
    index = {}
    for f in sorted(audio_dir.iterdir()):
        if f.suffix.lower() not in AUDIO_EXTENSIONS or "_" not in f.stem:
            continue
        ytid, start = f.stem.rsplit("_", 1)
        try:
            index.setdefault(clip_id(ytid, float(start)), f)
        except ValueError:
            continue
    return index


def _multi_hot(label_lists, class_ids) -> np.ndarray:
    col = {c: i for i, c in enumerate(class_ids)}
    out = np.zeros((len(label_lists), len(class_ids)), dtype=bool)
    for i, labs in enumerate(label_lists):
        idx = [col[lab] for lab in labs if lab in col]
        out[i, idx] = True
    return out


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_audioset(root_csv_dir, audio_dir, split_csvs=None, sr: int = 22050, clip_s: float = 10.0,
                  kim_dir=None, progress: bool = True, val_fraction: float = 0.1, seed: int = 0,
                  max_clips: int | None = None, label_csvs=None, memmap_path=None) -> tuple[ClipSet, dict]:
    """Load AudioSet clips with 527-d multi-hot labels and Kim et al.'s music definition.

    Parameters
    ----------
    root_csv_dir : path
        Folder with ``ontology.json`` and the segment CSVs.
    audio_dir : path
        Folder of clips named ``<YTID>_<start>.<ext>`` (e.g. ``--PJHxphWEs_30.000.wav``); any
        format libsndfile reads, any sample rate, any channel count.
    split_csvs : dict, optional
        ``{split: csv file name (or list of names)}``; default ``{"train":
        "balanced_train_segments.csv", "test": "eval_segments.csv"}``.
    sr : int
        Output sample rate in Hz.
    clip_s : float
        Every clip is zero-padded or cut to ``clip_s`` seconds.
    kim_dir : path, optional
        Kim et al.'s lists (``music_categories.txt``, ``excluded_clips.csv``): adds the listed names
        to the music classes and stores the excluded ids in ``manifest["excluded_ids"]``.
    progress : bool
        Show a progress bar.
    val_fraction : float
        Fraction of ``"train"`` clips moved to ``"val"`` (Kim et al.: 10 %), drawn with ``seed``.
    max_clips : int, optional
        Load at most this many listed segments per split (for quick runs).
    label_csvs : list of paths, optional
        Segment CSVs whose labels define the label columns; default every ``*_segments.csv`` in
        ``root_csv_dir`` plus the split CSVs (AudioSet's balanced + eval lists give the 527 classes).
    memmap_path : path, optional
        Write the audio into a ``.npy`` memory map there instead of RAM (the full balanced + eval
        sets are ~17 GB as float32 at 22,050 Hz); ``clips.audio`` is then a read-write memmap.

    Returns
    -------
    clips : ClipSet
        Only the clips found and readable, in CSV order; ``class_names`` are display names, the ids
        are in ``manifest["class_ids"]``.
    report : dict
        ``listed``, ``loaded``, ``missing``, ``corrupt`` (counts), ``missing_ids``,
        ``corrupt_files`` (file and reason), ``duplicates``. Missing or corrupt clips are never fatal.
    """
    root = Path(root_csv_dir)
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise UserError(f"AudioSet audio folder {audio_dir} does not exist: give the folder of <YTID>_<start>.<ext> clips")
    split_csvs = dict(DEFAULT_SPLIT_CSVS if split_csvs is None else split_csvs)
    bad = sorted(set(split_csvs) - set(SPLITS))
    if bad:
        raise UserError(f"unknown split names {bad} in split_csvs: use {', '.join(SPLITS)}")
    ontology = load_ontology(root / "ontology.json")
    csv_paths = {s: [root / n for n in ([v] if isinstance(v, (str, Path)) else v)] for s, v in split_csvs.items()}
    all_csvs = (sorted({p for ps in csv_paths.values() for p in ps} | set(root.glob("*_segments.csv")))
                if label_csvs is None else [Path(p) for p in label_csvs])
    class_ids = audioset_class_ids(ontology, all_csvs)
    kim_names = Path(kim_dir) / "music_categories.txt" if kim_dir is not None else None
    music = music_class_mask(ontology, class_ids, kim_names)
    speech = speech_class_mask(ontology, class_ids)

    rows, seen, duplicates = [], set(), 0
    for split, paths in csv_paths.items():
        taken = 0
        for p in paths:
            for r in read_segments(p):
                if max_clips is not None and taken >= max_clips:
                    break
                if r["clip_id"] in seen:
                    duplicates += 1
                    continue
                seen.add(r["clip_id"])
                rows.append(dict(r, split=split))
                taken += 1

    index = _index_audio_dir(audio_dir)
    files = [index.get(r["clip_id"]) for r in rows]
    got = _read_clips(files, Path(audio_dir), sr, int(round(clip_s * sr)), "AudioSet clips", progress, memmap_path)
    kept, audio_arr, corrupt = [rows[i] for i in got.kept], got.audio, got.corrupt
    missing_ids = [r["clip_id"] for r, f in zip(rows, files) if f is None]

    split = np.array([r["split"] for r in kept], dtype=object)
    if val_fraction > 0:
        train_idx = np.flatnonzero(split == "train")
        rng = np.random.default_rng(seed)
        n_val = int(round(val_fraction * len(train_idx)))
        split[rng.choice(train_idx, size=n_val, replace=False)] = "val"
    split_names = {k: [str(p.name) for p in v] for k, v in csv_paths.items()}
    meta_files = [root / "ontology.json", *sorted({p for ps in csv_paths.values() for p in ps} | set(all_csvs))]
    if kim_dir is not None:
        meta_files += [p for p in (Path(kim_dir) / "music_categories.txt", Path(kim_dir) / "excluded_clips.csv")
                       if p.is_file()]
    data = audioset_manifest(audio_dir, [index[r["clip_id"]] for r in kept], meta_files, sr=sr, clip_s=clip_s,
                             split_csvs=split_names, val_fraction=val_fraction, seed=seed, max_clips=max_clips,
                             clip_ids=[r["clip_id"] for r in kept])
    manifest = dict(source="audioset", root=str(root), audio_dir=str(audio_dir), sr=sr, clip_s=clip_s,
                    split_csvs=split_names, val_fraction=val_fraction, seed=seed, class_ids=class_ids,
                    excluded_ids=sorted(kim_excluded_ids(Path(kim_dir))) if kim_dir is not None else [],
                    data=data)
    manifest["hash"] = data["hash"]
    clips = ClipSet(
        audio=audio_arr, sr=sr, labels=_multi_hot([r["labels"] for r in kept], class_ids),
        class_names=[ontology[c]["name"] for c in class_ids], music_classes=music, speech_classes=speech,
        split=split.astype(str), clip_ids=[r["clip_id"] for r in kept], manifest=manifest)
    report = dict(listed=len(rows), loaded=len(kept), missing=len(missing_ids), corrupt=len(corrupt),
                  missing_ids=missing_ids, corrupt_files=corrupt, duplicates=duplicates)
    return clips, report


def files_manifest(name: str, files) -> dict:
    """The data manifest of files anywhere on disk (grouped by folder, each by content)."""
    from harness.cache import data_manifest, folder_manifest

    by_dir: dict = {}
    for f in files:
        f = Path(f).resolve()
        by_dir.setdefault(f.parent, []).append(f)
    parts = [folder_manifest(d, files=fs, name=f"{name}.{d.name}") for d, fs in sorted(by_dir.items())]
    return data_manifest(name, *parts)


def audioset_manifest(audio_dir, audio_files, meta_files, **params) -> dict:
    """The data manifest of a loaded AudioSet clip set: every audio file it read (by content, relative
    to ``audio_dir``), the metadata files (ontology, segment CSVs, Kim et al.'s lists) and the loader's
    ``params`` (rate, length, split, clip ids...)."""
    from harness.cache import data_manifest, folder_manifest

    audio = folder_manifest(audio_dir, files=audio_files, name="audioset_audio")
    return data_manifest("audioset", audio, files_manifest("audioset_meta", meta_files), **params)


def kim_training_variants(clips: ClipSet, excluded_ids=None, seed: int = 0, split: str = "train") -> dict:
    """Kim et al.'s training sets: ``with_music``, ``without_music`` (music labels and the excluded
    ids dropped), ``without_music_and_speech`` and ``shuffled_labels`` (memorisation), each restricted
    to ``split`` (``None`` keeps every split). ``excluded_ids`` defaults to ``manifest["excluded_ids"]``."""
    if excluded_ids is None:
        excluded_ids = set(clips.manifest.get("excluded_ids", []))
    base = clips if split is None else clips.subset(clips.split == split)
    return {v: training_variant(base, v, seed=seed, excluded_ids=set(excluded_ids))
            for v in ("with_music", "without_music", "without_music_and_speech", "shuffled_labels")}


def music_analysis_sets(clips: ClipSet, split: str | None = "test") -> dict:
    """Kim et al.'s analysis sets: ``music`` (every label music-related) and ``no_music`` (none is);
    mixed clips and clips without labels are left out."""
    base = clips if split is None else clips.subset(clips.split == split)
    return {"music": base.subset(base.is_music == 1), "no_music": base.subset(base.is_music == 0)}


# --------------------------------------------------------------------------------------------
# 165 natural sounds and user folders
# --------------------------------------------------------------------------------------------
def _read_label_rows(path: Path) -> list:
    if not path.is_file():
        raise UserError(f"label file {path} does not exist: put a CSV of file,labels next to the audio")
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [rec for rec in csv.reader(f, skipinitialspace=True) if rec and any(x.strip() for x in rec)]


def _find_audio(folder: Path, stem_or_name: str) -> Path | None:
    p = folder / stem_or_name
    if p.is_file():
        return p
    for ext in AUDIO_EXTENSIONS:
        q = folder / f"{stem_or_name}{ext}"
        if q.is_file():
            return q
    return None


NATSOUND_LABELS = "category_labels.csv"


def natsound165_files(root) -> tuple[Path, list, list, list]:
    """The layout of the 165 natural sounds: ``(labels file, stems, categories, audio files)``.

    Reads only ``category_labels.csv`` and resolves each listed stem to its file in ``wav/`` (or
    ``root``); a malformed line or a missing file raises a one-line :class:`UserError`.
    """
    root = Path(root)
    labels_file = root / NATSOUND_LABELS
    rows = _read_label_rows(labels_file)
    wav_dir = root / "wav" if (root / "wav").is_dir() else root
    stems, cats, files = [], [], []
    for rec in rows:
        if len(rec) < 2:
            raise UserError(f"{labels_file}: line {rec} should be <file stem>,<category>")
        stem = rec[0].strip()
        f = _find_audio(wav_dir, stem)
        if f is None:
            raise UserError(f"natural sound {stem!r} listed in {labels_file} has no audio file in {wav_dir}")
        stems.append(stem)
        cats.append(rec[1].strip())
        files.append(f)
    return labels_file, stems, cats, files


def natsound165_manifest(root) -> dict:
    """The data manifest of the 165 natural sounds (:func:`harness.cache.folder_manifest` of
    ``category_labels.csv`` and every audio file it lists): what cache entries of them are keyed by."""
    from harness.cache import folder_manifest

    labels_file, _, _, files = natsound165_files(root)
    return folder_manifest(root, files=[labels_file, *files], name="natsound165")


def require_natsound_categories(root, needed, what: str = "this claim") -> None:
    """Check that the sounds at ``root`` include every category in ``needed`` and at least one other.

    Raises a one-line :class:`UserError` naming the missing category, the labels file and the fix
    (a stand-in folder without a ``Song`` category would otherwise fail deep inside an analysis).
    """
    labels_file, _, cats, _ = natsound165_files(root)
    present = sorted(set(cats))
    missing = [c for c in needed if c not in present]
    others = [c for c in present if c not in needed]
    fix = (f"add sounds labelled {{}} to {labels_file} (lines <file stem>,<category>) or point --natsound165-root "
           "at the 165 natural sounds (Norman-Haignere et al. 2015)")
    if missing:
        raise UserError(f"{what} needs the natural-sound categor{'y' if len(missing) == 1 else 'ies'} "
                        f"{', '.join(repr(c) for c in missing)}, absent from {labels_file} (categories found: "
                        f"{', '.join(present) or 'none'}): " + fix.format(" or ".join(repr(c) for c in missing)))
    if not others:
        raise UserError(f"{what} compares {', '.join(needed)} with other categories, but {labels_file} has no "
                        "other category: " + fix.format("with the non-music categories"))


def load_natsound165(root, sr: int = 22050, clip_s: float = 2.0) -> ClipSet:
    """The 165 natural sounds (Norman-Haignere et al. 2015).

    Parameters
    ----------
    root : path
        Folder with ``category_labels.csv`` (``<file stem>,<category>`` per line, no header) and the
        WAVs in ``wav/`` (or directly in ``root``).
    sr : int
        Output sample rate in Hz (the files are 44.1 kHz).
    clip_s : float
        Clips are zero-padded or cut to this length (the sounds are 2 s).

    Returns
    -------
    ClipSet
        One label column per category (11), music = Music + Song (35 sounds), speech = EngSpeech +
        ForSpeech, ``categories`` set, every clip in split ``"test"``. ``manifest["data"]`` is the
        folder's data manifest (:func:`natsound165_manifest`) and ``manifest["hash"]`` hashes it with
        ``sr`` and ``clip_s``. A missing or corrupt file raises a :class:`UserError` naming it.
    """
    root = Path(root)
    _, stems, cats, files = natsound165_files(root)
    data = natsound165_manifest(root)
    n_samples = int(round(clip_s * sr))
    audio = [fit_length(read_audio(f, sr), n_samples) for f in files]
    names = list(dict.fromkeys(cats))
    labels = np.array([[c == n for n in names] for c in cats], dtype=bool)
    manifest = dict(source="natsound165", root=str(root), sr=sr, clip_s=clip_s, data=data)
    manifest["hash"] = _hash(["natsound165", sr, clip_s, data["hash"]])
    return ClipSet(audio=np.stack(audio).astype(np.float32), sr=sr, labels=labels, class_names=names,
                   music_classes=np.array([n in NATSOUND_MUSIC_CATEGORIES for n in names]),
                   speech_classes=np.array([n in NATSOUND_SPEECH_CATEGORIES for n in names]),
                   split=np.array(["test"] * len(stems)), clip_ids=stems, categories=np.array(cats),
                   manifest=manifest)


def load_folder(root, labels_csv, sr: int = 22050, clip_s: float | None = None,
                music_labels=("music", "song", "singing"), speech_labels=("speech",)) -> ClipSet:
    """A user's own sounds: a folder of audio files and a CSV of their labels.

    Parameters
    ----------
    root : path
        Folder holding the audio files (any libsndfile format, rate and channel count).
    labels_csv : path
        CSV with a header row and columns ``file`` (path relative to ``root``, with or without
        extension) and ``labels`` (one or more labels separated by ``;`` or ``,`` inside quotes);
        optional ``split`` (train/val/test, default test) and ``category`` (defaults to the first label).
    sr : int
        Output sample rate in Hz.
    clip_s : float, optional
        Zero-pad or cut every clip to this length; ``None`` pads to the longest clip.
    music_labels, speech_labels : sequence of str
        Label names (case-insensitive) that count as music / speech.

    Returns
    -------
    ClipSet
        Label columns in order of first appearance; ``manifest["data"]`` is the folder's data manifest
        (:func:`folder_data_manifest`: the labels CSV and every listed file, by content). A missing or
        corrupt file raises a :class:`UserError` naming it.
    """
    root = Path(root)
    labels_csv, files, label_lists, splits, cats = _folder_rows(root, labels_csv)
    data = folder_data_manifest(root, labels_csv)
    waves = [read_audio(f, sr) for f in files]
    n_samples = int(round(clip_s * sr)) if clip_s is not None else max(w.shape[0] for w in waves)
    names = list(dict.fromkeys(lab for labs in label_lists for lab in labs))
    music_set = {m.lower() for m in music_labels}
    speech_set = {m.lower() for m in speech_labels}
    manifest = dict(source="folder", root=str(root), labels_csv=str(labels_csv), sr=sr, clip_s=clip_s, data=data)
    manifest["hash"] = _hash(["folder", sr, clip_s, sorted(music_set), sorted(speech_set), data["hash"]])
    return ClipSet(audio=np.stack([fit_length(w, n_samples) for w in waves]).astype(np.float32), sr=sr,
                   labels=_multi_hot(label_lists, names), class_names=names,
                   music_classes=np.array([n.lower() in music_set for n in names], dtype=bool),
                   speech_classes=np.array([n.lower() in speech_set for n in names], dtype=bool),
                   split=np.array(splits), clip_ids=[str(f.relative_to(root).with_suffix("")) for f in files],
                   categories=np.array(cats), manifest=manifest)


def _folder_rows(root: Path, labels_csv) -> tuple:
    """``(labels file, audio files, label lists, splits, categories)`` of a user folder (see :func:`load_folder`)."""
    labels_csv = Path(labels_csv)
    if not labels_csv.is_absolute() and not labels_csv.is_file():
        labels_csv = root / labels_csv
    if not labels_csv.is_file():
        raise UserError(f"label file {labels_csv} does not exist: write a CSV with columns file,labels")
    with labels_csv.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        fields = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "file" not in fields or "labels" not in fields:
            raise UserError(f"{labels_csv} needs a header with columns file,labels (optional split,category); "
                            f"found {reader.fieldnames}")
        recs = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    files, label_lists, splits, cats = [], [], [], []
    for r in recs:
        f = _find_audio(root, r["file"])
        if f is None:
            raise UserError(f"audio file {root / r['file']} listed in {labels_csv.name} does not exist")
        labs = [x.strip() for x in r["labels"].replace(";", ",").split(",") if x.strip()]
        sp = r.get("split") or "test"
        if sp not in SPLITS:
            raise UserError(f"{labels_csv}: split {sp!r} for {r['file']} must be one of {', '.join(SPLITS)}")
        files.append(f)
        label_lists.append(labs)
        splits.append(sp)
        cats.append(r.get("category") or (labs[0] if labs else ""))
    if not files:
        raise UserError(f"{labels_csv} lists no files: add rows file,labels")
    return labels_csv, files, label_lists, splits, cats


def folder_data_manifest(root, labels_csv, name: str = "folder") -> dict:
    """The data manifest of a user folder (:func:`load_folder`): the labels CSV and every audio file it
    lists, by content (:func:`harness.cache.folder_manifest`); the CSV may lie outside ``root``."""
    from harness.cache import data_manifest, folder_manifest

    root = Path(root)
    labels_csv, files, _, _, _ = _folder_rows(root, labels_csv)
    audio = folder_manifest(root, files=files, name=f"{name}.audio")
    labels = folder_manifest(labels_csv.parent, files=[labels_csv], name=f"{name}.labels")
    return data_manifest(name, audio, labels)
