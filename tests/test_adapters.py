"""Tests of models/adapters.py: the generic model protocol, local checkpoint loading, pooling, resampling."""
import numpy as np
import pytest
import torch

from harness.errors import UserError
from models.adapters import CallableModel, HookedModule, TransformersAudioModel, activations, random_twin


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny wav2vec2 saved with save_pretrained (the hub is unreachable here)."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from models.ssl_audio import tiny_config

    folder = tmp_path_factory.mktemp("tiny_w2v2")
    torch.manual_seed(0)
    model = Wav2Vec2Model(tiny_config("wav2vec2", hidden=32, n_layers=2, n_heads=2, conv_channels=8))
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    return folder, model


def test_local_folder_loading_path(tiny_folder):
    folder, original = tiny_folder
    m = TransformersAudioModel(folder)
    assert m.sample_rate == 16000 and m.normalize
    assert m.layers == ["hidden_0", "hidden_1", "hidden_2"]
    x = torch.randn(3, 8000)
    out = m(x)
    xn = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)
    with torch.no_grad():
        ref = original.eval()(xn, output_hidden_states=True).hidden_states
    for name, r in zip(m.layers, ref):
        torch.testing.assert_close(out[name], r)
    acts = activations(m, x.numpy(), sr=16000, batch_size=2)
    assert set(acts) == set(m.layers)
    np.testing.assert_allclose(acts["hidden_2"], ref[2].mean(1).numpy(), atol=1e-5)


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        TransformersAudioModel(tmp_path / "nope")


def test_batch_size_invariance_and_pool_none(tiny_folder):
    m = TransformersAudioModel(tiny_folder[0])
    x = np.random.default_rng(0).normal(size=(5, 4000)).astype(np.float32)
    a = activations(m, x, 16000, batch_size=2)
    b = activations(m, x, 16000, batch_size=5)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5)
    full = activations(m, x, 16000, batch_size=5, pool="none", layers=["hidden_1"])
    assert full["hidden_1"].shape[0] == 5 and full["hidden_1"].shape[1] > a["hidden_1"].shape[1]
    with pytest.raises(UserError):
        activations(m, x, 16000, pool="max")
    with pytest.raises(UserError):
        activations(m, x, 16000, layers=["hidden_99"])


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 4, 8, stride=4)
        self.relu = torch.nn.ReLU()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = self.relu(self.conv(x[:, None]))
        return self.lin(h.transpose(1, 2))


def test_hooked_module_matches_manual_and_removes_hooks():
    torch.manual_seed(0)
    net = _Net()
    m = HookedModule(net, ["conv", "lin"], sample_rate=8000, channels_first=False)
    x = torch.randn(2, 800)
    out = m(x)
    assert out["conv"].shape == (2, 4, 199) and out["lin"].shape == (2, 199, 3)
    assert all(len(mod._forward_hooks) == 0 for mod in net.modules())
    acts = activations(m, x.numpy(), sr=8000)
    with torch.no_grad():
        np.testing.assert_allclose(acts["lin"], net(x).mean(1).numpy(), atol=1e-6)
    cf = HookedModule(net, ["conv"], sample_rate=8000, channels_first=True)
    np.testing.assert_allclose(activations(cf, x.numpy(), 8000)["conv"],
                               torch.relu(net.conv(x[:, None])).detach().mean(-1).numpy() * 0
                               + net.conv(x[:, None]).detach().mean(-1).numpy(), atol=1e-6)
    with pytest.raises(UserError):
        HookedModule(net, ["nope"], sample_rate=8000)


def test_callable_model_and_resampling():
    seen = {}

    def fn(audio):
        seen["n"] = audio.shape[-1]
        return {"rms": audio.pow(2).mean(-1, keepdim=True).sqrt()}

    m = CallableModel(fn, sample_rate=8000, layers=["rms"])
    x = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)[None].astype(np.float32)
    acts = activations(m, x, sr=16000)
    assert seen["n"] == 8000                                   # resampled to the model's rate
    assert acts["rms"][0, 0] == pytest.approx(1 / np.sqrt(2), rel=0.02)
    bad = CallableModel(lambda a: {}, 8000, ["rms"])
    with pytest.raises(UserError):
        activations(bad, x, 8000)
    with pytest.raises(UserError):
        activations(object(), x, 8000)


def test_random_twin(tiny_folder):
    m = TransformersAudioModel(tiny_folder[0])
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    t1, t2, t3 = random_twin(m, seed=1), random_twin(m, seed=1), random_twin(m, seed=2)
    assert t1.layers == m.layers and type(t1.model) is type(m.model)
    w = "feature_projection.projection.weight"
    assert not torch.equal(t1.model.state_dict()[w], before[w])
    torch.testing.assert_close(t1.model.state_dict()[w], t2.model.state_dict()[w])
    assert not torch.equal(t1.model.state_dict()[w], t3.model.state_dict()[w])
    for k, v in m.model.state_dict().items():
        assert torch.equal(v, before[k])                       # the original is untouched
    net = _Net()
    h = random_twin(HookedModule(net, ["lin"], 8000), seed=0)
    assert not torch.equal(h.module.lin.weight, net.lin.weight)
    with pytest.raises(UserError):
        random_twin(CallableModel(lambda a: {}, 8000, []))
