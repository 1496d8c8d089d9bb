"""Content-addressed cache for corpora, trained models and extracted activations.

Every entry is a directory ``<root>/<namespace>/<key>/`` holding the files its builder wrote and a
``_manifest.json`` (SHA-256 and size of every file, the config, the producing code's version, the
build time). The key hashes the namespace, the config (which must carry the data manifest hash and
the seed), the producing code's ``version`` string and the torch version.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

log = logging.getLogger("mec.cache")

MANIFEST = "_manifest.json"
FORMAT = 1
ENV_VAR = "MEC_CACHE_DIR"


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


@dataclass
class CacheEvent:
    namespace: str
    key: str
    outcome: str  # "hit" | "miss" | "rebuilt"
    seconds: float

    def to_dict(self) -> dict:
        return {"namespace": self.namespace, "key": self.key, "outcome": self.outcome,
                "seconds": round(self.seconds, 3)}


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
        payload = {"namespace": namespace, "config": config, "version": version,
                   "torch": _torch_version(), "format": FORMAT}
        return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:32]

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
        if self._valid(final):
            self._record(namespace, key, "hit", t0)
            return final
        ns_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(ns_dir / f".{key}.lock")):
            if self._valid(final):  # another worker built it while we waited
                self._record(namespace, key, "hit", t0)
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
            self._record(namespace, key, outcome, t0)
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

    def _record(self, namespace, key, outcome, t0) -> None:
        ev = CacheEvent(namespace, key, outcome, time.perf_counter() - t0)
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
