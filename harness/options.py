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
                              "music with note labels, e.g. MAESTRO or MusicNet (paper tier)"),
}
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
    def from_config(cls, config) -> "DataRoots":
        vals = {}
        for key, root in DATA_ROOTS.items():
            opt = config.getoption(root.option.lstrip("-").replace("-", "_"), default=None)
            vals[key] = opt or os.environ.get(root.env) or root.default
        return cls(vals)

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
