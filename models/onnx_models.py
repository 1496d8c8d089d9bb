"""Pretrained ONNX pitch models from inside their wheels, run with onnxruntime, with random twins.

Two models of the zoo (:mod:`models.zoo`) are ONNX graphs shipped inside their PyPI wheels:

- ``basic-pitch``: Spotify's Basic Pitch (Bittner et al. 2022, ICASSP; polyphonic note
  transcription), ``basic_pitch/saved_models/icassp_2022/nmp.onnx``. The file is found through the
  package's import spec without importing ``basic_pitch`` (whose ``__init__`` probes TensorFlow,
  CoreML and TFLite), so the package is installed ``--no-deps``: only onnxruntime runs it.
  Input: 2-s windows (43,844 samples at 22,050 Hz), 30 frames of overlap, unwrapped and trimmed
  as ``basic_pitch.inference.run_inference`` does; 86 frames/s.
- ``swift-f0``: SwiftF0 (a small CNN on three STFT resolutions; monophonic F0),
  ``swift_f0/model.onnx``; 16 kHz, one frame per 256 samples, one clip per run (the graph's batch
  axis is 1).

Layers are named tensors of the graph (:data:`BASIC_PITCH_LAYERS`, :data:`SWIFT_F0_LAYERS`): the
graph is rewritten with the ``onnx`` package to expose them as extra outputs. Each tensor's time
axis is moved to axis 1 and the other axes flattened: ``[batch, frames, features]``. The fixed
front ends (Basic Pitch's CQT and harmonic stack, SwiftF0's log spectrogram) are not layers: the
random twin shares them, so a best-layer search landing there would compare the front end with
itself (a first ci run did so for Basic Pitch's MS-unit cells); the declared log-mel baseline
stands for acoustics. They can be asked for: ``basic_pitch_model(front_end=True)``.

**Random twin** (:meth:`OnnxModel.random_twin`): the same graph with its learnt initializers
redrawn from a seeded NumPy RNG, same shapes and dtypes. Learnt = the weight and bias inputs of
``Conv`` nodes, drawn U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch's default ``Conv`` init;
normalisation scale / shift constants (Basic Pitch's batch norm after the CQT) are reset to 1 / 0.
Fixed signal processing is kept: Basic Pitch's CQT kernels and downsampling filter (the
non-trainable ``cq_t2010v2`` layer), SwiftF0's STFT (computed in the graph, no initializers).
Without the ``onnx`` package the models still run, on their graph outputs only, and their
control is the declared log-mel baseline (:func:`models.zoo.control_for`).
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.errors import UserError

BP_SR = 22050
BP_HOP = 256
#: Basic Pitch's window: 2 s less one hop (``basic_pitch.constants.AUDIO_N_SAMPLES``).
BP_WINDOW = BP_SR * 2 - BP_HOP
BP_OVERLAP_FRAMES = 30
BP_FPS = BP_SR // BP_HOP            # 86, as basic_pitch.constants.ANNOTATIONS_FPS
BP_INPUT = "serving_default_input_2:0"
#: The fixed front end, not a layer of the scorecard (the random twin shares it, and the log-mel
#: baseline stands for acoustics): cqt, the normalised log CQT; harmonic_stack, the same after one
#: scalar batch norm and the stacking of 8 harmonics.
BASIC_PITCH_FRONT_END = {
    "cqt": ("model_1/normalized_log_1/div_no_nan;model_1/normalized_log_1/div_no_nan3", 1),
    "harmonic_stack": ("model_1/harmonic-stacking-diff/concat;model_1/harmonic-stacking-diff/concat", 1),
}
#: layer -> (graph tensor, its time axis). *_conv: the ReLU outputs of the contour / note / onset
#: branches; contour, note, onset: the three sigmoid outputs.
BASIC_PITCH_LAYERS = {
    "contour_conv": ("Relu__38:0", 2),
    "contour": ("StatefulPartitionedCall:0", 1),
    "note_conv": ("Relu__42:0", 2),
    "note": ("StatefulPartitionedCall:1", 1),
    "onset_conv": ("Relu__35:0", 2),
    "onset": ("StatefulPartitionedCall:2", 1),
}

SF0_SR = 16000
SF0_HOP = 256
SF0_FMIN, SF0_FMAX = 46.875, 2093.75
#: The fixed front end (not a scorecard layer): the three log-STFT channels.
SWIFT_F0_FRONT_END = {"spectrogram": ("v352", 3)}
#: conv0 and block1-6: the ReLU outputs of the first conv and of the six residual blocks;
#: pitch_conv, pitch_logits (95 log-spaced pitch bins), voicing_conv: the heads.
SWIFT_F0_LAYERS = {
    "conv0": ("v356", 3),
    **{f"block{i}": (f"v{365 + 9 * (i - 1)}", 3) for i in range(1, 7)},
    "pitch_conv": ("v416", 3),
    "pitch_logits": ("v429", 1),
    "voicing_conv": ("v433", 2),
}
#: Graph outputs used when the onnx package is absent (no intermediate tensors).
SWIFT_F0_OUTPUTS = {"pitch": ("pitch", 1), "confidence": ("confidence", 1)}


def _onnx():
    """The ``onnx`` package, or None when it is not installed."""
    try:
        import onnx
    except ImportError:
        return None
    return onnx


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise UserError("onnxruntime is not installed: pip install -e '.[pitch]' (the ONNX models of the zoo "
                        "run with it)") from None
    return onnxruntime


def packaged_file(package: str, relative: str, dist: str | None = None) -> Path:
    """A data file inside an installed package, found without importing the package.

    Parameters
    ----------
    package : str
        Import name (``basic_pitch``).
    relative : str
        Path inside the package folder.
    dist : str, optional
        Distribution name for the error message (default ``package``).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{dist or package} is not installed: pip install --no-deps {dist or package} "
                        f"(see the README's zoo section)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise UserError(f"{path.name} is not inside the installed {dist or package}: reinstall it "
                        f"(pip install --force-reinstall --no-deps {dist or package})")
    return path


def learnt_initializers(graph, frozen: Callable | None = None) -> dict:
    """Names of a graph's learnt initializers -> ``("conv", fan_in)`` or ``("scale" | "shift", None)``.

    Parameters
    ----------
    graph : onnx.GraphProto
    frozen : callable, optional
        ``frozen(node) -> bool``: nodes whose initializers are fixed signal processing (kept).
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    users: dict = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in inits:
                users.setdefault(name, []).append((node, k))
    out = {}
    for name, uses in users.items():
        if frozen is not None and any(frozen(n) for n, _ in uses):
            continue
        if numpy_helper.to_array(inits[name]).dtype.kind != "f":
            continue
        if all(n.op_type == "Conv" and k in (1, 2) for n, k in uses):
            w = inits.get(uses[0][0].input[1])
            fan_in = int(np.prod(list(w.dims)[1:])) if w is not None else 1
            out[name] = ("conv", max(1, fan_in))
        elif all(_is_norm(n) for n, _ in uses):
            out[name] = ("scale" if uses[0][0].op_type == "Mul" else "shift", None)
    return out


def _is_norm(node) -> bool:
    return node.op_type in ("Mul", "Add") and "batch_normalization" in node.name


def random_initializers(model, seed: int, frozen: Callable | None = None):
    """A copy of an ONNX model whose learnt initializers (:func:`learnt_initializers`) are redrawn.

    Conv weights and biases: U(-b, b), ``b = 1 / sqrt(fan_in)`` (torch's default Conv init), from
    ``numpy.random.default_rng(seed)`` in graph order; normalisation scales 1, shifts 0. Shapes and
    dtypes are kept; every other initializer is copied unchanged.
    """
    import onnx
    from onnx import numpy_helper

    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    learnt = learnt_initializers(twin.graph, frozen)
    rng = np.random.default_rng(int(seed))
    for t in twin.graph.initializer:
        if t.name not in learnt:
            continue
        kind, fan_in = learnt[t.name]
        a = numpy_helper.to_array(t)
        if kind == "conv":
            b = 1.0 / np.sqrt(fan_in)
            new = rng.uniform(-b, b, size=a.shape)
        else:
            new = np.full(a.shape, 1.0 if kind == "scale" else 0.0)
        t.CopyFrom(numpy_helper.from_array(new.astype(a.dtype), t.name))
    return twin


def _with_outputs(model, tensors):
    """The model with ``tensors`` added to the graph outputs (float tensors of unknown shape)."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    produced = {o for n in m.graph.node for o in n.output}
    missing = [t for t in tensors if t not in produced and t not in have]
    if missing:
        raise UserError(f"the ONNX graph has no tensor {missing[0]!r}: this adapter knows the graph of the "
                        f"pinned package version (requirements.lock); reinstall that version")
    for t in tensors:
        if t not in have:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    return m


class OnnxModel:
    """An ONNX graph as a zoo model: named tensors as layers, ``[batch, frames, features]``.

    Parameters
    ----------
    name : str
        Display name (the scorecard row).
    path : pathlib.Path
        The ``.onnx`` file.
    layers : dict
        ``{layer: (tensor name, time axis)}``; used when the ``onnx`` package is installed.
    outputs : dict
        The same for graph outputs only (the layers without the ``onnx`` package).
    sample_rate : int
    info : dict
        Provenance (package version, file).
    frozen : callable, optional
        ``frozen(node) -> bool``: nodes whose initializers the random twin keeps.
    proto : onnx.ModelProto, optional
        The graph itself (a twin's), instead of reading ``path``.
    """

    def __init__(self, name: str, path: Path, layers: dict, outputs: dict, sample_rate: int, info: dict,
                 frozen: Callable | None = None, proto=None):
        ort = _ort()
        self.name, self.path, self.info, self.frozen = name, Path(path), dict(info), frozen
        self.sample_rate = int(sample_rate)
        onnx = _onnx()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")   # shared CPUs
        if onnx is not None:
            self.proto = proto if proto is not None else onnx.load(str(self.path))
            self.tensors = dict(layers)
            graph = _with_outputs(self.proto, [t for t, _ in self.tensors.values()]).SerializeToString()
        else:
            self.proto = None
            self.tensors = dict(outputs)
            graph = str(self.path)
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        self.layers = list(self.tensors)

    def run(self, feeds: dict) -> dict:
        """One session run: ``{layer: np.ndarray [batch, frames, features]}``."""
        names = [t for t, _ in self.tensors.values()]
        out = dict(zip(names, self.session.run(names, feeds)))
        res = {}
        for layer, (t, axis) in self.tensors.items():
            a = np.moveaxis(np.asarray(out[t], dtype=np.float32), axis, 1)
            res[layer] = a.reshape(a.shape[0], a.shape[1], -1)
        return res

    def random_twin(self, seed: int = 0):
        """The same graph with redrawn learnt initializers (:func:`random_initializers`), or None
        without the ``onnx`` package."""
        if self.proto is None:
            return None
        return type(self)(self.name, self.path, self.tensors, {}, self.sample_rate,
                          dict(self.info, random_twin_seed=int(seed)), self.frozen,
                          proto=random_initializers(self.proto, seed, self.frozen))

    def same_weights(self, other) -> bool:
        """Whether ``other`` has the same learnt initializers (a twin drawn with the model's own weights)."""
        if self.proto is None or getattr(other, "proto", None) is None:
            return False
        from onnx import numpy_helper

        names = learnt_initializers(self.proto.graph, self.frozen)
        a = {t.name: t for t in self.proto.graph.initializer if t.name in names}
        b = {t.name: t for t in other.proto.graph.initializer if t.name in names}
        return all(np.array_equal(numpy_helper.to_array(a[n]), numpy_helper.to_array(b[n])) for n in a)


# ------------------------------------------------------------------------------------- Basic Pitch
def _bp_frozen(node) -> bool:
    return "cq_t2010v2" in node.name          # the CQT layer: fixed kernels, not trained


class BasicPitch(OnnxModel):
    """Basic Pitch's ``nmp.onnx``; ``__call__`` windows clips as ``basic_pitch.inference`` does."""

    def __call__(self, audio: torch.Tensor) -> dict:
        x = audio.detach().cpu().float().numpy()
        b, n = x.shape
        olap = BP_OVERLAP_FRAMES * BP_HOP
        hop = BP_WINDOW - olap
        x = np.concatenate([np.zeros((b, olap // 2), np.float32), x], axis=1)
        n_win = max(1, int(np.ceil(x.shape[1] / hop)))
        x = np.pad(x, ((0, 0), (0, (n_win - 1) * hop + BP_WINDOW - x.shape[1])))
        windows = np.stack([x[:, i * hop:i * hop + BP_WINDOW] for i in range(n_win)], 1)   # [b, w, samples]
        out = self.run({BP_INPUT: windows.reshape(b * n_win, BP_WINDOW, 1)})
        keep = max(1, int(np.floor(n * BP_FPS / BP_SR)))
        half = BP_OVERLAP_FRAMES // 2
        res = {}
        for layer, a in out.items():
            a = a[:, half:-half].reshape(b, n_win * (a.shape[1] - 2 * half), a.shape[-1])
            res[layer] = torch.from_numpy(np.ascontiguousarray(a[:, :keep]))
        return res


def basic_pitch_model(front_end: bool = False) -> BasicPitch:
    """Basic Pitch (ICASSP 2022 model) from the ``nmp.onnx`` inside the ``basic-pitch`` wheel.

    Parameters
    ----------
    front_end : bool
        Also expose :data:`BASIC_PITCH_FRONT_END` (first) as layers.
    """
    path = packaged_file("basic_pitch", "saved_models/icassp_2022/nmp.onnx", "basic-pitch")
    info = {"package": f"basic-pitch {md.version('basic-pitch')}", "file": "saved_models/icassp_2022/nmp.onnx",
            "runtime": f"onnxruntime {md.version('onnxruntime')}", "frames_per_s": BP_FPS}
    outputs = {k: v for k, v in BASIC_PITCH_LAYERS.items() if v[0].startswith("StatefulPartitionedCall")}
    layers = {**BASIC_PITCH_FRONT_END, **BASIC_PITCH_LAYERS} if front_end else BASIC_PITCH_LAYERS
    return BasicPitch("basic-pitch", path, layers, outputs, BP_SR, info, frozen=_bp_frozen)


# ------------------------------------------------------------------------------------------ SwiftF0
class SwiftF0(OnnxModel):
    """SwiftF0's ``model.onnx``, one clip per run (its batch axis is 1), full pitch range."""

    def __call__(self, audio: torch.Tensor) -> dict:
        x = audio.detach().cpu().float().numpy()
        rng = {"fmin": np.asarray(SF0_FMIN, np.float32), "fmax": np.asarray(SF0_FMAX, np.float32)}
        per = [self.run({"audio": x[i:i + 1], **rng}) for i in range(x.shape[0])]
        return {layer: torch.from_numpy(np.concatenate([p[layer] for p in per])) for layer in self.layers}


def swift_f0_model(front_end: bool = False) -> SwiftF0:
    """SwiftF0 from the ``model.onnx`` inside the ``swift-f0`` wheel.

    Parameters
    ----------
    front_end : bool
        Also expose :data:`SWIFT_F0_FRONT_END` (first) as a layer.
    """
    path = packaged_file("swift_f0", "model.onnx", "swift-f0")
    info = {"package": f"swift-f0 {md.version('swift-f0')}", "file": "model.onnx",
            "runtime": f"onnxruntime {md.version('onnxruntime')}", "hop_ms": 1000 * SF0_HOP / SF0_SR}
    layers = {**SWIFT_F0_FRONT_END, **SWIFT_F0_LAYERS} if front_end else SWIFT_F0_LAYERS
    return SwiftF0("swift-f0", path, layers, SWIFT_F0_OUTPUTS, SF0_SR, info)
