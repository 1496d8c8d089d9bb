"""The HEAR 2021 model API both ways: score any HEAR module, and export the project's models as one.

A HEAR module (Turian et al. 2022, "HEAR: Holistic Evaluation of Audio Representations") is an
importable Python module with three functions and a model attribute:

- ``load_model(model_file_path="") -> model``; ``model.sample_rate`` (one of
  :data:`HEAR_SAMPLE_RATES`), ``model.scene_embedding_size``, ``model.timestamp_embedding_size``;
- ``get_timestamp_embeddings(audio [n_sounds, n_samples], model) -> (embeddings [n_sounds,
  n_timestamps, dim], timestamps [n_sounds, n_timestamps] in ms)``;
- ``get_scene_embeddings(audio [n_sounds, n_samples], model) -> [n_sounds, dim]``.

**Scoring one** (``--model hear:<module>[@<model file>]``, :func:`hear_model`): :class:`HearModel`
imports the module, calls ``load_model`` (with the model file after ``@``, else its default), checks
the API and the rate, probes the two functions on 1 s of quiet noise (shapes), and exposes two
layers: ``timestamp`` ``[batch, frames, dim]`` (time-resolved: the SSM probe uses it) and
``scene`` ``[batch, dim]``. Its control is a random twin when ``load_model`` returns a
``torch.nn.Module`` with parameters (deep copy, ``reset_parameters()`` on every submodule, seeded),
else the declared log-mel baseline (e.g. hearbaseline's torchcrepe wrapper keeps CREPE in
torchcrepe's global state, so its module has no parameters of its own).

**Exporting one** (:func:`export`, ``python -m models.hear OUT_DIR``): writes a package
``OUT_DIR/<name>/`` (``__init__.py`` with the three functions, ``weights.pt``, ``hear.json``) for
the project's Kim et al. CNN (:class:`models.kim_cnn.KimCNN`, or the ``kim_cnn`` zoo entry):
timestamp embeddings are the last conv block averaged over the mel axis (``features.16`` of
:func:`models.zoo.kim_cnn_model`, about 100 ms per frame), scene embeddings the pooled units
(``flatten``). The package imports this project (``models``, ``stimuli``), so it runs where
music-emergence-claims is installed; ``PYTHONPATH=OUT_DIR pytest -m claims --model hear:<name>``
scores it and gives back the zoo adapter's own activations.
"""
from __future__ import annotations

import copy
import importlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.errors import UserError

HEAR_FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
#: The sample rates the HEAR 2021 API allows.
HEAR_SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)
#: Length of the probe clip run at load (seconds).
PROBE_S = 0.5
EXPORT_FORMAT = 1


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg and msg[0] else type(exc).__name__


def parse_hear_spec(spec: str) -> tuple[str, str]:
    """``hear:<module>[@<model file>]`` -> ``(module, model file or "")``."""
    body = spec[len("hear:"):] if spec.startswith("hear:") else ""
    module, _, path = body.partition("@")
    module = module.strip()
    if not module or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", module):
        raise UserError(f"model spec {spec!r} needs a module name: use hear:<module>[@<model file>], "
                        f"e.g. hear:hearbaseline.torchcrepe")
    return module, path.strip()


def import_hear_module(name: str, spec: str | None = None):
    """Import a HEAR module and check it defines :data:`HEAR_FUNCTIONS` (one-line errors)."""
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        raise UserError(f"cannot import HEAR module {name!r}{f' for model spec {spec!r}' if spec else ''} "
                        f"({_one_line(exc)}): install it, or put its folder on PYTHONPATH") from None
    missing = [f for f in HEAR_FUNCTIONS if not callable(getattr(mod, f, None))]
    if missing:
        raise UserError(f"HEAR module {name!r} has no {missing[0]}(): a HEAR module defines "
                        f"{', '.join(HEAR_FUNCTIONS)}")
    return mod


def check_sample_rate(model, name: str) -> int:
    """``model.sample_rate`` as an int, or a one-line error when it is missing or not a HEAR rate."""
    sr = getattr(model, "sample_rate", None)
    if sr is None:
        raise UserError(f"the model that HEAR module {name!r} loads has no sample_rate attribute: set "
                        f"model.sample_rate to one of {', '.join(map(str, HEAR_SAMPLE_RATES))} Hz")
    try:
        ok = float(sr) == int(sr) and int(sr) in HEAR_SAMPLE_RATES
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"HEAR module {name!r} declares sample_rate={sr!r}, which HEAR does not allow: use one "
                        f"of {', '.join(map(str, HEAR_SAMPLE_RATES))} Hz")
    return int(sr)


class HearModel:
    """A HEAR module as a zoo model: layers ``timestamp`` ``[batch, frames, dim]`` and ``scene``
    ``[batch, dim]``.

    Parameters
    ----------
    module_name : str
        Import name of the HEAR module.
    model_file_path : str
        Passed to ``load_model`` (``""``: the module's default).
    device : str or torch.device
        Where the audio goes (and a torch model is moved).
    name : str, optional
        Display name (default ``hear:<module>``).
    loaded : object, optional
        An already loaded HEAR model (the random twin's), instead of calling ``load_model``.
    """

    layers = ["timestamp", "scene"]

    def __init__(self, module_name: str, model_file_path: str = "", device="cpu", name: str | None = None,
                 loaded=None):
        self.module_name = module_name
        self.model_file_path = str(model_file_path or "")
        self.module = import_hear_module(module_name)
        self.device = torch.device(device)
        self.name = name or f"hear:{module_name}"
        if loaded is None:
            try:
                loaded = self.module.load_model(self.model_file_path) if self.model_file_path else self.module.load_model()
            except UserError:
                raise
            except Exception as exc:   # a HEAR module's own failure: name it in one line
                raise UserError(f"HEAR module {module_name!r}: load_model({self.model_file_path!r}) failed "
                                f"({_one_line(exc)}): fix the module or its model file") from None
        self.hear_model = loaded
        if isinstance(loaded, torch.nn.Module):
            loaded.to(self.device).eval()
        self.sample_rate = check_sample_rate(loaded, module_name)
        self.dims = self._probe()
        self.info = {"hear_module": module_name, "model_file_path": self.model_file_path,
                     "timestamp_dim": self.dims[0], "scene_dim": self.dims[1]}
        dist = _distribution(module_name)
        if dist:
            self.info["package"] = dist

    @torch.no_grad()
    def _embed(self, audio: torch.Tensor) -> dict:
        x = audio.to(self.device, torch.float32)
        got = self.module.get_timestamp_embeddings(x, self.hear_model)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise UserError(f"HEAR module {self.module_name!r}: get_timestamp_embeddings must return "
                            f"(embeddings, timestamps), got {type(got).__name__}")
        emb, ts = (torch.as_tensor(np.asarray(g) if not isinstance(g, torch.Tensor) else g) for g in got)
        scene = self.module.get_scene_embeddings(x, self.hear_model)
        scene = torch.as_tensor(np.asarray(scene) if not isinstance(scene, torch.Tensor) else scene)
        n = x.shape[0]
        if emb.ndim != 3 or emb.shape[0] != n or tuple(ts.shape) != tuple(emb.shape[:2]):
            raise UserError(f"HEAR module {self.module_name!r}: get_timestamp_embeddings returned embeddings "
                            f"{tuple(emb.shape)} and timestamps {tuple(ts.shape)} for {n} sounds: expected "
                            f"(n_sounds, n_timestamps, dim) and (n_sounds, n_timestamps)")
        if scene.ndim != 2 or scene.shape[0] != n:
            raise UserError(f"HEAR module {self.module_name!r}: get_scene_embeddings returned shape "
                            f"{tuple(scene.shape)} for {n} sounds: expected (n_sounds, dim)")
        return {"timestamp": emb.float(), "scene": scene.float()}

    def _probe(self) -> tuple[int, int]:
        g = torch.Generator().manual_seed(0)
        out = self._embed(0.01 * torch.randn(1, int(PROBE_S * self.sample_rate), generator=g))
        return int(out["timestamp"].shape[-1]), int(out["scene"].shape[-1])

    def __call__(self, audio: torch.Tensor) -> dict:
        return self._embed(audio)

    def random_twin(self, seed: int = 0):
        """A :class:`HearModel` on a re-initialised deep copy of the loaded torch model, or None when the
        loaded model is not a ``torch.nn.Module`` with parameters (the control is then the log-mel baseline)."""
        from models.adapters import random_twin

        m = self.hear_model
        if not isinstance(m, torch.nn.Module) or not any(True for _ in m.parameters()):
            return None
        fresh = random_twin(m, seed=seed)
        if all(torch.equal(a, b) for a, b in zip(m.parameters(), fresh.parameters())):
            return None                      # nothing that reset_parameters() reaches
        return HearModel(self.module_name, self.model_file_path, self.device, name=self.name, loaded=fresh.eval())

    def same_weights(self, other) -> bool:
        a, b = self.hear_model, getattr(other, "hear_model", None)
        if not (isinstance(a, torch.nn.Module) and isinstance(b, torch.nn.Module)):
            return a is b
        pa, pb = list(a.parameters()), list(b.parameters())
        return len(pa) == len(pb) and all(torch.equal(x, y) for x, y in zip(pa, pb))


def _distribution(module_name: str) -> str | None:
    import importlib.metadata as md

    top = module_name.split(".")[0]
    for dist in md.packages_distributions().get(top, []):
        try:
            return f"{dist} {md.version(dist)}"
        except md.PackageNotFoundError:
            continue
    return None


def hear_model(spec: str, device="cpu") -> HearModel:
    """The :class:`HearModel` that a ``hear:<module>[@<model file>]`` spec names."""
    module, path = parse_hear_spec(spec)
    if path and not Path(path).expanduser().exists():
        raise UserError(f"model file {path} of spec {spec!r} does not exist: pass hear:<module>@<existing file>, "
                        f"or hear:<module> for the module's default weights")
    name = f"hear:{module}@{Path(path).name}" if path else f"hear:{module}"   # distinct scorecard rows per weights
    return HearModel(module, str(Path(path).expanduser()) if path else "", device=device, name=name)


# ------------------------------------------------------------------------------------------ export
@dataclass(frozen=True)
class ExportKind:
    """How one of the project's architectures becomes a HEAR module."""

    cls: Callable                       # the torch class (isinstance check)
    config: Callable                    # net -> JSON-able kwargs of build
    build: Callable                     # **config -> a fresh net
    adapter: Callable                   # (net, device) -> zoo model (models.zoo)
    timestamp_layer: str
    scene_layer: str
    sample_rate: int
    description: str


def _kinds() -> dict:
    from models.kim_cnn import KimCNN, build_kim_cnn
    from models.zoo import kim_cnn_model

    return {"kim_cnn": ExportKind(
        cls=KimCNN, config=lambda n: {"n_classes": int(n.n_classes), "width": float(n.width)},
        build=lambda n_classes, width: build_kim_cnn(n_classes, width, seed=0),
        adapter=lambda net, device: kim_cnn_model(net, device), timestamp_layer="features.16",
        scene_layer="flatten", sample_rate=22050,
        description="Kim et al. (2024) CNN: timestamp = last conv block averaged over mel bands, "
                    "scene = the pooled units")}


def _kind_of(net) -> tuple[str, ExportKind, torch.nn.Module]:
    for key, k in _kinds().items():
        for cand in (net, getattr(net, "module", None)):
            if isinstance(cand, k.cls):
                return key, k, cand
    raise UserError(f"export knows {', '.join(_kinds())} (models.kim_cnn.KimCNN or its zoo adapter), not "
                    f"{type(net).__name__}: pass a KimCNN or parse_spec('kim_cnn').model")


class ExportedHearModel(torch.nn.Module):
    """The model that an exported HEAR module's ``load_model`` returns: the project's network plus
    the HEAR attributes; the embeddings come from its zoo adapter (:class:`ExportKind`)."""

    def __init__(self, kind: str, net: torch.nn.Module, meta: dict | None = None):
        super().__init__()
        k = _kinds()[kind]
        self.kind, self.net, self.meta = kind, net.eval(), dict(meta or {})
        self.sample_rate = k.sample_rate
        probe = self._layers(torch.zeros(1, k.sample_rate))
        self.timestamp_embedding_size = int(probe[k.timestamp_layer].shape[-1])
        self.scene_embedding_size = int(probe[k.scene_layer].reshape(1, -1).shape[-1])

    @torch.no_grad()
    def _layers(self, audio: torch.Tensor) -> dict:
        k = _kinds()[self.kind]
        dev = next(self.net.parameters()).device
        return k.adapter(self.net, dev)(audio.to(dev, torch.float32))

    def timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings [n, frames, dim], timestamps [n, frames] ms)``; frame centres are spread
        evenly over the clip (the network's frames tile it)."""
        _check_audio(audio)
        k = _kinds()[self.kind]
        emb = self._layers(audio)[k.timestamp_layer]
        n, t = emb.shape[0], emb.shape[1]
        step = audio.shape[-1] / t / self.sample_rate * 1000.0
        ts = ((torch.arange(t, dtype=torch.float32) + 0.5) * step).expand(n, t).to(emb.device)
        return emb, ts

    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """``[n, dim]``."""
        _check_audio(audio)
        k = _kinds()[self.kind]
        s = self._layers(audio)[k.scene_layer]
        return s.reshape(s.shape[0], -1)


def _check_audio(audio) -> None:
    if not isinstance(audio, torch.Tensor) or audio.ndim != 2:
        raise ValueError("audio must be a 2-D torch tensor (n_sounds, n_samples)")


_MODULE_TEMPLATE = '''"""HEAR 2021 module: {description}.

Exported by music-emergence-claims {version} (models/hear.py) from {source}; it imports that
package, so run it where music-emergence-claims is installed. Score it with
``PYTHONPATH=<this folder's parent> pytest -m claims --model hear:{name}``.
"""
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def load_model(model_file_path: str = ""):
    """The model (``sample_rate`` {sample_rate} Hz); ``model_file_path`` defaults to weights.pt beside this file."""
    from models.hear import load_exported

    return load_exported(_HERE / "hear.json", model_file_path or _HERE / "weights.pt")


def get_timestamp_embeddings(audio, model):
    """(embeddings [n_sounds, n_timestamps, {timestamp_dim}], timestamps [n_sounds, n_timestamps] in ms)."""
    return model.timestamp_embeddings(audio)


def get_scene_embeddings(audio, model):
    """Embeddings [n_sounds, {scene_dim}]."""
    return model.scene_embeddings(audio)
'''


def export(net, out_dir, name: str = "mec_kim_cnn", source: str = "", overwrite: bool = False) -> Path:
    """Write a HEAR module package for one of the project's networks.

    Parameters
    ----------
    net : models.kim_cnn.KimCNN or a zoo adapter holding one (``parse_spec("kim_cnn").model``)
    out_dir : str or pathlib.Path
        The package goes to ``out_dir/name/``; put ``out_dir`` on ``PYTHONPATH`` to import it.
    name : str
        The module's import name (a Python identifier).
    source : str
        Provenance recorded in ``hear.json`` and the module docstring (e.g. the spec).
    overwrite : bool
        Replace an existing ``out_dir/name/``.

    Returns
    -------
    pathlib.Path
        The package folder.
    """
    import importlib.metadata as md

    if not name.isidentifier():
        raise UserError(f"HEAR module name {name!r} is not a Python identifier: use letters, digits and "
                        f"underscores, e.g. mec_kim_cnn")
    key, k, module = _kind_of(net)
    pkg = Path(out_dir).expanduser() / name
    if pkg.exists() and any(pkg.iterdir()) and not overwrite:
        raise UserError(f"{pkg} already exists: pick another name or out_dir, or pass overwrite=True (--overwrite)")
    pkg.mkdir(parents=True, exist_ok=True)
    model = ExportedHearModel(key, copy.deepcopy(module).cpu().eval())
    try:
        version = md.version("music-emergence-claims")
    except md.PackageNotFoundError:
        version = "(source tree)"
    meta = {"format": EXPORT_FORMAT, "kind": key, "config": k.config(module), "sample_rate": k.sample_rate,
            "timestamp_layer": k.timestamp_layer, "scene_layer": k.scene_layer,
            "timestamp_embedding_size": model.timestamp_embedding_size,
            "scene_embedding_size": model.scene_embedding_size, "source": source or type(module).__name__,
            "exported_by": f"music-emergence-claims {version}"}
    torch.save(model.net.state_dict(), pkg / "weights.pt")
    (pkg / "hear.json").write_text(json.dumps(meta, indent=2) + "\n")
    (pkg / "__init__.py").write_text(_MODULE_TEMPLATE.format(
        description=k.description, version=version, source=meta["source"], name=name,
        sample_rate=k.sample_rate, timestamp_dim=meta["timestamp_embedding_size"],
        scene_dim=meta["scene_embedding_size"]))
    importlib.invalidate_caches()
    return pkg


def load_exported(meta_path, weights_path) -> ExportedHearModel:
    """``load_model`` of an exported module: rebuild the network from ``hear.json``, load the weights."""
    meta_path, weights_path = Path(meta_path), Path(weights_path).expanduser()
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != EXPORT_FORMAT or meta.get("kind") not in _kinds():
        raise UserError(f"{meta_path} is not a HEAR export this version reads (format {meta.get('format')!r}, kind "
                        f"{meta.get('kind')!r}): re-export with python -m models.hear")
    if not weights_path.is_file():
        raise UserError(f"HEAR weights file {weights_path} does not exist: pass the weights.pt written by the export")
    k = _kinds()[meta["kind"]]
    net = k.build(**meta["config"])
    try:
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, OSError) as exc:
        raise UserError(f"cannot load {weights_path} into the exported {meta['kind']} ({_one_line(exc)}): pass "
                        f"the weights.pt written with this hear.json") from None
    return ExportedHearModel(meta["kind"], net, meta)


def export_spec(spec: str, out_dir, name: str, cache=None, device="cpu", overwrite: bool = False) -> Path:
    """Export the model a zoo spec names (``kim_cnn``: the trained network from the harness cache)."""
    from models.zoo import parse_spec

    entry = parse_spec(spec, device=device, cache=cache)
    return export(entry.model, out_dir, name=name, source=f"model spec {spec!r}", overwrite=overwrite)


def main(argv=None) -> int:
    """``python -m models.hear OUT_DIR``: export the project's Kim et al. CNN as a HEAR module.

    Returns 0, or 2 after a one-line error.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m models.hear", description=main.__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="the package is written to OUT_DIR/NAME/")
    ap.add_argument("--spec", default="kim_cnn", help="zoo spec of the model (default: %(default)s, the ci-tier "
                                                      "network trained without music, from the cache)")
    ap.add_argument("--name", default="mec_kim_cnn", help="module name (default: %(default)s)")
    ap.add_argument("--cache-dir", default=None, help="harness cache (default: $MEC_CACHE_DIR or the user cache)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR/NAME/")
    args = ap.parse_args(argv)
    try:
        from harness.cache import Cache, default_cache_root

        cache = Cache(args.cache_dir or default_cache_root())
        pkg = export_spec(args.spec, args.out_dir, args.name, cache=cache, overwrite=args.overwrite)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote HEAR module {pkg}: score it with PYTHONPATH={pkg.parent} pytest -m claims --model hear:{args.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
