"""A generic adapter from any audio model to per-layer activations.

The protocol: a model is a callable that maps a float waveform batch ``[batch, samples]`` at its
``sample_rate`` to named layer activations ``{layer_name: tensor [batch, time?, features]}``, and
declares ``sample_rate`` (Hz) and ``layers`` (names, in order). Three implementations:

- :class:`TransformersAudioModel` — any transformers audio encoder (hub id or local folder, or an
  already-built ``PreTrainedModel``); every hidden state is a layer (``hidden_0`` = the input to the
  first transformer block, i.e. the projected conv features plus positional embedding);
- :class:`HookedModule` — any ``torch.nn.Module``; forward hooks on named submodules;
- :class:`CallableModel` — any function returning the dictionary.

:func:`activations` resamples to the model's rate, batches, pools over time and returns numpy.
:func:`random_twin` re-initialises the weights (the untrained control).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from harness.errors import UserError

POOLS = ("time_mean", "none")


@runtime_checkable
class AudioModel(Protocol):
    """What :func:`activations` needs from a model."""

    sample_rate: int
    layers: list

    def __call__(self, audio: torch.Tensor) -> dict:  # pragma: no cover - protocol
        ...


def _device(device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


class TransformersAudioModel:
    """A transformers audio encoder whose hidden states are the layers.

    Parameters
    ----------
    id_or_folder : str, pathlib.Path or transformers.PreTrainedModel
        A hub id (e.g. ``facebook/wav2vec2-base``), a local folder written by ``save_pretrained``,
        or a built model. Pre-training / CTC / classification wrappers are unwrapped to their
        base encoder (``model.base_model``).
    sample_rate : int, optional
        Overrides the rate from the folder's feature-extractor config (default 16000).
    normalize : bool, optional
        Zero-mean unit-variance per clip before the model (wav2vec2-style ``do_normalize``); default
        taken from the feature-extractor config when there is one, else True.
    device : str or torch.device
        Where the model runs.
    local_files_only : bool
        Do not try the hub (a folder is always local).
    """

    def __init__(self, id_or_folder, sample_rate: int | None = None, normalize: bool | None = None,
                 device="cpu", local_files_only: bool = False):
        from transformers import PreTrainedModel

        fe_sr, fe_norm = None, None
        if isinstance(id_or_folder, PreTrainedModel):
            model = id_or_folder
            self.source = type(model).__name__
        else:
            from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

            src = str(id_or_folder)
            is_dir = Path(src).is_dir()
            local = local_files_only or is_dir
            if not is_dir and (src.startswith((".", "/", "~")) or Path(src).suffix):
                raise UserError(f"model folder {src} does not exist: pass a folder written by save_pretrained "
                                f"or a hub id such as facebook/wav2vec2-base")
            try:
                config = AutoConfig.from_pretrained(src, local_files_only=local)
                model = AutoModel.from_pretrained(src, config=config, local_files_only=local)
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot load audio model {src!r} ({type(exc).__name__}): pass a local folder "
                                f"written by save_pretrained, or a reachable hub id") from None
            try:
                fe = AutoFeatureExtractor.from_pretrained(src, local_files_only=local)
                fe_sr = getattr(fe, "sampling_rate", None)
                fe_norm = getattr(fe, "do_normalize", None)
            except (OSError, ValueError):
                pass
            self.source = src
        model = getattr(model, "base_model", model)
        self.model = model.to(_device(device)).eval()
        self.device = _device(device)
        self.sample_rate = int(sample_rate or fe_sr or 16000)
        self.normalize = bool(fe_norm if normalize is None and fe_norm is not None else
                              (True if normalize is None else normalize))
        n_hidden = int(self.model.config.num_hidden_layers)
        self.layers = [f"hidden_{i}" for i in range(n_hidden + 1)]

    def __call__(self, audio: torch.Tensor) -> dict:
        x = audio.to(self.device, torch.float32)
        if self.normalize:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)
        out = self.model(x, output_hidden_states=True, return_dict=True)
        return {name: h for name, h in zip(self.layers, out.hidden_states)}


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if hasattr(out, "last_hidden_state"):
        return out.last_hidden_state
    raise UserError(f"a hooked layer returned {type(out).__name__}, not a tensor: hook a submodule whose output "
                    f"is a tensor (or a tuple starting with one)")


def check_layers(module: torch.nn.Module, layer_names: Sequence[str]) -> list[str]:
    """The layer names as a list, or a one-line :class:`UserError` naming one that is not a submodule."""
    named = dict(module.named_modules())
    missing = [n for n in layer_names if n not in named]
    if missing:
        raise UserError(f"layer {missing[0]!r} is not a submodule: pick names from "
                        f"model.named_modules(), e.g. {', '.join(list(named)[1:6])}")
    if not layer_names:
        raise UserError("a hooked model needs at least one layer name")
    return list(layer_names)


def capture_layers(module: torch.nn.Module, layer_names: Sequence[str], forward: Callable[[], object]) -> dict:
    """Call ``forward()`` with forward hooks on ``layer_names`` of ``module``; returns ``{name: output}``
    (the first tensor of each layer's output, see :func:`_first_tensor`). Hooks are removed even on error."""
    store: dict = {}
    named = dict(module.named_modules())
    handles = [named[n].register_forward_hook(lambda _m, _i, out, n=n: store.__setitem__(n, _first_tensor(out)))
               for n in layer_names]
    try:
        forward()
    finally:
        for h in handles:
            h.remove()
    return {n: store[n] for n in layer_names}


class HookedModule:
    """Per-layer activations of any ``torch.nn.Module`` through forward hooks.

    Parameters
    ----------
    module : torch.nn.Module
    layer_names : sequence of str
        Names from ``module.named_modules()``.
    sample_rate : int
        The rate the module expects, in Hz.
    preprocess : callable, optional
        Maps the waveform batch [batch, samples] to the module's input (e.g. a log-mel front end).
    channels_first : bool
        If True, 3-D outputs are [batch, features, time] and are transposed to [batch, time, features].
    device : str or torch.device
    """

    def __init__(self, module: torch.nn.Module, layer_names: Sequence[str], sample_rate: int,
                 preprocess: Callable | None = None, channels_first: bool = False, device="cpu"):
        self.layers = check_layers(module, layer_names)
        self.module = module.to(_device(device)).eval()
        self.device = _device(device)
        self.sample_rate = int(sample_rate)
        self.preprocess = preprocess
        self.channels_first = channels_first

    def __call__(self, audio: torch.Tensor) -> dict:
        x = audio.to(self.device, torch.float32)
        store = capture_layers(self.module, self.layers,
                               lambda: self.module(self.preprocess(x) if self.preprocess is not None else x))
        if self.channels_first:
            store = {k: (v.transpose(1, 2) if v.ndim == 3 else v) for k, v in store.items()}
        return {name: store[name] for name in self.layers}


class CallableModel:
    """Wrap a function ``fn(audio [batch, samples]) -> {layer: tensor}`` as a model."""

    def __init__(self, fn: Callable, sample_rate: int, layers: Sequence[str]):
        self.fn = fn
        self.sample_rate = int(sample_rate)
        self.layers = list(layers)

    def __call__(self, audio: torch.Tensor) -> dict:
        out = self.fn(audio)
        missing = [n for n in self.layers if n not in out]
        if missing:
            raise UserError(f"CallableModel function did not return layer {missing[0]!r}: return every "
                            f"declared layer")
        return {n: torch.as_tensor(out[n]) for n in self.layers}


def _pool(t: torch.Tensor, pool: str) -> torch.Tensor:
    t = t.float()
    if pool == "none" or t.ndim == 2:
        return t.reshape(t.shape[0], -1)
    if t.ndim > 3:
        t = t.reshape(t.shape[0], t.shape[1], -1)
    return t.mean(dim=1)


@torch.no_grad()
def activations(model, audio, sr: int, batch_size: int = 32, device=None, pool: str = "time_mean",
                layers: Sequence[str] | None = None, verbose: bool = False) -> dict:
    """Per-layer activations of a batch of waveforms.

    Parameters
    ----------
    model : AudioModel
        Anything with ``sample_rate``, ``layers`` and ``__call__(audio) -> {layer: tensor}``.
    audio : np.ndarray or torch.Tensor, shape (n, n_samples)
        Waveforms at ``sr``.
    sr : int
        Sample rate of ``audio`` in Hz (resampled to ``model.sample_rate`` when they differ).
    batch_size : int
    device : str or torch.device, optional
        Where resampling happens and inputs go; the model decides where it runs.
    pool : {"time_mean", "none"}
        ``time_mean`` averages dimension 1 of [batch, time, features] outputs (2-D outputs are
        kept); ``none`` flattens everything after the batch dimension.
    layers : sequence of str, optional
        A subset of ``model.layers``.

    Returns
    -------
    dict of layer name -> np.ndarray float32, shape (n, features)
    """
    from tqdm.auto import tqdm

    if pool not in POOLS:
        raise UserError(f"unknown pool {pool!r}: choose one of {', '.join(POOLS)}")
    if not (hasattr(model, "sample_rate") and hasattr(model, "layers") and callable(model)):
        raise UserError("activations needs a model with sample_rate, layers and __call__: wrap it in "
                        "HookedModule, TransformersAudioModel or CallableModel")
    wanted = list(model.layers if layers is None else layers)
    unknown = [n for n in wanted if n not in model.layers]
    if unknown:
        raise UserError(f"layer {unknown[0]!r} is not one of the model's layers ({', '.join(model.layers[:5])}...)")
    x = torch.as_tensor(np.asarray(audio) if not isinstance(audio, torch.Tensor) else audio, dtype=torch.float32)
    if x.ndim != 2:
        raise UserError(f"audio must be [n, samples], got shape {tuple(x.shape)}")
    dev = _device(device or "cpu")
    out = {n: [] for n in wanted}
    for start in tqdm(range(0, x.shape[0], batch_size), disable=not verbose, desc="activations"):
        xb = x[start:start + batch_size].to(dev)
        if int(sr) != int(model.sample_rate):
            import torchaudio.functional as AF
            xb = AF.resample(xb, int(sr), int(model.sample_rate))
        acts = model(xb)
        for n in wanted:
            out[n].append(_pool(acts[n], pool).cpu().numpy().astype(np.float32))
    return {n: np.concatenate(v, axis=0) for n, v in out.items()}


def _reset_module(module: torch.nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()


def random_twin(model, seed: int = 0):
    """The same architecture with freshly initialised weights (the untrained control).

    ``TransformersAudioModel``: the model class rebuilt from its config (transformers' own init);
    ``HookedModule`` (or any wrapper holding its network as ``.module``) / a bare ``nn.Module``: a
    deep copy with ``reset_parameters()`` on every submodule that has one. ``CallableModel`` has no weights to re-initialise (raises UserError).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _random_twin(model)


def _random_twin(model):
    if isinstance(model, TransformersAudioModel):
        twin = copy.copy(model)
        fresh = type(model.model)(model.model.config)
        twin.model = fresh.to(model.device).eval()
        twin.source = f"random twin of {model.source}"
        return twin
    if isinstance(getattr(model, "module", None), torch.nn.Module):  # HookedModule and other module wrappers
        twin = copy.copy(model)
        twin.module = copy.deepcopy(model.module)
        _reset_module(twin.module)
        twin.module.eval()
        return twin
    if isinstance(model, torch.nn.Module):
        twin = copy.deepcopy(model)
        _reset_module(twin)
        return twin
    raise UserError(f"random_twin cannot re-initialise a {type(model).__name__}: wrap a torch module in "
                    f"HookedModule or use TransformersAudioModel")
