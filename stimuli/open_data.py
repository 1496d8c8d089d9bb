"""Open datasets for replicating the three papers on one GPU without AudioSet.

Every loader reads one dataset in the folder layout its distributors ship (each function's
``Layout`` section; :data:`OPEN_DATASETS` is the registry the documentation ``docs/open_data.md``
is generated from) and returns the data objects the suite already uses:

- Kim et al. 2024: :func:`load_fsd50k` (AudioSet-ontology labels; the no-music condition drops every
  clip with a label in the Music subtree or a singing class, with the ontology code of the AudioSet
  path, :func:`stimuli.loaders.music_class_mask`), :func:`load_esc50` (a second held-out set) and the
  165 natural sounds (:func:`stimuli.loaders.load_natsound165`, unchanged) -> :class:`ClipSet`.
- Grasse & Tata 2026: :func:`write_transcription_npz` converts MAESTRO (or GuitarSet) into the
  ``*.npz`` excerpts ``--transcription-data`` reads (``audio`` at 16 kHz, ``piano_roll`` [frames, 128]
  bool, ``frame_times_s``); :func:`load_librispeech` (speech) and :func:`load_fma` (music) for the SSL
  conditions -> :class:`ClipSet`; :func:`write_audio_folder` writes a ClipSet as FLAC files for the
  ``--speech-audio`` / ``--music-audio`` folders.
- Kong et al. 2025: :func:`load_gtzan` (global genre tags) -> :class:`ClipSet`; :func:`load_guitarset_chords`
  (open audio) and :func:`load_lab_chords` (Isophonics-style ``.lab`` files paired with your own
  audio) -> :class:`ChordTracks` for the local chord tasks.

Conventions shared by every loader
----------------------------------
- A missing dataset folder or metadata file raises a one-line :class:`UserError` naming the folder
  and where to get the data; a folder laid out differently (metadata present, audio folder named
  otherwise) raises one naming what was expected.
- Listed audio files that are missing, corrupt or unreadable are skipped, counted in
  ``manifest["missing"]`` / ``manifest["corrupt"]`` (with ``missing_files`` / ``corrupt_files``) and
  reported in one warning line; only a load that leaves nothing usable raises.
- ``manifest["data"]`` is a data manifest by content (:func:`harness.cache.folder_manifest` of every
  audio file read plus the metadata files, paths relative to the dataset root, with the loader's
  parameters): a moved copy keys the same, an edited file does not. ``manifest["hash"]`` is its hash.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np

from harness.errors import UserError
from stimuli.audio_io import AUDIO_EXTENSIONS, fit_length, read_audio
from stimuli.dataset import ClipSet
from stimuli.loaders import _Loaded, _read_clips, _rel

log = logging.getLogger("mec.open_data")

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "open_data.md"
#: Where every "does not exist" message sends the user for the layouts.
DOCS_REF = "docs/open_data.md"


# ============================================================================================
# Registry
# ============================================================================================
@dataclass(frozen=True)
class OpenDataset:
    """One open dataset: what it is for, its licence, where to get it, how it is laid out.

    Attributes
    ----------
    name : str
        Registry key (``"fsd50k"``).
    title : str
        Display name, used in every error message (``"FSD50K"``).
    used_for : str
        Which paper and condition reads it.
    licence : str
    url : str
        Download page, named in every "does not exist" error.
    size : str
        Expected disk size.
    loader : callable
        The function that reads it; its docstring's ``Layout`` section is the documented layout.
    notes : str
        Known faults and caveats.
    layout_text : str
        The layout, when the loader's docstring has no ``Layout`` section.
    api : str
        How to call it, for the documentation (default ``stimuli.open_data.<loader>``).
    """

    name: str
    title: str
    used_for: str
    licence: str
    url: str
    size: str
    loader: Callable
    notes: str = ""
    layout_text: str = ""
    api: str = ""

    @property
    def layout(self) -> str:
        """The documented folder layout (the loader's ``Layout`` docstring section)."""
        return self.layout_text or docstring_section(self.loader, "Layout")


def docstring_section(func, title: str) -> str:
    """The body of a numpy-style docstring section (``title`` underlined by dashes), dedented."""
    import inspect
    import textwrap

    lines = inspect.getdoc(func).splitlines()

    def is_header(i: int) -> bool:
        return (i + 1 < len(lines) and bool(lines[i].strip()) and not lines[i].startswith(" ")
                and set(lines[i + 1].strip()) == {"-"})

    for i in range(len(lines)):
        if lines[i].strip() == title and is_header(i):
            j = i + 2
            while j < len(lines) and not is_header(j):
                j += 1
            return textwrap.dedent("\n".join(lines[i + 2:j])).strip("\n")
    raise ValueError(f"{func.__name__} has no {title!r} docstring section")


OPEN_DATASETS: dict[str, OpenDataset] = {}   # filled at the end of the module


def _spec(name: str) -> OpenDataset:
    return OPEN_DATASETS[name]


# ============================================================================================
# Shared checks, reading and manifests
# ============================================================================================
def _require_root(root, name: str, nested: tuple = ()) -> Path:
    """The dataset folder (descending into a single wrapper folder from ``nested`` when the user gave
    its parent, e.g. ``ESC-50-master``); a one-line error naming it and the download page when absent."""
    spec = _spec(name)
    if root is None:
        raise UserError(f"no {spec.title} folder given: download {spec.title} from {spec.url} and pass its "
                        f"folder (layout: {DOCS_REF})")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{spec.title} folder {root} does not exist: download {spec.title} from {spec.url} and "
                        f"unpack it there (layout: {DOCS_REF})")
    for sub in nested:
        if (root / sub).is_dir():
            return root / sub
    return root


def _require_metadata(path: Path, name: str, what: str) -> Path:
    spec = _spec(name)
    if not path.is_file():
        raise UserError(f"{spec.title} {what} {path} does not exist: download it from {spec.url} "
                        f"(layout: {DOCS_REF})")
    return path


def _listing(folder: Path, n: int = 6) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if not p.name.startswith("."))
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "") if names else "nothing"


def _require_audio_dir(path: Path, name: str, has: str, expected: str) -> Path:
    """The audio folder the metadata refers to; a wrong-layout error saying what was expected."""
    if not path.is_dir():
        spec = _spec(name)
        raise UserError(f"{spec.title} at {path.parent} has {has} but no {path.name}/ folder (found: "
                        f"{_listing(path.parent)}): expected {expected} (layout: {DOCS_REF})")
    return path


def _read_csv(path: Path, required: tuple, name: str) -> list[dict]:
    """Rows of a CSV with a header holding at least ``required`` (a one-line error otherwise)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in required if c not in fields]
        if missing:
            raise UserError(f"{_spec(name).title} metadata {path} has columns {fields[:8]}, expected "
                            f"{','.join(required)}: the file is not the one shipped with the dataset")
        return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]




def _check_usable(name: str, n_listed: int, n_kept: int, missing: list, corrupt: list, listed_in: str) -> None:
    """Warn (one line) about skipped files; raise when nothing usable remains."""
    spec = _spec(name)
    skipped = len(missing) + len(corrupt)
    example = (missing + [c["file"] for c in corrupt])[:2]
    if n_kept == 0:
        raise UserError(f"none of the {n_listed} {spec.title} files listed in {listed_in} could be read "
                        f"({len(missing)} missing, {len(corrupt)} corrupt, e.g. {', '.join(example) or '-'}): "
                        f"check the download from {spec.url} (layout: {DOCS_REF})")
    if skipped:
        log.warning("%s: skipped %d of %d listed files (%d missing, %d corrupt, e.g. %s); see manifest "
                    "missing_files / corrupt_files", spec.title, skipped, n_listed, len(missing), len(corrupt),
                    ", ".join(example))


def _data_manifest(name: str, root: Path, audio_files: list, meta_files: list, extra_parts=(), **params) -> dict:
    """The data manifest of one load: the audio files read and the metadata files (both by content,
    relative to the dataset root), other parts (e.g. an ontology elsewhere) and the loader's parameters."""
    from harness.cache import data_manifest, folder_manifest

    audio = folder_manifest(root, files=audio_files, name=f"{name}.audio")
    meta = folder_manifest(root, files=meta_files, name=f"{name}.meta")
    return data_manifest(name, audio, meta, *extra_parts, **params)


def _manifest(name: str, root: Path, data: dict, n_listed: int, loaded: _Loaded, **extra) -> dict:
    spec = _spec(name)
    return dict(source=name, root=str(root), licence=spec.licence, url=spec.url, data=data, hash=data["hash"],
                listed=n_listed, loaded=len(loaded.kept), missing=len(loaded.missing), corrupt=len(loaded.corrupt),
                missing_files=loaded.missing, corrupt_files=loaded.corrupt, **extra)


def _one_hot(values: list, names: list) -> np.ndarray:
    col = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(values), len(names)), dtype=bool)
    for i, v in enumerate(values):
        if v in col:
            out[i, col[v]] = True
    return out


def _draw(n: int, max_clips: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded draw of ``max_clips`` of ``n`` listed items (all, in order, when None)."""
    if max_clips is None or max_clips >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[: int(max_clips)])


# ============================================================================================
# Kim et al.: FSD50K, ESC-50
# ============================================================================================
FSD50K_SPLITS = ("dev", "train", "val", "eval", "all")


def _resolve_ontology(root: Path, ontology) -> Path:
    if ontology is None:
        p = root / "ontology.json"
    else:
        p = Path(ontology).expanduser()
        p = p / "ontology.json" if p.is_dir() else p
    if not p.is_file():
        raise UserError(f"FSD50K labels are AudioSet ids and need AudioSet's ontology.json, not found at {p}: "
                        "pass ontology=PATH (github.com/audioset/ontology, or the shared audioset/ folder of "
                        "--audioset-meta)")
    return p


def load_fsd50k(root, sr: int = 16000, clip_s: float = 10.0, split: str = "dev", no_music: bool = False,
                ontology=None, kim_music_names_path=None, max_clips: int | None = None, seed: int = 0,
                memmap_path=None, progress: bool = True) -> ClipSet:
    """FSD50K (Fonseca et al. 2022) with AudioSet-ontology labels: Kim et al.'s training set without AudioSet.

    Parameters
    ----------
    root : path
        The FSD50K folder (see Layout).
    sr : int
        Output sample rate in Hz (the clips are 44.1 kHz).
    clip_s : float
        Every clip is zero-padded or cut to this length (the clips are 0.3-30 s).
    split : {"dev", "train", "val", "eval", "all"}
        ``dev`` = FSD50K's train + val (their ``split`` column), ``eval`` = the evaluation set (split
        ``"test"`` in the ClipSet), ``all`` = both.
    no_music : bool
        Kim et al.'s "no music" condition: drop every clip with any label in the Music subtree
        (``/m/04rlf`` and below) or one of the singing classes, via
        :func:`stimuli.loaders.music_class_mask` (the AudioSet path's code); the dropped clips are
        never read. Equal to :func:`stimuli.dataset.training_variant` ``"without_music"`` of the full load.
    ontology : path, optional
        AudioSet's ``ontology.json`` (or its folder); default ``<root>/ontology.json``.
    kim_music_names_path : path, optional
        Kim et al.'s ``music_categories.txt`` (passed on to ``music_class_mask``).
    max_clips : int, optional
        A seeded draw of at most this many listed clips (for quick runs).
    seed : int
        Seed of that draw.
    memmap_path : path, optional
        Write the audio into a ``.npy`` memory map there (dev at 16 kHz x 10 s is ~26 GB as float32).
    progress : bool
        Show a progress bar.

    Returns
    -------
    ClipSet
        Label columns = the 200 classes of ``vocabulary.csv`` (AudioSet ids in
        ``manifest["class_ids"]``, display names from the ontology); ``music_classes`` from
        ``music_class_mask``, ``speech_classes`` = the Speech subtree; ``manifest["dropped_music"]``
        counts the clips the no-music filter removed.

    Layout
    ------
    ::

        <root>/
          FSD50K.dev_audio/<fname>.wav          40,966 clips (Freesound ids as names)
          FSD50K.eval_audio/<fname>.wav         10,231 clips
          FSD50K.ground_truth/
            dev.csv          fname,labels,mids,split   (split: train | val)
            eval.csv         fname,labels,mids
            vocabulary.csv   <index>,<label>,<mid>     (no header, 200 rows)
          FSD50K.metadata/, FSD50K.doc/           (not read)
          ontology.json      AudioSet's ontology (or pass ontology=PATH)

    ``labels`` / ``mids`` are quoted, comma-separated and smeared up the ontology (a clip labelled
    ``Electric_guitar`` also carries ``Guitar, ..., Music``).
    """
    from stimuli.loaders import _multi_hot, load_ontology, music_class_mask, speech_class_mask

    if split not in FSD50K_SPLITS:
        raise UserError(f"unknown FSD50K split {split!r}: use one of {', '.join(FSD50K_SPLITS)}")
    root = _require_root(root, "fsd50k", nested=("FSD50K",))
    gt = root / "FSD50K.ground_truth"
    parts = {"dev": ("dev.csv", "FSD50K.dev_audio"), "eval": ("eval.csv", "FSD50K.eval_audio")}
    wanted = ["dev"] if split in ("dev", "train", "val") else ["eval"] if split == "eval" else ["dev", "eval"]
    vocab_path = _require_metadata(gt / "vocabulary.csv", "fsd50k", "vocabulary")
    csvs = {p: _require_metadata(gt / parts[p][0], "fsd50k", "ground truth") for p in wanted}
    audio_dirs = {p: _require_audio_dir(root / parts[p][1], "fsd50k", f"FSD50K.ground_truth/{parts[p][0]}",
                                        f"the clips as {parts[p][1]}/<fname>.wav (join and unzip the "
                                        f"{parts[p][1]}.z01.. parts)") for p in wanted}
    onto_path = _resolve_ontology(root, ontology)
    onto = load_ontology(onto_path)

    class_ids = []
    with vocab_path.open(newline="", encoding="utf-8") as f:
        for lineno, rec in enumerate(csv.reader(f), 1):
            if not rec:
                continue
            if len(rec) != 3:
                raise UserError(f"{vocab_path}: line {lineno} should be <index>,<label>,<mid>, got {rec}")
            class_ids.append(rec[2].strip())
    unknown = sorted(set(class_ids) - set(onto))
    if unknown:
        raise UserError(f"FSD50K classes {unknown[:3]} are not in {onto_path}: use AudioSet's ontology.json "
                        "(github.com/audioset/ontology)")

    rows = []
    for p in wanted:
        required = ("fname", "labels", "mids", "split") if p == "dev" else ("fname", "labels", "mids")
        for r in _read_csv(csvs[p], required, "fsd50k"):
            mids = [m.strip() for m in r["mids"].split(",") if m.strip()]
            bad = sorted(set(mids) - set(class_ids))
            if bad:
                raise UserError(f"{csvs[p]}: clip {r['fname']} has ids {bad[:3]} missing from vocabulary.csv: "
                                "use the ground-truth files of one FSD50K release")
            if p == "dev" and r["split"] not in ("train", "val"):
                raise UserError(f"{csvs[p]}: clip {r['fname']} has split {r['split']!r}, expected train or val")
            sp = r["split"] if p == "dev" else "test"
            rows.append(dict(fname=r["fname"], mids=mids, split=sp, file=audio_dirs[p] / f"{r['fname']}.wav"))
    if split in ("train", "val"):
        rows = [r for r in rows if r["split"] == split]

    music = music_class_mask(onto, class_ids, kim_music_names_path)
    speech = speech_class_mask(onto, class_ids)
    labels_all = _multi_hot([r["mids"] for r in rows], class_ids)
    dropped = 0
    if no_music:
        keep = labels_all[:, music].sum(axis=1) == 0
        dropped = int((~keep).sum())
        rows = [r for r, k in zip(rows, keep) if k]
    rows = [rows[i] for i in _draw(len(rows), max_clips, seed)]

    n_samples = int(round(clip_s * sr))
    loaded = _read_clips([r["file"] for r in rows], root, sr, n_samples, "FSD50K clips", progress, memmap_path)
    _check_usable("fsd50k", len(rows), len(loaded.kept), loaded.missing, loaded.corrupt,
                  ", ".join(str(c) for c in csvs.values()))
    kept = [rows[i] for i in loaded.kept]

    from harness.cache import folder_manifest

    meta_files = [vocab_path, *csvs.values()]
    kim_parts = []
    if kim_music_names_path is not None:
        kp = Path(kim_music_names_path)
        kim_parts = [folder_manifest(kp.parent, files=[kp], name="fsd50k.kim_music_names")]
    data = _data_manifest("fsd50k", root, [r["file"] for r in kept], meta_files,
                          extra_parts=[folder_manifest(onto_path.parent, files=[onto_path], name="fsd50k.ontology"),
                                       *kim_parts],
                          sr=int(sr), clip_s=float(clip_s), split=split, no_music=bool(no_music),
                          max_clips=max_clips, seed=int(seed))
    manifest = _manifest("fsd50k", root, data, len(rows), loaded, sr=sr, clip_s=clip_s, split_name=split,
                         no_music=bool(no_music), dropped_music=dropped, class_ids=class_ids,
                         **({"variant": "without_music"} if no_music else {}))
    return ClipSet(audio=loaded.audio, sr=sr, labels=_multi_hot([r["mids"] for r in kept], class_ids),
                   class_names=[onto[c]["name"] for c in class_ids], music_classes=music, speech_classes=speech,
                   split=np.array([r["split"] for r in kept], dtype=str), clip_ids=[r["fname"] for r in kept],
                   manifest=manifest)


ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
#: ESC-50's five major categories (Piczak 2015), ten classes each: targets 0-9, 10-19, ..., 40-49.
ESC50_MAJOR_CATEGORIES = ("Animals", "Natural soundscapes & water sounds", "Human, non-speech sounds",
                          "Interior/domestic sounds", "Exterior/urban noises")


def esc50_major_category(targets) -> np.ndarray:
    """The major category (:data:`ESC50_MAJOR_CATEGORIES`) of each ESC-50 target id (0-49), as str."""
    t = np.asarray(targets, dtype=int)
    if t.size and (t.min() < 0 or t.max() > 49):
        raise UserError(f"ESC-50 target ids are 0-49, got {int(t.min())}-{int(t.max())}: meta/esc50.csv is not "
                        f"the one shipped with the dataset")
    return np.array([ESC50_MAJOR_CATEGORIES[k // 10] for k in t], dtype=str)


def require_esc50_categories(root, what: str = "this claim") -> Path:
    """Check, from ``meta/esc50.csv`` alone (no audio is read), that an ESC-50 folder has clips of all five
    major categories (:data:`ESC50_MAJOR_CATEGORIES`); returns the folder (the repository, descending into
    ``ESC-50-master/``). A stand-in folder without one stops with a one-line error naming the file."""
    root = _require_root(root, "esc50", nested=("ESC-50-master",))
    meta = _require_metadata(root / "meta" / "esc50.csv", "esc50", "metadata")
    rows = _read_csv(meta, ESC50_COLUMNS, "esc50")
    try:
        targets = [int(r["target"]) for r in rows]
    except ValueError:
        raise UserError(f"{meta}: target must be an integer (0-49) in every row") from None
    present = set(esc50_major_category(targets))
    absent = [c for c in ESC50_MAJOR_CATEGORIES if c not in present]
    if absent:
        raise UserError(f"{what} compares music with each of ESC-50's five major categories, but {meta} lists no "
                        f"clip of {', '.join(repr(c) for c in absent)} (targets {10 * ESC50_MAJOR_CATEGORIES.index(absent[0])}"
                        f"-{10 * ESC50_MAJOR_CATEGORIES.index(absent[0]) + 9}): pass the whole ESC-50 with --esc50 DIR")
    return root


def load_esc50(root, sr: int = 16000, clip_s: float = 5.0, folds=None, progress: bool = True) -> ClipSet:
    """ESC-50 (Piczak 2015): 2,000 environmental sounds in 50 classes, a held-out set for Kim et al.

    Parameters
    ----------
    root : path
        The ESC-50 folder (the unpacked repository; its parent holding ``ESC-50-master/`` also works).
    sr : int
        Output sample rate in Hz (the clips are 44.1 kHz).
    clip_s : float
        Clips are zero-padded or cut to this length (they are 5 s).
    folds : iterable of int, optional
        Keep only these of the 5 folds (clips from one source recording share a fold).
    progress : bool
        Show a progress bar.

    Returns
    -------
    ClipSet
        One label column per category in ``target`` order (50), ``categories`` = the category, every
        clip in split ``"test"``; no class counts as music or speech (the human non-speech classes
        such as ``laughing`` or ``crying_baby`` are not speech). ``manifest["fold"]`` / ``["esc10"]`` /
        ``["target"]`` / ``["src_file"]`` hold each clip's fold, ESC-10 flag, target id (0-49; its major
        category: :func:`esc50_major_category`) and source recording.

    Layout
    ------
    ::

        <root>/                      (the repository, e.g. ESC-50-master/)
          audio/<fold>-<src_file>-<take>-<target>.wav   2,000 clips, 5 s, 44.1 kHz mono
          meta/esc50.csv    filename,fold,target,category,esc10,src_file,take
    """
    root = _require_root(root, "esc50", nested=("ESC-50-master",))
    meta = _require_metadata(root / "meta" / "esc50.csv", "esc50", "metadata")
    audio_dir = _require_audio_dir(root / "audio", "esc50", "meta/esc50.csv", "the clips as audio/<filename>")
    rows = _read_csv(meta, ESC50_COLUMNS, "esc50")
    try:
        for r in rows:
            r["fold"], r["target"] = int(r["fold"]), int(r["target"])
    except ValueError:
        raise UserError(f"{meta}: fold and target must be integers (row {r})") from None
    names_by_target = {}
    for r in rows:
        names_by_target.setdefault(r["target"], r["category"])
    names = [names_by_target[t] for t in sorted(names_by_target)]
    if folds is not None:
        folds = sorted({int(f) for f in folds})
        rows = [r for r in rows if r["fold"] in folds]
        if not rows:
            raise UserError(f"{meta} has no clips in folds {folds}: ESC-50 folds are 1-5")
    n_samples = int(round(clip_s * sr))
    loaded = _read_clips([audio_dir / r["filename"] for r in rows], root, sr, n_samples, "ESC-50 clips", progress)
    _check_usable("esc50", len(rows), len(loaded.kept), loaded.missing, loaded.corrupt, str(meta))
    kept = [rows[i] for i in loaded.kept]
    data = _data_manifest("esc50", root, [audio_dir / r["filename"] for r in kept], [meta], sr=int(sr),
                          clip_s=float(clip_s), folds=folds)
    manifest = _manifest("esc50", root, data, len(rows), loaded, sr=sr, clip_s=clip_s, folds=folds,
                         fold=[r["fold"] for r in kept], esc10=[r["esc10"] == "True" for r in kept],
                         target=[r["target"] for r in kept], src_file=[r["src_file"] for r in kept])
    return ClipSet(audio=loaded.audio, sr=sr, labels=_one_hot([r["category"] for r in kept], names),
                   class_names=names, music_classes=np.zeros(len(names), bool),
                   speech_classes=np.zeros(len(names), bool), split=np.array(["test"] * len(kept)),
                   clip_ids=[Path(r["filename"]).stem for r in kept],
                   categories=np.array([r["category"] for r in kept]), manifest=manifest)


# ============================================================================================
# Grasse & Tata: LibriSpeech (speech), FMA (music)
# ============================================================================================
LIBRISPEECH_SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100",
                       "train-clean-360", "train-other-500")


def load_librispeech(root, subset: str = "dev-clean", sr: int = 16000, clip_s: float = 4.0,
                     max_clips: int | None = None, seed: int = 0, progress: bool = True,
                     memmap_path=None) -> ClipSet:
    """LibriSpeech (Panayotov et al. 2015): read English speech, the speech half of Grasse & Tata's SSL data.

    Parameters
    ----------
    root : path
        The ``LibriSpeech`` folder (or its parent).
    subset : str
        One of :data:`LIBRISPEECH_SUBSETS` (``train-*`` -> split ``"train"``, ``dev-*`` -> ``"val"``,
        ``test-*`` -> ``"test"``).
    sr : int
        Output sample rate in Hz (the files are 16 kHz FLAC).
    clip_s : float
        The first ``clip_s`` seconds of each utterance (zero-padded when shorter).
    max_clips : int, optional
        A seeded draw of at most this many utterances (train-clean-100 alone is 28,539).
    seed : int
        Seed of that draw.
    progress : bool
        Show a progress bar.
    memmap_path : path, optional
        Write the audio into a ``.npy`` memory map there.

    Returns
    -------
    ClipSet
        One label column ``"Speech"`` (a speech class), ``clip_ids`` = utterance ids,
        ``categories`` = speaker ids; ``manifest["transcripts"]`` holds each clip's transcript and
        ``manifest["unlisted"]`` counts FLAC files without a transcript line (not read).

    Layout
    ------
    ::

        <root>/LibriSpeech/            (or <root> itself)
          <subset>/<speaker>/<chapter>/
            <speaker>-<chapter>-<utterance>.flac      16 kHz mono FLAC
            <speaker>-<chapter>.trans.txt             "<utterance id> <TRANSCRIPT>" per line
          SPEAKERS.TXT, CHAPTERS.TXT, BOOKS.TXT       (not read)
    """
    if subset not in LIBRISPEECH_SUBSETS:
        raise UserError(f"unknown LibriSpeech subset {subset!r}: use one of {', '.join(LIBRISPEECH_SUBSETS)}")
    root = _require_root(root, "librispeech", nested=("LibriSpeech",))
    sub = root / subset
    if not sub.is_dir():
        found = [p.name for p in sorted(root.iterdir()) if p.is_dir() and p.name in LIBRISPEECH_SUBSETS]
        if found:
            raise UserError(f"LibriSpeech subset {subset} is not in {root} (found: {', '.join(found)}): download "
                            f"{subset}.tar.gz from {_spec('librispeech').url} or choose one of those")
        raise UserError(f"LibriSpeech at {root} has no <subset>/ folder (found: {_listing(root)}): expected "
                        f"{subset}/<speaker>/<chapter>/*.flac as unpacked from {subset}.tar.gz (layout: {DOCS_REF})")
    trans_files = sorted(sub.glob("*/*/*.trans.txt"))
    if not trans_files:
        raise UserError(f"LibriSpeech {subset} at {sub} has no <speaker>/<chapter>/*.trans.txt transcripts: "
                        f"unpack {subset}.tar.gz from {_spec('librispeech').url} again (layout: {DOCS_REF})")
    rows = []
    for t in trans_files:
        for lineno, ln in enumerate(t.read_text(encoding="utf-8").splitlines(), 1):
            if not ln.strip():
                continue
            utt, _, text = ln.strip().partition(" ")
            if utt.count("-") != 2:
                raise UserError(f"{t}: line {lineno} should start with <speaker>-<chapter>-<utterance>, got {utt!r}")
            rows.append(dict(utt=utt, text=text, speaker=utt.split("-")[0], file=t.parent / f"{utt}.flac"))
    listed = {r["file"] for r in rows}
    unlisted = sum(1 for f in sub.glob("*/*/*.flac") if f not in listed)
    rows = [rows[i] for i in _draw(len(rows), max_clips, seed)]
    n_samples = int(round(clip_s * sr))
    loaded = _read_clips([r["file"] for r in rows], root, sr, n_samples, f"LibriSpeech {subset}", progress,
                         memmap_path)
    _check_usable("librispeech", len(rows), len(loaded.kept), loaded.missing, loaded.corrupt,
                  f"{sub}/*/*/*.trans.txt")
    kept = [rows[i] for i in loaded.kept]
    data = _data_manifest("librispeech", root, [r["file"] for r in kept], trans_files, subset=subset, sr=int(sr),
                          clip_s=float(clip_s), max_clips=max_clips, seed=int(seed))
    split = "train" if subset.startswith("train") else "val" if subset.startswith("dev") else "test"
    manifest = _manifest("librispeech", root, data, len(rows), loaded, sr=sr, clip_s=clip_s, subset=subset,
                         unlisted=unlisted, transcripts=[r["text"] for r in kept])
    return ClipSet(audio=loaded.audio, sr=sr, labels=np.ones((len(kept), 1), bool), class_names=["Speech"],
                   music_classes=np.array([False]), speech_classes=np.array([True]),
                   split=np.array([split] * len(kept)), clip_ids=[r["utt"] for r in kept],
                   categories=np.array([r["speaker"] for r in kept]), manifest=manifest)


FMA_SUBSETS = ("small", "medium", "large")
FMA_SPLITS = {"training": "train", "validation": "val", "test": "test"}


def read_fma_tracks(path) -> list[dict]:
    """Read FMA's ``tracks.csv`` (two header rows ``<group>`` / ``<field>``, then a ``track_id`` row).

    Returns
    -------
    list of dict
        ``{"track_id": int, "subset", "split", "genre_top"}`` per track, in file order.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            top, sub = next(reader), next(reader)
        except StopIteration:
            raise UserError(f"FMA metadata {path} is empty: download fma_metadata.zip again") from None
        cols = {(a.strip(), b.strip()): i for i, (a, b) in enumerate(zip(top, sub))}
        need = {k: cols.get(k) for k in (("set", "subset"), ("set", "split"), ("track", "genre_top"))}
        if None in need.values():
            missing = [".".join(k) for k, v in need.items() if v is None]
            raise UserError(f"FMA metadata {path} lacks the columns {', '.join(missing)}: expected fma_metadata/"
                            "tracks.csv with its two header rows (group, field)")
        out = []
        for rec in reader:
            if not rec or rec[0].strip() in ("", "track_id"):
                continue
            try:
                tid = int(rec[0])
            except ValueError:
                raise UserError(f"FMA metadata {path}: track id {rec[0]!r} is not an integer") from None
            get = lambda k: rec[need[k]].strip() if need[k] < len(rec) else ""  # noqa: E731
            out.append({"track_id": tid, "subset": get(("set", "subset")), "split": get(("set", "split")),
                        "genre_top": get(("track", "genre_top"))})
    return out


def fma_audio_path(audio_dir: Path, track_id: int) -> Path:
    """``<audio_dir>/<first 3 digits>/<6-digit id>.mp3`` (FMA's layout)."""
    tid = f"{int(track_id):06d}"
    return Path(audio_dir) / tid[:3] / f"{tid}.mp3"


def load_fma(root, subset: str = "small", sr: int = 16000, clip_s: float = 10.0, split: str | None = None,
             max_clips: int | None = None, seed: int = 0, progress: bool = True, memmap_path=None) -> ClipSet:
    """FMA (Defferrard et al. 2017), Creative-Commons music: the music half of Grasse & Tata's SSL data.

    Parameters
    ----------
    root : path
        The folder holding ``fma_metadata/`` and ``fma_<subset>/``.
    subset : {"small", "medium", "large"}
        ``small`` = 8,000 30-s clips in 8 balanced genres; ``medium`` (25,000) includes ``small``,
        ``large`` (106,574) includes both.
    sr : int
        Output sample rate in Hz (the MP3s are mostly 44.1 kHz stereo; read through libsndfile >= 1.1).
    clip_s : float
        The first ``clip_s`` seconds of each clip (zero-padded when shorter).
    split : {"train", "val", "test"}, optional
        Keep FMA's own split (``set.split``: training / validation / test); default all.
    max_clips : int, optional
        A seeded draw of at most this many tracks.
    seed : int
        Seed of that draw.
    progress : bool
        Show a progress bar.
    memmap_path : path, optional
        Write the audio into a ``.npy`` memory map there.

    Returns
    -------
    ClipSet
        One label column per top genre (``track.genre_top``; empty for tracks without one), every
        column a music class, ``categories`` = the genre, ``clip_ids`` = 6-digit track ids.

    Notes
    -----
    A few MP3s of the subsets are known to be truncated or undecodable (the FMA issue tracker lists
    them); they are counted in ``manifest["corrupt"]``. The audio licences are the artists' own
    (mostly CC BY / BY-NC / BY-NC-ND / BY-SA), per track.

    Layout
    ------
    ::

        <root>/
          fma_metadata/tracks.csv       two header rows: <group>,... / <field>,... then a track_id row;
                                        columns used: set.subset, set.split, track.genre_top
          fma_<subset>/<NNN>/<NNNNNN>.mp3   e.g. fma_small/000/000002.mp3 (first 3 digits of the id)
    """
    if subset not in FMA_SUBSETS:
        raise UserError(f"unknown FMA subset {subset!r}: use one of {', '.join(FMA_SUBSETS)}")
    if split is not None and split not in FMA_SPLITS.values():
        raise UserError(f"unknown FMA split {split!r}: use train, val or test (FMA's training/validation/test)")
    root = _require_root(root, "fma")
    tracks_csv = _require_metadata(root / "fma_metadata" / "tracks.csv", "fma", "metadata")
    audio_dir = _require_audio_dir(root / f"fma_{subset}", "fma", "fma_metadata/tracks.csv",
                                   f"the MP3s as fma_{subset}/<NNN>/<NNNNNN>.mp3 (unzip fma_{subset}.zip here)")
    allowed = set(FMA_SUBSETS[: FMA_SUBSETS.index(subset) + 1])
    rows = [r for r in read_fma_tracks(tracks_csv) if r["subset"] in allowed]
    for r in rows:
        r["split"] = FMA_SPLITS.get(r["split"], r["split"])
    if split is not None:
        rows = [r for r in rows if r["split"] == split]
    if not rows:
        raise UserError(f"{tracks_csv} lists no tracks of subset {subset}" + (f", split {split}" if split else "")
                        + ": check the metadata (set.subset / set.split columns)")
    rows = [rows[i] for i in _draw(len(rows), max_clips, seed)]
    files = [fma_audio_path(audio_dir, r["track_id"]) for r in rows]
    n_samples = int(round(clip_s * sr))
    loaded = _read_clips(files, root, sr, n_samples, f"FMA {subset}", progress, memmap_path)
    _check_usable("fma", len(rows), len(loaded.kept), loaded.missing, loaded.corrupt, str(tracks_csv))
    kept = [rows[i] for i in loaded.kept]
    names = sorted({r["genre_top"] for r in kept if r["genre_top"]})
    data = _data_manifest("fma", root, [files[i] for i in loaded.kept], [tracks_csv], subset=subset, split=split,
                          sr=int(sr), clip_s=float(clip_s), max_clips=max_clips, seed=int(seed))
    manifest = _manifest("fma", root, data, len(rows), loaded, sr=sr, clip_s=clip_s, subset=subset, split_name=split)
    split_arr = np.array([r["split"] if r["split"] in FMA_SPLITS.values() else "train" for r in kept])
    return ClipSet(audio=loaded.audio, sr=sr, labels=_one_hot([r["genre_top"] for r in kept], names),
                   class_names=names, music_classes=np.ones(len(names), bool),
                   speech_classes=np.zeros(len(names), bool), split=split_arr,
                   clip_ids=[f"{r['track_id']:06d}" for r in kept],
                   categories=np.array([r["genre_top"] for r in kept]), manifest=manifest)


# ============================================================================================
# Kong et al.: GTZAN (global tags)
# ============================================================================================
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
GTZAN_PER_GENRE = 100


def _gtzan_dirs(root: Path) -> tuple[Path, Path | None]:
    """(the folder of genre folders, the features_30_sec.csv next to it or None)."""
    for base in (root, root / "Data"):
        for name in ("genres_original", "genres"):
            if (base / name).is_dir():
                csv_path = base / "features_30_sec.csv"
                return base / name, (csv_path if csv_path.is_file() else None)
    if any((root / g).is_dir() for g in GTZAN_GENRES):
        return root, (root.parent / "features_30_sec.csv" if (root.parent / "features_30_sec.csv").is_file() else None)
    raise UserError(f"GTZAN at {root} has no genres_original/ (or genres/) folder (found: {_listing(root)}): "
                    f"expected genres_original/<genre>/<genre>.000NN.wav (layout: {DOCS_REF})")


def load_gtzan(root, sr: int = 16000, clip_s: float = 30.0, progress: bool = True) -> ClipSet:
    """GTZAN (Tzanetakis & Cook 2002): 1,000 30-s excerpts in 10 genres, Kong et al.'s global tagging task.

    Parameters
    ----------
    root : path
        The GTZAN folder: the Kaggle copy (``Data/`` or its content) or the original ``genres/``.
    sr : int
        Output sample rate in Hz (the excerpts are 22,050 Hz mono).
    clip_s : float
        Clips are zero-padded or cut to this length (most are 30 s, a few slightly shorter).
    progress : bool
        Show a progress bar.

    Returns
    -------
    ClipSet
        10 genre columns (:data:`GTZAN_GENRES`), every one a music class, ``categories`` = the genre,
        every clip in split ``"test"`` (the claim code splits by track).

    Notes
    -----
    Known faults (Sturm 2012, 2013): exact and near repetitions of excerpts, the same artist in
    training and test folds of random splits, mislabelled excerpts and distorted recordings; an
    artist-filtered split gives lower accuracies than a random one. In the Kaggle copy
    ``jazz.00054.wav`` is widely reported not to decode (counted as corrupt). The audio was
    taken from CDs and radio and carries no licence: use it for research only.

    Layout
    ------
    ::

        <root>/                          (Kaggle: the Data/ folder, or its parent)
          genres_original/<genre>/<genre>.000NN.wav   NN = 00..99, 22,050 Hz mono
          features_30_sec.csv            filename,length,...,label  (optional: the file list)
        or the original release:
        <root>/genres/<genre>/<genre>.000NN.au

    Without ``features_30_sec.csv`` the list is the canonical 10 x 100 names, so a missing excerpt
    is still counted as missing.
    """
    root = _require_root(root, "gtzan")
    genres_dir, listing = _gtzan_dirs(root)
    exts = (".wav", ".au")
    rows = []
    if listing is not None:
        for r in _read_csv(listing, ("filename", "label"), "gtzan"):
            stem = Path(r["filename"]).stem
            rows.append(dict(stem=stem, genre=r["label"], file=_find_ext(genres_dir / r["label"], stem, exts)))
    else:
        for g in GTZAN_GENRES:
            for k in range(GTZAN_PER_GENRE):
                stem = f"{g}.{k:05d}"
                rows.append(dict(stem=stem, genre=g, file=_find_ext(genres_dir / g, stem, exts)))
    unknown = sorted({r["genre"] for r in rows} - set(GTZAN_GENRES))
    if unknown:
        raise UserError(f"GTZAN labels {unknown[:3]} are not GTZAN's 10 genres ({', '.join(GTZAN_GENRES)}): "
                        f"check {listing}")
    n_samples = int(round(clip_s * sr))
    loaded = _read_clips([r["file"] for r in rows], root, sr, n_samples, "GTZAN excerpts", progress)
    _check_usable("gtzan", len(rows), len(loaded.kept), loaded.missing, loaded.corrupt,
                  str(listing) if listing else f"the canonical list of {genres_dir}")
    kept = [rows[i] for i in loaded.kept]
    data = _data_manifest("gtzan", root, [r["file"] for r in kept], [listing] if listing else [], sr=int(sr),
                          clip_s=float(clip_s))
    manifest = _manifest("gtzan", root, data, len(rows), loaded, sr=sr, clip_s=clip_s,
                         listing=_rel(listing, root) if listing else "canonical")
    names = list(GTZAN_GENRES)
    return ClipSet(audio=loaded.audio, sr=sr, labels=_one_hot([r["genre"] for r in kept], names), class_names=names,
                   music_classes=np.ones(len(names), bool), speech_classes=np.zeros(len(names), bool),
                   split=np.array(["test"] * len(kept)), clip_ids=[r["stem"] for r in kept],
                   categories=np.array([r["genre"] for r in kept]), manifest=manifest)


def _find_ext(folder: Path, stem: str, exts) -> Path:
    """``folder/stem<ext>`` for the first existing extension, else the first candidate (reported missing)."""
    for e in exts:
        if (folder / f"{stem}{e}").is_file():
            return folder / f"{stem}{e}"
    return folder / f"{stem}{exts[0]}"


# ============================================================================================
# Grasse & Tata: transcription data (MAESTRO, GuitarSet) -> the paper tier's *.npz excerpts
# ============================================================================================
def read_midi_notes(path, sustain: bool = True):
    """The notes of a MIDI file in seconds (tempo map applied), via ``music21.midi``.

    Parameters
    ----------
    path : path
        A standard MIDI file (format 0 or 1).
    sustain : bool
        Extend notes released while the sustain pedal (CC 64 >= 64) is down to the pedal's release or
        the next onset of the same pitch, whichever comes first (the convention of MAESTRO's
        transcription baselines, Hawthorne et al. 2019).

    Returns
    -------
    stimuli.music.NoteList
        ``onset_s``, ``offset_s``, ``midi``, ``velocity`` and ``part`` (the MIDI channel), sorted by onset.

    Raises
    ------
    UserError
        Naming the file when it is missing or not a readable MIDI file.
    """
    from music21 import midi as m21midi

    from stimuli.music import NoteList

    path = Path(path)
    if not path.is_file():
        raise UserError(f"MIDI file {path} does not exist")
    try:
        mf = m21midi.MidiFile()
        mf.readstr(path.read_bytes())
    except Exception as e:  # music21 raises MidiException, IndexError, struct errors on bad files
        raise UserError(f"MIDI file {path} is corrupt or unreadable ({type(e).__name__}: {str(e)[:60]})") from None
    tpq = mf.ticksPerQuarterNote or 480
    events, tempos = [], []
    NOTE_ON, NOTE_OFF = m21midi.ChannelVoiceMessages.NOTE_ON, m21midi.ChannelVoiceMessages.NOTE_OFF
    CC, SET_TEMPO = m21midi.ChannelVoiceMessages.CONTROLLER_CHANGE, m21midi.MetaEvents.SET_TEMPO
    for order, track in enumerate(mf.tracks):
        tick = 0
        for e in track.events:
            if e.isDeltaTime():
                tick += int(e.time)
                continue
            if e.type == SET_TEMPO and e.data:
                tempos.append((tick, int.from_bytes(bytes(e.data[:3]), "big")))
            elif e.type in (NOTE_ON, NOTE_OFF):
                on = e.type == NOTE_ON and (e.velocity or 0) > 0
                events.append((tick, 1 if on else 0, order, e.channel, "on" if on else "off", int(e.pitch),
                               int(e.velocity or 0)))
            elif e.type == CC and int(e.data if isinstance(e.data, int) else -1) == 64:
                events.append((tick, 0, order, e.channel, "pedal", 64, int(e.velocity or 0)))
    seconds = _tick_to_seconds(tempos, tpq)
    events.sort(key=lambda ev: (ev[0], ev[1]))    # offs and pedal before ons at the same tick
    notes = []                                     # (onset, offset, pitch, velocity, channel)
    active: dict = {}                              # (channel, pitch) -> [(onset, velocity)]
    held: dict = {}                                # (channel, pitch) -> [(onset, velocity)] released under pedal
    pedal: dict = {}
    for tick, _, _, ch, kind, pitch, vel in events:
        t = seconds(tick)
        key = (ch, pitch)
        if kind == "pedal":
            down = vel >= 64
            if pedal.get(ch) and not down:
                for k in [k for k in held if k[0] == ch]:
                    notes += [(on, t, k[1], v, ch) for on, v in held.pop(k)]
            pedal[ch] = down
        elif kind == "on":
            for on, v in held.pop(key, []) + active.pop(key, []):
                notes.append((on, t, pitch, v, ch))
            active[key] = [(t, vel)]
        else:
            started = active.pop(key, [])
            if sustain and pedal.get(ch):
                held.setdefault(key, []).extend(started)
            else:
                notes += [(on, t, pitch, v, ch) for on, v in started]
    t_end = seconds(max([ev[0] for ev in events], default=0))
    for d in (active, held):
        for (ch, pitch), lst in d.items():
            notes += [(on, t_end, pitch, v, ch) for on, v in lst]
    notes.sort(key=lambda n: (n[0], n[2]))
    arr = np.array([n[:4] for n in notes], dtype=np.float64).reshape(-1, 4)
    return NoteList(onset_s=arr[:, 0], offset_s=arr[:, 1], midi=arr[:, 2].astype(np.int64),
                    part=np.array([n[4] for n in notes], dtype=np.int64), velocity=arr[:, 3])


def _tick_to_seconds(tempos: list, tpq: int) -> Callable[[int], float]:
    """tick -> seconds under a tempo map ``[(tick, microseconds per quarter)]`` (default 120 qpm)."""
    tempos = sorted(tempos)
    if not tempos or tempos[0][0] != 0:
        tempos = [(0, 500000)] + tempos
    starts = [0.0]
    for (t0, us), (t1, _) in zip(tempos[:-1], tempos[1:]):
        starts.append(starts[-1] + (t1 - t0) * us / 1e6 / tpq)
    ticks = [t for t, _ in tempos]

    def seconds(tick: int) -> float:
        i = int(np.searchsorted(ticks, tick, side="right")) - 1
        return starts[i] + (tick - ticks[i]) * tempos[i][1] / 1e6 / tpq

    return seconds


MAESTRO_SPLITS = ("train", "validation", "test")
#: Output sub-folders of :func:`write_transcription_npz`, in the order the paper tier sorts them: its
#: held-out excerpts are the last ``heldout_tracks`` files, so they come from the dataset's test split.
NPZ_SPLIT_FOLDERS = {"train": "1_train", "validation": "2_validation", "test": "3_test"}


class TrackList(NamedTuple):
    """The recordings of a transcription dataset: its resolved folder, one dict per recording, and the
    metadata files read to list them."""

    root: Path
    tracks: list
    meta_files: list


def maestro_tracks(root) -> TrackList:
    """MAESTRO's performances from its metadata (``maestro-v*.csv``, else ``.json``), in metadata order:
    ``tracks`` = ``{id, split, audio, midi, duration_s, composer, title}`` per performance."""
    root = _require_root(root, "maestro", nested=("maestro-v3.0.0", "maestro-v2.0.0"))
    csvs = sorted(root.glob("maestro-v*.csv"))
    jsons = sorted(root.glob("maestro-v*.json"))
    if csvs:
        meta = csvs[-1]
        recs = _read_csv(meta, ("split", "midi_filename", "audio_filename"), "maestro")
    elif jsons:
        meta = jsons[-1]
        try:
            cols = json.loads(meta.read_text(encoding="utf-8"))
            if isinstance(cols, list):                      # v1/v2 json: a list of records
                recs = cols
            else:                                           # v3 json: {column: {row: value}}
                idx = sorted(cols["midi_filename"], key=int)
                recs = [{c: cols[c].get(i, "") for c in cols} for i in idx]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
            raise UserError(f"MAESTRO metadata {meta} is not MAESTRO's json ({type(e).__name__}): download it again "
                            f"from {_spec('maestro').url}") from None
    else:
        raise UserError(f"MAESTRO metadata maestro-v3.0.0.csv (or .json) does not exist in {root}: download "
                        f"MAESTRO from {_spec('maestro').url} (layout: {DOCS_REF})")
    tracks = []
    for r in recs:
        sp = str(r.get("split", "")).strip()
        if sp not in MAESTRO_SPLITS:
            raise UserError(f"{meta}: split {sp!r} of {r.get('midi_filename')} is not one of "
                            f"{', '.join(MAESTRO_SPLITS)}")
        midi_rel = str(r["midi_filename"]).strip()
        tracks.append(dict(id=Path(midi_rel).stem, split=sp, audio=root / str(r["audio_filename"]).strip(),
                           midi=root / midi_rel, duration_s=float(r.get("duration") or 0.0),
                           composer=str(r.get("canonical_composer", "")), title=str(r.get("canonical_title", ""))))
    folders = {t["midi"].parent for t in tracks} | {t["audio"].parent for t in tracks}
    if tracks and not any(d.is_dir() for d in folders):
        raise UserError(f"MAESTRO at {root} has {meta.name} but none of its year folders (e.g. "
                        f"{_rel(next(iter(sorted(folders))), root)}/; found: {_listing(root)}): expected "
                        f"<year>/<name>.wav and .midi next to the metadata (layout: {DOCS_REF})")
    return TrackList(root, tracks, [meta])


def guitarset_tracks(root) -> TrackList:
    """GuitarSet's excerpts from its annotation files: ``tracks`` = ``{id, split, audio, annotation, player}``.

    GuitarSet has no official split; players 00-03 are ``train``, 04 ``validation``, 05 ``test``
    (a leave-players-out split, so no player is in two splits).
    """
    root = _require_root(root, "guitarset", nested=("GuitarSet",))
    ann_dir = root / "annotation"
    if not ann_dir.is_dir() or not any(ann_dir.glob("*.jams")):
        raise UserError(f"GuitarSet annotations {ann_dir}/*.jams do not exist: download annotation.zip from "
                        f"{_spec('guitarset').url} (layout: {DOCS_REF})")
    audio_dir = _require_audio_dir(root / "audio_mono-mic", "guitarset", "annotation/*.jams",
                                   "the microphone recordings as audio_mono-mic/<id>_mic.wav (audio_mono-mic.zip)")
    tracks = []
    for a in sorted(ann_dir.glob("*.jams")):
        player = a.stem.split("_")[0]
        sp = {"04": "validation", "05": "test"}.get(player, "train")
        tracks.append(dict(id=a.stem, split=sp, audio=audio_dir / f"{a.stem}_mic.wav", annotation=a, player=player))
    return TrackList(root, tracks, [])


def read_jams(path) -> dict:
    """A JAMS file as JSON, with a one-line error naming it when unreadable."""
    path = Path(path)
    try:
        jam = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(jam, dict) or not isinstance(jam.get("annotations"), list):
            raise ValueError("no annotations list")
        return jam
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise UserError(f"JAMS file {path} is corrupt or unreadable ({type(e).__name__}: {str(e)[:60]})") from None


def _jams_observations(ann: dict) -> list[tuple]:
    """(time, duration, value) of a JAMS annotation in either the sparse (list) or dense (dict) form."""
    data = ann.get("data", [])
    if isinstance(data, dict):
        return list(zip(data.get("time", []), data.get("duration", []), data.get("value", [])))
    return [(d["time"], d["duration"], d["value"]) for d in data]


def guitarset_notes(path):
    """The notes of a GuitarSet JAMS file (its six ``note_midi`` annotations, one per string) as a
    :class:`stimuli.music.NoteList` (pitches rounded to the nearest MIDI note, ``part`` = string 0-5)."""
    from stimuli.music import NoteList

    jam = read_jams(path)
    on, off, pitch, part = [], [], [], []
    try:
        for a in jam["annotations"]:
            if a.get("namespace") != "note_midi":
                continue
            string = int(a.get("annotation_metadata", {}).get("data_source", 0) or 0)
            for t, d, v in _jams_observations(a):
                on.append(float(t))
                off.append(float(t) + float(d))
                pitch.append(int(round(float(v))))
                part.append(string)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"JAMS file {path} has a malformed note_midi annotation ({type(e).__name__})") from None
    order = np.argsort(on, kind="stable")
    return NoteList(onset_s=np.asarray(on)[order], offset_s=np.asarray(off)[order],
                    midi=np.clip(np.asarray(pitch, np.int64)[order], 0, 127), part=np.asarray(part, np.int64)[order],
                    velocity=np.full(len(on), 64.0))


TRANSCRIPTION_SOURCES = {"maestro": maestro_tracks, "guitarset": guitarset_tracks}


def transcription_excerpts(root, dataset: str = "maestro", splits=MAESTRO_SPLITS, excerpt_s: float = 10.0,
                           sr: int = 16000, frame_hop_s: float = 0.01, max_tracks: int | None = None,
                           max_excerpts_per_track: int | None = None, sustain: bool = True,
                           report: dict | None = None) -> Iterator[dict]:
    """Fixed-length excerpts of a transcription dataset with frame-aligned piano rolls.

    Parameters
    ----------
    root : path
        The MAESTRO or GuitarSet folder (:func:`maestro_tracks`, :func:`guitarset_tracks`).
    dataset : {"maestro", "guitarset"}
    splits : iterable of str
        Which of ``train`` / ``validation`` / ``test`` to cut.
    excerpt_s : float
        Excerpt length; excerpts are non-overlapping windows from the start of each recording (only
        whole windows).
    sr : int
        Audio rate in Hz (16 kHz for the Grasse & Tata paper tier).
    frame_hop_s : float
        Piano-roll hop: frame i covers ``[i * hop, (i + 1) * hop)`` of the excerpt and is on for a pitch
        when ``onset <= i * hop < offset`` (:func:`stimuli.music.piano_roll`, as the ci tier's rendered music).
    max_tracks : int, optional
        At most this many recordings per split (the first ones in metadata order).
    max_excerpts_per_track : int, optional
        At most this many windows per recording, spread evenly over it.
    sustain : bool
        Apply the sustain pedal to MIDI notes (:func:`read_midi_notes`; MAESTRO only).
    report : dict, optional
        Filled with ``tracks``, ``missing`` / ``corrupt`` (lists of relative paths and reasons),
        ``audio_files`` / ``label_files`` read and ``meta_files``.

    Yields
    ------
    dict
        ``id`` (``<track>_<window:03d>``), ``track``, ``split``, ``start_s``, ``audio`` float32
        [excerpt samples], ``piano_roll`` bool [frames, 128], ``frame_times_s`` float64 [frames].
    """
    from stimuli.music import NoteList, piano_roll

    if dataset not in TRANSCRIPTION_SOURCES:
        raise UserError(f"unknown transcription dataset {dataset!r}: use one of {', '.join(TRANSCRIPTION_SOURCES)}")
    bad = sorted(set(splits) - set(MAESTRO_SPLITS))
    if bad:
        raise UserError(f"unknown splits {bad}: use {', '.join(MAESTRO_SPLITS)}")
    if not (excerpt_s > 0 and 0 < frame_hop_s < excerpt_s):
        raise UserError(f"excerpt_s={excerpt_s!r} and frame_hop_s={frame_hop_s!r} must be positive, hop < excerpt")
    root, tracks, meta_files = TRANSCRIPTION_SOURCES[dataset](root)
    rep = report if report is not None else {}
    rep.update(listed=0, tracks=0, missing=[], corrupt=[], audio_files=[], label_files=[],
               meta_files=list(meta_files), root=root)
    n = int(round(excerpt_s * sr))
    n_frames = int(np.floor(excerpt_s / frame_hop_s + 1e-9))
    frame_times = np.arange(n_frames) * frame_hop_s
    label_key = "midi" if dataset == "maestro" else "annotation"
    for sp in MAESTRO_SPLITS:
        if sp not in splits:
            continue
        chosen = [t for t in tracks if t["split"] == sp][: max_tracks]
        for t in chosen:
            rep["listed"] += 1
            missing = [f for f in (t["audio"], t[label_key]) if not f.is_file()]
            if missing:
                rep["missing"] += [_rel(f, root) for f in missing]
                continue
            try:
                notes = (read_midi_notes(t["midi"], sustain) if dataset == "maestro"
                         else guitarset_notes(t["annotation"]))
            except UserError as e:
                rep["corrupt"].append({"file": _rel(t[label_key], root), "reason": str(e)})
                continue
            try:
                audio = read_audio(t["audio"], sr)
            except UserError as e:
                rep["corrupt"].append({"file": _rel(t["audio"], root), "reason": str(e)})
                continue
            rep["tracks"] += 1
            rep["audio_files"].append(t["audio"])
            rep["label_files"].append(t[label_key])
            n_win = audio.size // n
            wins = np.arange(n_win)
            if max_excerpts_per_track is not None and n_win > max_excerpts_per_track:
                wins = np.unique(np.linspace(0, n_win - 1, int(max_excerpts_per_track)).round().astype(int))
            for w in wins:
                start = float(w * excerpt_s)
                shifted = NoteList(onset_s=notes.onset_s - start, offset_s=notes.offset_s - start, midi=notes.midi,
                                   part=notes.part, velocity=notes.velocity)
                inside = (shifted.offset_s > 0) & (shifted.onset_s < excerpt_s)
                sel = NoteList(onset_s=shifted.onset_s[inside], offset_s=shifted.offset_s[inside],
                               midi=shifted.midi[inside], part=shifted.part[inside], velocity=shifted.velocity[inside])
                yield dict(id=f"{t['id']}_{int(w):03d}", track=t["id"], split=sp, start_s=start,
                           audio=np.asarray(audio[int(w) * n:(int(w) + 1) * n], np.float32),
                           piano_roll=piano_roll(sel, n_frames, frame_hop_s), frame_times_s=frame_times.copy())


def _save_npz(path: Path, **arrays) -> None:
    """``np.savez`` with fixed zip timestamps, so the same arrays give the same bytes (and cache keys)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
    tmp = path.with_suffix(".npz.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


CONVERSION_FILE = "conversion.json"


def write_transcription_npz(root, out_dir, dataset: str = "maestro", splits=MAESTRO_SPLITS, excerpt_s: float = 10.0,
                            sr: int = 16000, frame_hop_s: float = 0.01, max_tracks: int | None = None,
                            max_excerpts_per_track: int | None = None, sustain: bool = True) -> dict:
    """Convert MAESTRO (or GuitarSet) into the excerpts ``--transcription-data`` reads.

    Each excerpt is ``<out_dir>/<n>_<split>/<track>_<window>.npz`` with ``audio`` float32 [samples]
    at ``sr``, ``piano_roll`` bool [frames, 128] and ``frame_times_s`` float64 [frames]
    (:func:`transcription_excerpts`). The split folders sort train < validation < test, so the paper
    tier's held-out excerpts (the last ``heldout_tracks`` files by path) come from the test split.
    The files are written deterministically (same input and parameters, same bytes), and
    ``conversion.json`` records the parameters, the counts and the source's data manifest hash.

    Parameters
    ----------
    root : path
        The dataset folder.
    out_dir : path
        Output folder: new or empty, or the output of the same conversion (rewritten in place);
        a folder holding other ``*.npz`` files is refused (the paper tier would read them too).
    dataset, splits, excerpt_s, sr, frame_hop_s, max_tracks, max_excerpts_per_track, sustain
        As in :func:`transcription_excerpts`.

    Returns
    -------
    dict
        ``written`` (paths relative to ``out_dir``), ``tracks``, ``missing`` / ``corrupt`` (counts) with
        ``missing_files`` / ``corrupt_files``, ``source`` (data manifest of the files read) and
        ``output`` (:func:`harness.cache.folder_manifest` of the written excerpts: what the paper tier keys by).
    """
    from harness.cache import folder_manifest

    params = dict(dataset=dataset, splits=[s for s in MAESTRO_SPLITS if s in splits], excerpt_s=float(excerpt_s),
                  sr=int(sr), frame_hop_s=float(frame_hop_s), max_tracks=max_tracks,
                  max_excerpts_per_track=max_excerpts_per_track, sustain=bool(sustain))
    out_dir = Path(out_dir)
    conv = out_dir / CONVERSION_FILE
    old = sorted(out_dir.rglob("*.npz")) if out_dir.is_dir() else []
    if old:
        prev = json.loads(conv.read_text()) if conv.is_file() else {}
        if prev.get("params") != params:
            raise UserError(f"{out_dir} already holds {len(old)} *.npz files from "
                            f"{'another conversion' if prev else 'elsewhere'}: choose a new or empty output folder")
    rep: dict = {}
    written = []
    for ex in transcription_excerpts(root, dataset, splits, excerpt_s, sr, frame_hop_s, max_tracks,
                                     max_excerpts_per_track, sustain, report=rep):
        folder = out_dir / NPZ_SPLIT_FOLDERS[ex["split"]]
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"{ex['id']}.npz"
        _save_npz(p, audio=ex["audio"], piano_roll=ex["piano_roll"], frame_times_s=ex["frame_times_s"])
        written.append(p)
    src_root = rep["root"]
    _check_usable(dataset, rep["listed"], rep["tracks"], rep["missing"], rep["corrupt"],
                  ", ".join(_rel(p, src_root) for p in rep["meta_files"]) or "annotation/")
    if not written:
        raise UserError(f"no {_spec(dataset).title} recording is at least {excerpt_s} s long: lower excerpt_s")
    for stale in set(old) - set(written):
        stale.unlink()
    source = _data_manifest(dataset, src_root, rep["audio_files"] + rep["label_files"], rep["meta_files"], **params)
    output = folder_manifest(out_dir, files=written, name="transcription")
    conv.write_text(json.dumps(dict(params=params, source=dataset, source_hash=source["hash"],
                                    output_hash=output["hash"], tracks=rep["tracks"], excerpts=len(written),
                                    missing=rep["missing"], corrupt=rep["corrupt"]), indent=1, sort_keys=True))
    return dict(written=[_rel(p, out_dir) for p in written], tracks=rep["tracks"], missing=len(rep["missing"]),
                corrupt=len(rep["corrupt"]), missing_files=rep["missing"], corrupt_files=rep["corrupt"],
                source=source, output=output)


# ============================================================================================
# Kong et al.: chord annotations
# ============================================================================================
@dataclass
class ChordTracks:
    """Recordings with time-aligned chord labels (Kong et al.'s local tasks).

    Attributes
    ----------
    audio : np.ndarray, float32, shape (n_tracks, n_samples)
        Mono at ``sr``, zero-padded or cut to one length.
    sr : int
    chords : list of (np.ndarray [k, 2] seconds, list of str)
        Per track, chord intervals within the clip and labels in mir_eval (Harte) syntax ("C:maj",
        "A:min7", "N"), as :attr:`stimuli.music.MusicSet.chords`.
    track_ids : list of str
    manifest : dict
        As a ClipSet's: ``data`` (by content), ``hash``, ``missing`` / ``corrupt`` counts.
    """

    audio: np.ndarray
    sr: int
    chords: list
    track_ids: list
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    def frame_labels(self, frame_hop_s: float) -> np.ndarray:
        """Chord label at every frame start ``i * frame_hop_s`` [n_tracks, frames] ("N" outside intervals)."""
        from stimuli.music import frame_labels

        from stimuli.music import NO_CHORD

        n_frames = int(np.floor(self.audio.shape[1] / self.sr / frame_hop_s + 1e-9))
        t = np.arange(n_frames) * frame_hop_s
        rows = [frame_labels(iv, list(lab), t) if len(lab) else np.full(n_frames, NO_CHORD)
                for iv, lab in self.chords]
        return np.stack(rows).astype(str) if rows else np.zeros((0, n_frames), dtype=str)


def read_chord_lab(path) -> tuple[np.ndarray, list[str]]:
    """A ``.lab`` chord file (``start end label`` per line, seconds, any whitespace) via
    ``mir_eval.io.load_labeled_intervals``; every label must parse as a mir_eval chord and every
    interval have positive length (a one-line :class:`UserError` naming the file otherwise)."""
    import warnings

    import mir_eval

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            intervals, labels = mir_eval.io.load_labeled_intervals(str(path))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UserError(f"chord file {path} is unreadable ({str(e).splitlines()[0][:80]})") from None
    return _checked_chords(path, np.asarray(intervals, dtype=np.float64).reshape(-1, 2), list(labels))


def _checked_chords(path, intervals: np.ndarray, labels: list) -> tuple[np.ndarray, list[str]]:
    import mir_eval

    if len(labels) == 0:
        raise UserError(f"chord file {path} has no chord intervals")
    if np.any(intervals[:, 1] <= intervals[:, 0]) or np.any(intervals < 0):
        raise UserError(f"chord file {path} has an interval that ends before it starts or before 0")
    for lab in labels:
        try:
            mir_eval.chord.encode(lab)
        except (mir_eval.chord.InvalidChordException, ValueError):
            raise UserError(f"chord file {path} has the label {lab!r}, not a mir_eval (Harte) chord") from None
    return intervals, labels


def _clip_chords(intervals: np.ndarray, labels: list, clip_s: float) -> tuple[np.ndarray, list[str]]:
    keep = intervals[:, 0] < clip_s
    iv = intervals[keep].copy()
    iv[:, 1] = np.minimum(iv[:, 1], clip_s)
    return iv, [lab for lab, k in zip(labels, keep) if k]


def _chord_tracks(name: str, root: Path, pairs: list, read_labels, sr: int, clip_s, meta_files: list,
                  listed_in: str, progress: bool, **params) -> ChordTracks:
    """Read (track id, audio file, annotation file) pairs; missing or corrupt audio or annotations are
    counted, never raised (unless nothing usable remains)."""
    missing, corrupt, ok = [], [], []
    for tid, audio, ann in pairs:
        if not ann.is_file() or audio is None or not audio.is_file():
            missing.append(_rel(audio, root) if ann.is_file() and audio is not None else _rel(ann, root))
            continue
        try:
            ok.append((tid, audio, ann, *read_labels(ann)))
        except UserError as e:
            corrupt.append({"file": _rel(ann, root), "reason": str(e)})
    waves, kept = [], []
    from tqdm.auto import tqdm

    for tid, audio, ann, iv, lab in tqdm(ok, desc=f"{_spec(name).title} tracks", disable=not progress):
        try:
            waves.append(read_audio(audio, sr))
            kept.append((tid, audio, ann, iv, lab))
        except UserError as e:
            corrupt.append({"file": _rel(audio, root), "reason": str(e)})
    _check_usable(name, len(pairs), len(kept), missing, corrupt, listed_in)
    n_samples = int(round(clip_s * sr)) if clip_s is not None else max(w.shape[0] for w in waves)
    length_s = n_samples / sr
    chords = [_clip_chords(iv, lab, length_s) for _, _, _, iv, lab in kept]
    data = _data_manifest(name, root, [k[1] for k in kept], [k[2] for k in kept] + meta_files, sr=int(sr),
                          clip_s=None if clip_s is None else float(clip_s), **params)
    loaded = _Loaded(audio=np.zeros((0, 0)), kept=list(range(len(kept))), missing=missing, corrupt=corrupt)
    manifest = _manifest(name, root, data, len(pairs), loaded, sr=sr, clip_s=clip_s, **params)
    return ChordTracks(audio=np.stack([fit_length(w, n_samples) for w in waves]).astype(np.float32), sr=sr,
                       chords=chords, track_ids=[k[0] for k in kept], manifest=manifest)


def load_lab_chords(root, sr: int = 16000, clip_s: float | None = None, annotations: str = "chordlab",
                    audio: str = "audio", progress: bool = True) -> ChordTracks:
    """Chord ``.lab`` annotations (Isophonics / Harte layout) paired with audio by relative path and stem.

    Parameters
    ----------
    root : path
        The folder holding the annotation and audio folders.
    sr : int
        Output sample rate in Hz.
    clip_s : float, optional
        Cut or zero-pad every track to this length (chords are cut with it); ``None`` pads to the
        longest track.
    annotations, audio : str
        Names of the two folders under ``root``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ChordTracks
        ``track_ids`` = the annotation paths relative to the annotation folder, without suffix.

    Notes
    -----
    The Isophonics annotations (Beatles, Queen, Carole King, Zweieck) are free to download; the
    recordings are commercial and must be bought and ripped by the user (the CD and track numbers in
    the annotation names identify the release). For open audio use :func:`load_guitarset_chords`.

    Layout
    ------
    ::

        <root>/
          chordlab/<artist>/<album>/<track>.lab     "start end label" per line (seconds, Harte syntax)
          audio/<artist>/<album>/<track>.<wav|flac|mp3|...>   same relative path and stem
    """
    root = _require_root(root, "isophonics")
    ann_dir = root / annotations
    labs = sorted(ann_dir.rglob("*.lab")) if ann_dir.is_dir() else []
    if not labs:
        raise UserError(f"chord annotations {ann_dir}/**/*.lab do not exist: download the chord annotations from "
                        f"{_spec('isophonics').url} into {annotations}/ (layout: {DOCS_REF})")
    audio_dir = _require_audio_dir(root / audio, "isophonics", f"{annotations}/**/*.lab",
                                   f"the recordings as {audio}/<same path as the .lab>.<wav|flac|mp3>")
    pairs = []
    for lab in labs:
        rel = lab.relative_to(ann_dir).with_suffix("")
        f = next((audio_dir / rel.parent / f"{rel.name}{e}" for e in AUDIO_EXTENSIONS
                  if (audio_dir / rel.parent / f"{rel.name}{e}").is_file()), audio_dir / rel.parent / f"{rel.name}.wav")
        pairs.append((rel.as_posix(), f, lab))
    return _chord_tracks("isophonics", root, pairs, read_chord_lab, sr, clip_s, [], f"{ann_dir}", progress,
                         annotations=annotations, audio=audio)


def guitarset_chords(path, which: str = "performed") -> tuple[np.ndarray, list[str]]:
    """The chord annotation of a GuitarSet JAMS file: ``instructed`` (the lead sheet, the first
    ``chord`` annotation) or ``performed`` (inferred from the played notes, the second)."""
    jam = read_jams(path)
    anns = [a for a in jam["annotations"] if a.get("namespace") == "chord"]
    idx = {"instructed": 0, "performed": 1}[which]
    if len(anns) <= idx:
        raise UserError(f"JAMS file {path} has {len(anns)} chord annotation(s), no {which} one")
    try:
        obs = _jams_observations(anns[idx])
        intervals = np.array([[float(t), float(t) + float(d)] for t, d, _ in obs], dtype=np.float64).reshape(-1, 2)
        labels = [str(v) for _, _, v in obs]
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"JAMS file {path} has a malformed chord annotation ({type(e).__name__})") from None
    return _checked_chords(path, intervals, labels)


def load_guitarset_chords(root, sr: int = 16000, clip_s: float | None = 30.0, which: str = "performed",
                          progress: bool = True) -> ChordTracks:
    """GuitarSet (Xi et al. 2018): 360 guitar excerpts with chord annotations and open audio.

    Parameters
    ----------
    root : path
        The GuitarSet folder.
    sr : int
        Output sample rate in Hz (the recordings are 44.1 kHz).
    clip_s : float, optional
        Cut or zero-pad every excerpt to this length (they are about 30 s); ``None`` pads to the longest.
    which : {"performed", "instructed"}
        The chords inferred from what was played, or the lead sheet's.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ChordTracks
        ``track_ids`` = the excerpt ids (``<player>_<style><n>-<tempo>-<key>_<comp|solo>``).

    Layout
    ------
    ::

        <root>/
          annotation/<id>.jams            JAMS: 6 note_midi (one per string), 2 chord, beat, key, tempo
          audio_mono-mic/<id>_mic.wav     reference microphone, 44.1 kHz mono
          audio_hex-pickup_*/, audio_mono-pickup_mix/   (not read)

    The same JAMS files feed :func:`write_transcription_npz` (``dataset="guitarset"``), whose note
    labels are the six ``note_midi`` annotations.
    """
    if which not in ("performed", "instructed"):
        raise UserError(f"unknown GuitarSet chord annotation {which!r}: use performed or instructed")
    root, tracks, _ = guitarset_tracks(root)
    pairs = [(t["id"], t["audio"], t["annotation"]) for t in tracks]
    return _chord_tracks("guitarset", root, pairs, lambda p: guitarset_chords(p, which), sr, clip_s, [],
                         f"{root / 'annotation'}", progress, which=which)


# ============================================================================================
# Export for the paper tier's audio folders
# ============================================================================================
def write_audio_folder(clips: ClipSet, out_dir, subtype: str = "PCM_16") -> list[Path]:
    """Write a ClipSet as ``<out_dir>/<clip id>.flac`` (``/`` in ids become ``__``), e.g. FMA's MP3s as a
    ``--music-audio`` folder (the Grasse & Tata paper tier reads .wav/.flac/.ogg); returns the files."""
    import soundfile as sf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for cid, x in zip(clips.clip_ids, np.asarray(clips.audio)):
        p = out_dir / f"{str(cid).replace('/', '__')}.flac"
        sf.write(str(p), np.clip(x, -1.0, 1.0), clips.sr, format="FLAC", subtype=subtype)
        out.append(p)
    return out


# ============================================================================================
# The registry and its documentation
# ============================================================================================
def _natsound_loader(root, sr: int = 22050, clip_s: float = 2.0):
    """The 165 natural sounds (:func:`stimuli.loaders.load_natsound165`)."""
    from stimuli.loaders import load_natsound165

    if root is None or not Path(root).is_dir():
        spec = _spec("natsound165")
        raise UserError(f"{spec.title} folder {root} does not exist: download them from {spec.url} (sounds/) "
                        f"(layout: {DOCS_REF})")
    return load_natsound165(root, sr=sr, clip_s=clip_s)


def _register(*specs: OpenDataset) -> None:
    for s in specs:
        OPEN_DATASETS[s.name] = s


_register(
    OpenDataset(
        name="fsd50k", title="FSD50K", loader=load_fsd50k,
        used_for="Kim et al. 2024: the training set of the CNN (with music; 'no music' drops every clip with a "
                 "Music-subtree or singing label), replacing AudioSet",
        licence="dataset CC BY 4.0; each clip CC0, CC BY, CC BY-NC or CC Sampling+ (per clip, in "
                "FSD50K.metadata/*_clips_info_FSD50K.json)",
        url="https://zenodo.org/records/4060432",
        size="about 34 GB unpacked (51,197 clips, 108.3 h of 16-bit 44.1 kHz mono WAV); the split zips are "
             "about as large; AudioSet's ontology.json (github.com/audioset/ontology) is needed as well",
        notes="200 classes (144 leaves, 56 intermediate), labels smeared to the root; dev labels may be "
              "incomplete, eval labels are exhaustive; dev and eval have no uploader in common."),
    OpenDataset(
        name="esc50", title="ESC-50", loader=load_esc50,
        used_for="Kim et al. 2024: a second held-out set of non-music environmental sounds "
                 "(kim2024.esc50.music_above_environmental, --esc50, every tier)",
        licence="CC BY-NC 3.0 (clips from Freesound; the ESC-10 subset CC BY)",
        url="https://github.com/karolpiczak/ESC-50",
        size="about 0.9 GB (2,000 x 5 s, 44.1 kHz mono WAV)",
        notes="5 folds; clips cut from the same Freesound recording share a fold."),
    OpenDataset(
        name="natsound165", title="165 natural sounds", loader=_natsound_loader,
        used_for="Kim et al. 2024: the external validation of music-selective units (unchanged, "
                 "stimuli.loaders.load_natsound165)",
        licence="no licence file; distributed by the authors for research use",
        url="https://github.com/snormanhaignere/natsound165-neuron2015",
        size="about 12 MB (165 x 2 s, 44.1 kHz WAV)",
        api="`stimuli.loaders.load_natsound165(root, sr, clip_s)`",
        layout_text="::\n\n    <root>/\n      wav/<stem>.wav            165 sounds, 2 s, 44.1 kHz\n"
                    "      category_labels.csv       <stem>,<category> per line, no header (11 categories)"),
    OpenDataset(
        name="maestro", title="MAESTRO", loader=maestro_tracks,
        used_for="Grasse & Tata 2026: the supervised transcription condition (write_transcription_npz -> "
                 "--transcription-data)",
        licence="CC BY-NC-SA 4.0",
        url="https://magenta.tensorflow.org/datasets/maestro",
        size="v3.0.0: about 120 GB unpacked (101 GB zip; 1,276 performances, 198.7 h, 44.1-48 kHz stereo WAV); "
             "the converted excerpts take about 77 kB per second of audio (16-kHz float32 audio plus a "
             "100-frame/s piano roll)",
        notes="Disklavier MIDI aligned to the audio within about 3 ms; splits keep each composition in one split.",
        api="`stimuli.open_data.write_transcription_npz(root, out_dir, dataset='maestro')`, or "
            "`python -m stimuli.open_data --transcription SRC OUT [--max-tracks N]` (listing: "
            "`maestro_tracks`; in memory: `transcription_excerpts`)",
        layout_text="::\n\n    <root>/                        (maestro-v3.0.0/, or its parent)\n"
                    "      maestro-v3.0.0.csv         canonical_composer,canonical_title,split,year,midi_filename,\n"
                    "                                 audio_filename,duration   (or maestro-v3.0.0.json)\n"
                    "      <year>/<name>.midi         performance MIDI (sustain pedal as CC 64)\n"
                    "      <year>/<name>.wav          the recording"),
    OpenDataset(
        name="guitarset", title="GuitarSet", loader=load_guitarset_chords,
        used_for="Grasse & Tata 2026: a second transcription set (write_transcription_npz(dataset='guitarset')); "
                 "Kong et al. 2025: chord labels with open audio for the local tasks",
        licence="CC BY 4.0",
        url="https://zenodo.org/records/3371780",
        size="annotation/ tens of MB; audio_mono-mic/ about 1 GB (360 excerpts, about 3 h at 44.1 kHz)",
        notes="6 players x 2 modes (comp, solo) x 5 styles x 3 progressions x 2 tempi; no official split "
              "(ours: players 00-03 train, 04 validation, 05 test).",
        api="`stimuli.open_data.load_guitarset_chords(root, sr, clip_s)` (chords); "
            "`write_transcription_npz(root, out_dir, dataset='guitarset')` (notes)"),
    OpenDataset(
        name="librispeech", title="LibriSpeech", loader=load_librispeech,
        used_for="Grasse & Tata 2026: the speech half of the SSL training data (--speech-audio)",
        licence="CC BY 4.0",
        url="https://www.openslr.org/12",
        size="dev-clean 337 MB, test-clean 346 MB, train-clean-100 6.3 GB, train-clean-360 23 GB, "
             "train-other-500 30 GB (tar.gz; 16 kHz FLAC)",
        notes="Read audiobooks (LibriVox); speakers do not overlap between subsets."),
    OpenDataset(
        name="fma", title="FMA", loader=load_fma,
        used_for="Grasse & Tata 2026: the music half of the SSL training data (--music-audio via "
                 "write_audio_folder); Kong et al. 2025: open music for contrastive pre-training",
        licence="metadata CC BY 4.0; audio under each artist's licence (mostly Creative Commons, some NC/ND)",
        url="https://github.com/mdeff/fma",
        size="fma_metadata 342 MB, fma_small 7.2 GB (8,000 x 30 s), fma_medium 22 GB (25,000), "
             "fma_large 93 GB (106,574) (zip, MP3)",
        notes="A few MP3s are truncated or undecodable (counted as corrupt).",
        api="`stimuli.open_data.load_fma(root, subset, sr, clip_s)`; `write_audio_folder(clips, out_dir)` for "
            "--music-audio"),
    OpenDataset(
        name="gtzan", title="GTZAN", loader=load_gtzan,
        used_for="Kong et al. 2025: the global (track-level) tagging task, 10 genres",
        licence="none: excerpts taken from CDs and radio; customary research use only",
        url="https://www.kaggle.com/datasets/andradaolteanu/gtzan-dataset-music-genre-classification",
        size="about 1.3 GB (1,000 x 30 s, 22,050 Hz mono)",
        notes="Known faults (Sturm 2012, 2013): repeated excerpts, artist repetition across folds, "
              "mislabellings, distortions; jazz.00054.wav of the Kaggle copy is widely reported not to decode "
              "(counted as corrupt)."),
    OpenDataset(
        name="isophonics", title="Isophonics chord annotations", loader=load_lab_chords,
        used_for="Kong et al. 2025: reference chord labels (.lab) for the local tasks, with your own audio",
        licence="annotations free for research from the Isophonics site (see its terms); the recordings are "
                "commercial and not distributed",
        url="http://isophonics.net/datasets",
        size="annotations a few MB; audio: your own rips (the Beatles' 12 studio albums are 180 songs)",
        notes="Any chord set in the same layout (start end label per line) works, e.g. RWC or Billboard "
              "exported to .lab."),
)


def render_docs() -> str:
    """``docs/open_data.md`` from :data:`OPEN_DATASETS` (``python -m stimuli.open_data --write``)."""
    lines = ["# Open datasets", "",
             "Generated from `stimuli.open_data.OPEN_DATASETS` by `python -m stimuli.open_data --write`; do not "
             "edit by hand.", "",
             "Loaders for replicating the three papers on open data (no AudioSet): each reads the layout below, "
             "raises a one-line error naming the folder and this page when data are missing or laid out "
             "otherwise, and counts missing or corrupt audio files in the returned manifest "
             "(`missing`, `corrupt`) instead of failing. Manifests are by content: a moved copy keys the same "
             "cache entries, an edited file does not.", "",
             "| dataset | used for | licence | size |", "|---|---|---|---|"]
    for s in OPEN_DATASETS.values():
        lines.append(f"| [{s.title}](#{s.name}) | {s.used_for} | {s.licence} | {s.size} |")
    for s in OPEN_DATASETS.values():
        lines += ["", f"## {s.title}", "", f'<a id="{s.name}"></a>', "",
                  f"- used for: {s.used_for}",
                  f"- loader: {s.api or f'`stimuli.open_data.{s.loader.__name__}`'}",
                  f"- licence: {s.licence}",
                  f"- download: {s.url}",
                  f"- disk size: {s.size}"]
        if s.notes:
            lines.append(f"- notes: {s.notes}")
        layout = s.layout.replace("::\n\n", "", 1) if s.layout.startswith("::") else s.layout
        code, _, rest = layout.partition("\n\n")
        lines += ["", "Layout:", "", "```", _dedent(code), "```"]
        if rest.strip():
            lines += ["", _markdown(" ".join(rest.split()))]
    lines.append("")
    return "\n".join(lines)


def _markdown(text: str) -> str:
    """reST inline markup of a docstring as Markdown (``x`` and :func:`x` -> `x`)."""
    import re

    return re.sub(r":\w+:`([^`]+)`", r"`\1`", text.replace("``", "`"))


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).rstrip()


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m stimuli.open_data",
                                 description="Render docs/open_data.md, or convert a transcription dataset.")
    ap.add_argument("--write", action="store_true", help="write docs/open_data.md")
    ap.add_argument("--transcription", nargs=2, metavar=("SRC", "OUT"),
                    help="convert MAESTRO (or GuitarSet, --dataset guitarset) at SRC into the *.npz excerpts "
                         "--transcription-data reads, in OUT (write_transcription_npz)")
    ap.add_argument("--dataset", default="maestro", choices=sorted(TRANSCRIPTION_SOURCES))
    ap.add_argument("--excerpt-s", type=float, default=10.0, help="excerpt length in s (default 10)")
    ap.add_argument("--max-tracks", type=int, default=None, help="at most this many recordings per split")
    ap.add_argument("--max-excerpts-per-track", type=int, default=None, help="at most this many excerpts per recording")
    ap.add_argument("--splits", default=",".join(MAESTRO_SPLITS),
                    help="comma-separated splits to convert (default train,validation,test)")
    args = ap.parse_args(argv)
    if args.transcription:
        try:
            res = write_transcription_npz(args.transcription[0], args.transcription[1], dataset=args.dataset,
                                          splits=[x.strip() for x in args.splits.split(",") if x.strip()],
                                          excerpt_s=args.excerpt_s, max_tracks=args.max_tracks,
                                          max_excerpts_per_track=args.max_excerpts_per_track)
        except UserError as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 2
        print(f"written: {len(res['written'])} excerpts of {res['tracks']} recordings to {args.transcription[1]} "
              f"({res['missing']} missing, {res['corrupt']} corrupt); pass --transcription-data {args.transcription[1]}")
        return 0
    text = render_docs()
    if args.write:
        DOCS_PATH.write_text(text)
        print(f"written: {DOCS_PATH}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
