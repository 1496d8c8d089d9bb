"""Content-addressed cache for corpora, trained models and extracted activations.

Every entry is a directory ``<root>/<namespace>/<key>/`` holding the files its builder wrote and a
``_manifest.json`` (SHA-256 and size of every file, the config, the producing code's version, the
build time). The key hashes the namespace, the config, the producing code's ``version`` string and the torch
version.

Keys on content
---------------
Every config is a :func:`content_key`: the manifests of the data the entry reads and its own
parameters, never a name or a path alone. A data manifest is

- :func:`folder_manifest` for files on disk: the sorted (relative path, size, SHA-256) of every file
  read (digests memoised per process by path, inode, size and mtime, so a repeated manifest only
  stats the files);
- :func:`generated_manifest` for generated corpora: their config and seed;
- :func:`array_manifest` / :func:`digest_manifest` for arrays computed in memory (their bytes);
- :func:`data_manifest` for data made of several manifests (e.g. audio files plus metadata files);
- :func:`entry_ref` (another cache entry) or a parent :func:`content_key`, for derived entries
  (features, activations, selectivity): the keys of every entry they are computed from.

A content key carries the short hashes of the data manifests under it (``data``); every cache
event records them, so the report shows which data each claim used.

Guarantees
----------
- Atomic writes: an entry is built in a temporary sibling directory and renamed into place after
  its manifest is written, so a killed process (even SIGKILL) never leaves a half entry behind.
- Verification: an entry whose manifest is missing or whose files do not match it (truncated,
  edited, corrupted) is treated as absent and rebuilt.
- Concurrency: a per-entry file lock (``fcntl`` via ``filelock``, released by the OS when a
  process dies) makes concurrent pytest-xdist workers build an entry once; the others wait and
  then read it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

log = logging.getLogger("mec.cache")

MANIFEST = "_manifest.json"
FORMAT = 1
ENV_VAR = "MEC_CACHE_DIR"
#: Format of data manifests and content keys (part of every content key: bump it when they change).
CONTENT_KEY_VERSION = "content-key-1"
#: Hex digits of a manifest or content-key hash (80 bits); the report shows the first 12.
HASH_CHARS = 20
SHORT_CHARS = 12
#: Manifest kinds a content key accepts as inputs.
INPUT_KINDS = ("folder", "generated", "arrays", "data", "key", "entry")


def default_cache_root() -> Path:
    """Cache root: ``$MEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/music-emergence-claims``, else
    ``~/.cache/music-emergence-claims``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "music-emergence-claims"


def _torch_version() -> str:
    try:
        import torch

        return torch.__version__
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "none"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# ------------------------------------------------------------------------ data manifests and keys
_DIGESTS: dict[tuple, str] = {}      # (path, inode, size, mtime_ns, ctime_ns) -> SHA-256, this process
_MANIFESTS: dict[str, dict] = {}     # "name:hash" -> summary of every data manifest made in this process


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:HASH_CHARS]


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, memoised per process by (path, inode, size, mtime, ctime).

    A file rewritten in place keeps its path but changes its mtime (and usually its size), so it
    is read again; an unchanged file is only stat-ed. The memo lives for one process: a rewrite of
    the same size within one filesystem timestamp tick (milliseconds) of a digest taken by the same
    process is the one edit it can miss; every new run reads each file afresh.
    """
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _DIGESTS.get(memo)
    if digest is None:
        digest = _DIGESTS[memo] = _sha256_file(p)
    return digest


def _register(manifest: dict) -> dict:
    summary = {k: manifest[k] for k in ("kind", "name", "hash", "n_files", "bytes", "root") if k in manifest}
    _MANIFESTS[f"{manifest['name']}:{manifest['hash']}"] = summary
    return manifest


def remember_manifest(manifest: dict) -> dict:
    """Record a data manifest made in another process (e.g. stored in a cache entry) so that this process's
    report shows its files and bytes too."""
    return _register(manifest)


def known_manifest(label: str) -> dict | None:
    """The summary (kind, name, hash, files, bytes, root) of a ``"name:hash"`` manifest made in this process."""
    return _MANIFESTS.get(label)


def _label(manifest: Mapping) -> str:
    return f"{manifest['name']}:{manifest['hash']}"


def folder_manifest(root: str | os.PathLike, pattern: str | tuple = "**/*", *, files=None, name: str | None = None,
                    content: bool = True) -> dict:
    """The data manifest of files under ``root``: what a cache entry that reads them is keyed by.

    Parameters
    ----------
    root : path-like
        The folder. Its path is recorded for the report but is not part of the hash: a copy of the
        same files elsewhere has the same manifest, a folder whose files changed has another.
    pattern : str or tuple of str
        Glob pattern(s) relative to ``root`` (default every file); hidden files and folders are left
        out. Ignored when ``files`` is given.
    files : iterable of path-like, optional
        Exactly these files (absolute, or relative to ``root``; each must lie under ``root``), e.g.
        the audio files a labels CSV lists plus the CSV itself.
    name : str, optional
        What the data is (``"natsound165"``, ``"audioset_audio"``...); default the folder's name.
    content : bool
        Hash every file's bytes (default). ``False`` uses (size, mtime) instead, for folders too large
        to read on every run; an edit that keeps both is then missed.

    Returns
    -------
    dict
        ``kind="folder"``, ``name``, ``hash`` (20 hex digits over the sorted (relative path, size,
        digest) list), ``n_files``, ``bytes``, ``root`` and ``files`` (the list itself).
    """
    root = Path(os.path.abspath(Path(root).expanduser()))      # symlinks kept: files may be links
    if files is None:
        patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
        found = {p for pat in patterns for p in root.glob(pat) if p.is_file()}
        paths = [p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    else:
        paths = [(root / f) if not Path(f).is_absolute() else Path(f) for f in files]
    rows = []
    for p in paths:
        rel = _relative(Path(os.path.abspath(p)), root)
        st = p.stat()
        rows.append([rel, st.st_size, file_digest(p) if content else f"mtime:{st.st_mtime_ns}"])
    rows = sorted({tuple(r) for r in rows})
    manifest = {"kind": "folder", "name": name or root.name, "format": CONTENT_KEY_VERSION,
                "hash": _short_hash([CONTENT_KEY_VERSION, "content" if content else "stat", rows]),
                "n_files": len(rows), "bytes": int(sum(r[1] for r in rows)), "root": str(root),
                "files": [list(r) for r in rows]}
    return _register(manifest)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (either may be reached through symlinks)."""
    for p, r in ((path, root), (path.resolve(), root.resolve()), (path, root.resolve())):
        try:
            return p.relative_to(r).as_posix()
        except ValueError:
            continue
    raise ValueError(f"folder_manifest: {path} is not under {root}")


def generated_manifest(name: str, **config) -> dict:
    """The data manifest of a generated corpus or stimulus set: its config (seed included).

    ``config`` must not hold paths (:func:`content_key` rules apply).
    """
    _check_params(config, f"generated_manifest({name!r})")
    return _register({"kind": "generated", "name": name, "config": json.loads(_canonical(config)),
                      "hash": _short_hash([CONTENT_KEY_VERSION, name, config])})


def array_manifest(name: str, *arrays, **meta) -> dict:
    """The data manifest of arrays computed in memory (their dtype, shape and bytes) plus ``meta``."""
    h = hashlib.sha256(_canonical([CONTENT_KEY_VERSION, name, meta]).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else _canonical(a.tolist()).encode())
    return _register({"kind": "arrays", "name": name, "hash": h.hexdigest()[:HASH_CHARS]})


def digest_manifest(name: str, digest: str) -> dict:
    """The data manifest of data whose content hash is already known (e.g. a generated corpus's
    SHA-256 over its audio and labels)."""
    if not digest:
        raise ValueError(f"digest_manifest({name!r}): empty digest")
    return _register({"kind": "arrays", "name": name, "hash": str(digest)[:HASH_CHARS]})


def data_manifest(name: str, *parts: Mapping, **meta) -> dict:
    """One data manifest made of several (e.g. AudioSet = its audio files + its metadata files).

    ``meta`` (loader parameters) joins the hash; the parts' summaries are kept for the report.
    """
    for p in parts:
        _require_input(p, f"data_manifest({name!r})")
    _check_params(meta, f"data_manifest({name!r})")
    refs = [{"kind": p["kind"], "name": p["name"], "hash": p["hash"]} for p in parts]
    summaries = [known_manifest(_label(p)) or dict(refs[i]) for i, p in enumerate(parts)]
    return _register({"kind": "data", "name": name, "hash": _short_hash([CONTENT_KEY_VERSION, name, refs, meta]),
                      "n_files": sum(int(s.get("n_files", 0)) for s in summaries),
                      "bytes": sum(int(s.get("bytes", 0)) for s in summaries),
                      "root": ", ".join(s["root"] for s in summaries if s.get("root")) or None,
                      "parts": summaries})


def _require_input(obj: Any, where: str) -> None:
    if not isinstance(obj, Mapping) or obj.get("kind") not in INPUT_KINDS or not obj.get("hash"):
        raise ValueError(f"{where}: {obj!r:.80} is not a data manifest or a parent key; build it with "
                         "folder_manifest, generated_manifest, array_manifest, data_manifest, entry_ref or "
                         "content_key")


def _check_params(params: Any, where: str, path: str = "") -> None:
    """Refuse paths in a key: a key names what the data is, never where it lies."""
    if isinstance(params, os.PathLike):
        raise ValueError(f"{where}: {path or 'a parameter'} is a path ({os.fspath(params)!r}); key the entry by "
                         "folder_manifest(...) of the files instead")
    if isinstance(params, str):
        if os.path.isabs(params) or params.startswith("~"):
            raise ValueError(f"{where}: {path or 'a parameter'} = {params!r} looks like a path; key the entry by "
                             "folder_manifest(...) of the files instead")
        return
    if isinstance(params, Mapping):
        for k, v in params.items():
            _check_params(v, where, f"{path}.{k}" if path else str(k))
    elif isinstance(params, (list, tuple, set, frozenset)):
        for i, v in enumerate(params):
            _check_params(v, where, f"{path}[{i}]")


def _data_labels(obj: Mapping) -> list[str]:
    if obj["kind"] in ("key", "entry"):
        return list(obj.get("data", ()))
    return [_label(obj)]


def content_key(*inputs: Mapping, **params) -> dict:
    """The config of a cache entry: the manifests (or parent keys) of what it reads, and its parameters.

    Parameters
    ----------
    *inputs : dict
        At least one: data manifests (:func:`folder_manifest`, :func:`generated_manifest`,
        :func:`array_manifest`, :func:`data_manifest`), parent entries (:func:`entry_ref`) or parent
        content keys. Only their kind, name and hash enter the key.
    **params
        The entry's own settings (JSON-able; no paths).

    Returns
    -------
    dict
        ``kind="key"``, ``format``, ``inputs``, ``params``, ``data`` (the sorted ``name:hash`` of every
        data manifest under the inputs, for the report) and ``hash``. Usable as the input of another
        content key.
    """
    if not inputs:
        raise ValueError("content_key needs the manifest or parent key of every input the entry reads "
                         "(a name or a path alone is not a key)")
    for i in inputs:
        _require_input(i, "content_key")
    _check_params(params, "content_key")
    refs = [{"kind": i["kind"], "name": i.get("name", ""), "hash": i["hash"]} for i in inputs]
    data = sorted({lab for i in inputs for lab in _data_labels(i)})
    key = {"kind": "key", "format": CONTENT_KEY_VERSION, "inputs": refs,
           "params": json.loads(_canonical(params)), "data": data}
    key["hash"] = _short_hash(key)
    return key


def entry_key(namespace: str, config: Mapping, version: str) -> str:
    """An entry's key: SHA-256 over namespace, config, code version and torch version (32 hex digits)."""
    payload = {"namespace": namespace, "config": config, "version": version,
               "torch": _torch_version(), "format": FORMAT}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:32]


def entry_ref(namespace: str, config: Mapping, *, version: str) -> dict:
    """A reference to another cache entry, as the input of a derived entry's :func:`content_key`.

    Its hash is the entry's key, so a change of the parent's data, parameters or code version
    changes every entry computed from it.
    """
    return {"kind": "entry", "name": namespace, "hash": entry_key(namespace, config, version),
            "data": _data_of(config)}


def _data_of(config: Any) -> list[str]:
    """The ``name:hash`` data labels a content key carries (none for any other config)."""
    if isinstance(config, Mapping) and config.get("kind") == "key":
        return [str(d) for d in config.get("data", ())]
    return []


def short(h: str) -> str:
    """A hash as the report shows it."""
    return str(h)[:SHORT_CHARS]


@dataclass
class CacheEvent:
    namespace: str
    key: str
    outcome: str  # "hit" | "miss" | "rebuilt"
    seconds: float
    data: list = field(default_factory=list)  # "name:hash" of the data manifests under the entry's key

    def to_dict(self) -> dict:
        return {"namespace": self.namespace, "key": self.key, "outcome": self.outcome,
                "seconds": round(self.seconds, 3), "data": list(self.data)}


class Cache:
    """A content-addressed, verified, lock-protected cache rooted at ``root``.

    Parameters
    ----------
    root : path-like
        Directory that holds the entries (created on demand).
    verify : {"full", "size"}
        ``"full"`` checks every file's SHA-256 on first read in this process; ``"size"`` only sizes.
    """

    def __init__(self, root: str | os.PathLike, verify: str = "full"):
        self.root = Path(root).expanduser()
        self.verify = verify
        self.events: list[CacheEvent] = []
        self._verified: set[Path] = set()

    @classmethod
    def default(cls) -> "Cache":
        return cls(default_cache_root())

    # ------------------------------------------------------------------ keys
    def key(self, namespace: str, config: Mapping, version: str) -> str:
        """The entry key: SHA-256 over namespace, config, code version and torch version."""
        return entry_key(namespace, config, version)

    def path(self, namespace: str, config: Mapping, version: str) -> Path:
        return self.root / namespace / self.key(namespace, config, version)

    @property
    def hits(self) -> int:
        return sum(e.outcome == "hit" for e in self.events)

    @property
    def misses(self) -> int:
        return sum(e.outcome != "hit" for e in self.events)

    # ------------------------------------------------------------ scheduling
    def busy(self, namespace: str, config: Mapping, *, version: str) -> bool:
        """True when the entry is absent and another process is building it right now.

        Lets a worker pick other work instead of waiting on the build lock (see
        ``claims.kim2024._conditions.KimConditions.prefetch``). Advisory only: the answer can be
        stale a moment later, and :meth:`directory` stays correct either way.
        """
        from filelock import FileLock, Timeout

        key = self.key(namespace, config, version)
        ns_dir = self.root / namespace
        if (ns_dir / key / MANIFEST).is_file():
            return False
        ns_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(ns_dir / f".{key}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    # ------------------------------------------------------------ directory
    def directory(self, namespace: str, config: Mapping, build: Callable[[Path], None], *,
                  version: str) -> Path:
        """Return the entry directory, building it with ``build(tmp_dir)`` if absent or corrupt.

        ``build`` writes any files into the empty directory it is given. The cache adds the
        manifest and moves the directory into place atomically.
        """
        from filelock import FileLock

        t0 = time.perf_counter()
        key = self.key(namespace, config, version)
        ns_dir = self.root / namespace
        final = ns_dir / key
        data = _data_of(config)
        if self._valid(final):
            self._record(namespace, key, "hit", t0, data)
            return final
        ns_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(ns_dir / f".{key}.lock")):
            if self._valid(final):  # another worker built it while we waited
                self._record(namespace, key, "hit", t0, data)
                return final
            outcome = "miss"
            if final.exists():
                log.warning("cache entry %s/%s is incomplete or corrupt; rebuilding", namespace, key)
                shutil.rmtree(final)
                outcome = "rebuilt"
            for stale in ns_dir.glob(f".{key}.tmp-*"):  # left by a killed builder
                shutil.rmtree(stale, ignore_errors=True)
            tmp = ns_dir / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                log.info("cache miss %s/%s: building", namespace, key)
                tb = time.perf_counter()
                build(tmp)
                self._write_manifest(tmp, namespace, key, config, version, time.perf_counter() - tb)
                os.replace(tmp, final)
                _fsync_dir(ns_dir)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._verified.add(final)
            self._record(namespace, key, outcome, t0, data)
            return final

    def _write_manifest(self, tmp: Path, namespace, key, config, version, seconds) -> None:
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
                files[str(p.relative_to(tmp))] = {"size": p.stat().st_size, "sha256": _sha256_file(p)}
        manifest = {"format": FORMAT, "namespace": namespace, "key": key, "version": version,
                    "torch": _torch_version(), "config": json.loads(_canonical(config)),
                    "files": files, "build_seconds": round(seconds, 3), "created": time.time()}
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())

    def manifest(self, entry: Path) -> dict:
        return json.loads((entry / MANIFEST).read_text())

    def _valid(self, entry: Path) -> bool:
        mpath = entry / MANIFEST
        if not mpath.is_file():
            return False
        try:
            manifest = json.loads(mpath.read_text())
            files = manifest["files"]
        except (json.JSONDecodeError, KeyError, OSError):
            return False
        full = self.verify == "full" and entry not in self._verified
        for rel, meta in files.items():
            p = entry / rel
            try:
                if p.stat().st_size != meta["size"]:
                    return False
            except OSError:
                return False
            if full and _sha256_file(p) != meta["sha256"]:
                return False
        self._verified.add(entry)
        return True

    def _record(self, namespace, key, outcome, t0, data=()) -> None:
        ev = CacheEvent(namespace, key, outcome, time.perf_counter() - t0, list(data))
        self.events.append(ev)
        if outcome == "hit":
            log.info("cache hit %s/%s", namespace, key)

    # ------------------------------------------------------------ helpers
    def arrays(self, namespace: str, config: Mapping, build: Callable[[], Mapping[str, np.ndarray]], *,
               version: str, mmap: bool = False) -> dict[str, np.ndarray]:
        """Cache a mapping of named numpy arrays (one ``.npy`` file each)."""

        def _build(tmp: Path) -> None:
            arrays = build()
            for name, arr in arrays.items():
                _check_name(name)
                np.save(tmp / f"{name}.npy", np.asarray(arr), allow_pickle=False)

        entry = self.directory(namespace, config, _build, version=version)
        return {p.stem: np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
                for p in sorted(entry.glob("*.npy"))}

    def pickle(self, namespace: str, config: Mapping, build: Callable[[], Any], *, version: str) -> Any:
        """Cache any picklable object (state dicts, histories, dataclasses) with ``torch.save``."""
        import torch

        def _build(tmp: Path) -> None:
            torch.save(build(), tmp / "object.pt")

        entry = self.directory(namespace, config, _build, version=version)
        return torch.load(entry / "object.pt", weights_only=False, map_location="cpu")

    def json(self, namespace: str, config: Mapping, build: Callable[[], Any], *, version: str) -> Any:
        """Cache a JSON-able value."""

        def _build(tmp: Path) -> None:
            (tmp / "value.json").write_text(_canonical(build()))

        entry = self.directory(namespace, config, _build, version=version)
        return json.loads((entry / "value.json").read_text())

    def summary(self) -> dict:
        return {"root": str(self.root), "hits": self.hits, "misses": self.misses}


def cooperative_order(items, busy: Callable[[Any], bool], start: int = 0):
    """Yield ``items`` in an order that lets parallel workers share the builds.

    The list is rotated by ``start`` (e.g. the pytest-xdist worker index, so two workers that begin
    the same list at the same moment begin at different items), then at every step the first item
    that ``busy`` says nobody else is building comes next; when all remaining items are busy, the
    first one is yielded (its build lock then waits for the other worker). ``busy`` is asked again
    after each yield, so build the yielded item before taking the next.

    Parameters
    ----------
    items : sequence
    busy : callable
        ``busy(item)`` -> True while another process builds that item's entry
        (:meth:`Cache.busy`).
    start : int
        Rotation of the list.
    """
    pending = list(items)
    if pending:
        k = int(start) % len(pending)
        pending = pending[k:] + pending[:k]
    while pending:
        nxt = next((it for it in pending if not busy(it)), pending[0])
        pending.remove(nxt)
        yield nxt


def data_used(events) -> list[dict]:
    """The data manifests under a list of cache events: one summary per ``name:hash``, sorted.

    Each summary has ``name``, ``hash`` and, for manifests made in this process, ``kind``,
    ``n_files``, ``bytes`` and ``root``.
    """
    labels = sorted({lab for e in events for lab in getattr(e, "data", ())})
    out = []
    for lab in labels:
        name, _, h = lab.rpartition(":")
        out.append(dict(known_manifest(lab) or {}, name=name, hash=h))
    return out


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith(("_", ".")):
        raise ValueError(f"array name {name!r} must be a plain file stem")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
