"""Command-line options, environment variables and data roots of the claims suite."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MLFLOW_URI = "sqlite:///mlruns/mlflow.db"


@dataclass(frozen=True)
class DataRoot:
    """A user data location: its option, its environment variable and its default."""

    key: str
    option: str
    env: str
    default: str | None
    what: str


# Defaults are relative to the repository root.
DATA_ROOTS = {
    "shared": DataRoot("shared", "--shared-data", "MEC_SHARED_DATA", "../shared/data",
                       "the shared data folder (natsound165/, audioset/, kim2024/)"),
    "natsound165": DataRoot("natsound165", "--natsound165-root", "MEC_NATSOUND165_ROOT", None,
                            "the 165 natural sounds (wav/ + category_labels.csv)"),
    "audioset_meta": DataRoot("audioset_meta", "--audioset-meta", "MEC_AUDIOSET_META", None,
                              "AudioSet segment CSVs and ontology.json"),
    "audioset_audio": DataRoot("audioset_audio", "--audioset-audio", "MEC_AUDIOSET_AUDIO", None,
                               "AudioSet clips named <YTID>_<start>.<ext>"),
    "kim2024_lists": DataRoot("kim2024_lists", "--kim2024-lists", "MEC_KIM2024_LISTS", None,
                              "Kim et al.'s music_categories.txt and excluded_clips.csv"),
    "checkpoints": DataRoot("checkpoints", "--checkpoints", "MEC_CHECKPOINTS", None,
                            "pretrained checkpoints (hub ids or local folders)"),
    "music_audio": DataRoot("music_audio", "--music-audio", "MEC_MUSIC_AUDIO", None,
                            "a folder of music audio for pre-training (paper tier)"),
    "speech_audio": DataRoot("speech_audio", "--speech-audio", "MEC_SPEECH_AUDIO", None,
                             "a folder of speech audio for self-supervised training (paper tier)"),
    "transcription": DataRoot("transcription", "--transcription-data", "MEC_TRANSCRIPTION_DATA", None,
                              "music with note labels as *.npz excerpts, e.g. MAESTRO converted by "
                              "python -m stimuli.open_data transcription (paper and lab tiers)"),
    # open datasets as their distributors ship them (the lab tier; layouts in docs/open_data.md)
    "fsd50k": DataRoot("fsd50k", "--fsd50k", "MEC_FSD50K", None,
                       "FSD50K (FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.ground_truth/; lab tier)"),
    "esc50": DataRoot("esc50", "--esc50", "MEC_ESC50", None,
                      "ESC-50 (audio/ and meta/esc50.csv; Kim et al.'s second held-out set, every tier)"),
    "librispeech": DataRoot("librispeech", "--librispeech", "MEC_LIBRISPEECH", None,
                            "LibriSpeech (<subset>/<speaker>/<chapter>/*.flac; lab tier)"),
    "fma": DataRoot("fma", "--fma", "MEC_FMA", None,
                    "the Free Music Archive (fma_metadata/ and fma_<subset>/; lab tier)"),
    "guitarset": DataRoot("guitarset", "--guitarset", "MEC_GUITARSET", None,
                          "GuitarSet (annotation/*.jams and audio_mono-mic/; lab tier)"),
    "gtzan": DataRoot("gtzan", "--gtzan", "MEC_GTZAN", None,
                      "GTZAN (genres_original/<genre>/ or genres/<genre>/; lab tier)"),
}
#: Tiers at which a selected claim's missing data root stops the session (at ``ci`` the claim is skipped).
DATA_TIERS = ("paper", "lab")
# Subfolders of the shared folder that stand in when a specific root is not given.
SHARED_FALLBACK = {"natsound165": "natsound165", "audioset_meta": "audioset", "kim2024_lists": "kim2024"}


class DataRoots:
    """Resolves data roots from options, environment variables and defaults.

    ``get(key)`` returns an existing Path or None; ``require(key)`` raises a one-line
    :class:`UserError` naming the missing path and the option that sets it.
    """

    def __init__(self, values: dict):
        self._values = {k: v for k, v in values.items() if v}

    @classmethod
    def resolve(cls, options: dict) -> "DataRoots":
        """Each root from ``options[key]``, else its environment variable, else its default."""
        return cls({key: options.get(key) or os.environ.get(root.env) or root.default
                    for key, root in DATA_ROOTS.items()})

    @classmethod
    def from_config(cls, config) -> "DataRoots":
        return cls.resolve({key: config.getoption(root.option.lstrip("-").replace("-", "_"), default=None)
                            for key, root in DATA_ROOTS.items()})

    @classmethod
    def from_env(cls) -> "DataRoots":
        """Roots from the environment variables and defaults alone (for scripts outside pytest)."""
        return cls.resolve({})

    def explicit(self, key: str) -> bool:
        """Whether ``key`` was set by its option, its environment variable or a default of its own (not through
        the shared folder)."""
        return bool(self._values.get(key))

    def candidate(self, key: str) -> Path | None:
        v = self._values.get(key)
        if v is None and key in SHARED_FALLBACK and self._values.get("shared"):
            v = str(Path(self._values["shared"]) / SHARED_FALLBACK[key])
        if v is None:
            return None
        p = Path(v).expanduser()
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()

    def get(self, key: str) -> Path | None:
        p = self.candidate(key)
        return p if p is not None and p.exists() else None

    def require(self, key: str) -> Path:
        root = DATA_ROOTS[key]
        p = self.candidate(key)
        if p is None or not p.exists():
            where = f"{p} does not exist" if p is not None else "no path is set"
            raise UserError(f"{root.what}: {where}; set {root.option} PATH or {root.env}=PATH")
        return p

    def missing_reason(self, key: str) -> str | None:
        try:
            self.require(key)
        except UserError as e:
            return str(e)
        return None

    def describe(self) -> dict:
        return {k: (str(self.candidate(k)) if self.candidate(k) else None) for k in DATA_ROOTS}


def resolve_device(name: str):
    """Resolve ``auto``/``cpu``/``cuda``/``cuda:N`` to a torch.device, with a one-line error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA device is visible; use --device auto or --device cpu")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"--device {name!r} is not a device: use auto, cpu, cuda or cuda:N")


def resolve_mlflow_uri(uri: str) -> str:
    """Make a relative ``sqlite:///path`` absolute against the repository root and create its folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        rel = uri[len("sqlite:///"):]
        path = (REPO_ROOT / rel).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if uri.startswith("sqlite:////"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def check_tracking_reachable(uri: str, timeout_s: float = 3.0) -> None:
    """Fail fast, in one line, when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 - user-given URI
            r.read(16)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"MLflow tracking server {uri} is unreachable ({reason}); start it with "
                        f"`mlflow server --host 127.0.0.1 --port 5000` or use --mlflow-uri {DEFAULT_MLFLOW_URI}")


# ------------------------------------------------------------------ scale-out: workers and shards
SESSION_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def validate_session_id(session_id: str) -> str:
    """Check a user-given session id (``--session-id`` / ``MEC_SESSION_ID``).

    Shards on several machines pass the same id so their runs join one session in MLflow. The id
    goes into MLflow filter strings and folder names, so only ``[A-Za-z0-9_.-]``, 1 to 64 chars.
    """
    if not session_id or len(session_id) > 64 or not set(session_id) <= SESSION_ID_CHARS:
        raise UserError(f"--session-id {session_id!r}: use 1-64 characters from A-Z a-z 0-9 - _ . "
                        f"(e.g. --session-id lab-$(date +%Y%m%d-%H%M))")
    return session_id


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``--shard i/n`` (1-based) into ``(i, n)``; one-line error otherwise."""
    try:
        i_text, n_text = text.split("/")
        index, count = int(i_text), int(n_text)
    except ValueError:
        index = count = 0
    if count < 1 or not 1 <= index <= count:
        raise UserError(f"--shard {text!r}: expected i/n with 1 <= i <= n, e.g. --shard 2/3")
    return index, count


def shard_members(claim_nodeids: list[str], index: int, count: int) -> set[str]:
    """The claim tests that shard ``index`` of ``count`` runs.

    Round-robin over the sorted pytest node ids, so the split is deterministic, balanced to within
    one claim, and identical on every machine that collects the same tests (same commit, same
    ``-k``/``-m``). Every claim lands in exactly one shard.
    """
    ordered = sorted(set(claim_nodeids))
    return {nid for k, nid in enumerate(ordered) if k % count == index - 1}


def worker_index(worker_id: str | None) -> int | None:
    """``"gw3"`` → 3; None (not an xdist worker) → None."""
    if not worker_id:
        return None
    digits = worker_id.removeprefix("gw")
    return int(digits) if digits.isdigit() else None


def worker_device(device, worker_id: str | None, n_gpus: int):
    """The device of one pytest-xdist worker.

    Worker ``gwK`` gets ``cuda:(K mod n_gpus)`` when the session resolved to plain ``cuda`` (or
    ``auto`` on a GPU box). An explicit ``cuda:N`` and ``cpu`` are kept as given, as is the
    controller's (``worker_id`` None) device.
    """
    import torch

    device = torch.device(device)
    k = worker_index(worker_id)
    if device.type != "cuda" or device.index is not None or k is None or n_gpus < 1:
        return device
    return torch.device("cuda", k % n_gpus)


def threads_per_worker(n_cores: int, n_workers: int) -> int:
    """Torch intra-op threads for each of ``n_workers`` CPU workers on ``n_cores`` cores: ``max(1, cores // workers)``."""
    return max(1, int(n_cores) // max(1, int(n_workers)))
