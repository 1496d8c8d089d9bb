"""Tests of models/hear.py: scoring a HEAR 2021 module (``--model hear:<module>``) and exporting the
project's Kim et al. CNN as one, round trip included. The HEAR modules are small files written here."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.errors import UserError
from models.adapters import activations
from models.hear import HEAR_SAMPLE_RATES, HearModel, export, load_exported, parse_hear_spec
from models.zoo import parse_spec

REPO = Path(__file__).resolve().parent.parent

TINY_HEAR = '''
import torch

SR = {sr}
HOP = 160


class Tiny(torch.nn.Module):
    """Frames of 400 samples every 10 ms -> a linear map and a ReLU: a 24-d timestamp embedding."""
    sample_rate = SR
    timestamp_embedding_size = 24
    scene_embedding_size = 24

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(400, 24)

    def forward(self, audio):
        x = torch.nn.functional.pad(audio, (200, 200))
        return torch.relu(self.proj(x.unfold(-1, 400, HOP)))


def load_model(model_file_path=""):
    torch.manual_seed(0)
    m = Tiny()
    if model_file_path:
        m.load_state_dict(torch.load(model_file_path, weights_only=True))
    return m


def get_timestamp_embeddings(audio, model):
    emb = model(audio)
    ts = torch.arange(emb.shape[1], dtype=torch.float32) * 1000 * HOP / SR
    return emb, ts.expand(emb.shape[0], -1)


def get_scene_embeddings(audio, model):
    return get_timestamp_embeddings(audio, model)[0].mean(1)
'''

NO_PARAMS = '''
import numpy as np
import torch


class Model:
    sample_rate = 16000


def load_model(model_file_path=""):
    return Model()


def get_timestamp_embeddings(audio, model):
    x = audio.numpy()
    fr = np.stack([x[:, i:i + 512] for i in range(0, x.shape[1] - 511, 256)], 1)
    emb = torch.from_numpy(np.log(np.abs(np.fft.rfft(fr, axis=-1)) ** 2 + 1e-8).astype(np.float32))
    return emb, torch.zeros(emb.shape[:2])


def get_scene_embeddings(audio, model):
    return get_timestamp_embeddings(audio, model)[0].mean(1)
'''


@pytest.fixture(scope="module")
def hear_pkgs(tmp_path_factory):
    """Importable HEAR modules: a tiny torch one, one without parameters, and broken variants."""
    root = tmp_path_factory.mktemp("hearpkgs")
    (root / "tiny_hear.py").write_text(TINY_HEAR.format(sr=16000))
    (root / "tiny_hear_8k.py").write_text(TINY_HEAR.format(sr=8000))
    (root / "numpy_hear.py").write_text(NO_PARAMS)
    (root / "half_hear.py").write_text("def load_model(p=''):\n    return None\n\n"
                                      "def get_timestamp_embeddings(a, m):\n    return a, a\n")
    (root / "bad_shape_hear.py").write_text(NO_PARAMS.replace("return emb, torch.zeros(emb.shape[:2])",
                                                              "return emb[0], torch.zeros(3)"))
    (root / "norate_hear.py").write_text(NO_PARAMS.replace("    sample_rate = 16000", "    pass"))
    (root / "failing_hear.py").write_text(NO_PARAMS.replace('    return Model()', '    raise OSError("no weights here")'))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def test_hear_spec_gives_timestamp_and_scene_layers_and_a_random_twin(hear_pkgs):
    e = parse_spec("hear:tiny_hear")
    assert isinstance(e.model, HearModel) and e.name == "hear:tiny_hear" and e.model.sample_rate == 16000
    assert e.model.layers == ["timestamp", "scene"] and e.info["timestamp_dim"] == 24 == e.info["scene_dim"]
    x = torch.randn(3, 8000)
    out = e.model(x)
    assert out["timestamp"].shape == (3, 51, 24) and out["scene"].shape == (3, 24)
    torch.testing.assert_close(out["scene"], out["timestamp"].mean(1))
    # activations(): resampled from 22,050 Hz, the scene layer has no time axis and is kept as it is
    acts = activations(e.model, np.random.default_rng(0).standard_normal((2, 11025)).astype(np.float32), 22050)
    assert acts["timestamp"].shape == (2, 24) and acts["scene"].shape == (2, 24)
    assert e.control_kind == "random_twin" and isinstance(e.control, HearModel)
    assert not torch.equal(e.control.hear_model.proj.weight, e.model.hear_model.proj.weight)
    assert e.control.module is e.model.module                            # the same HEAR functions


def test_hear_model_file_after_at(hear_pkgs, tmp_path):
    torch.manual_seed(3)
    w = tmp_path / "w.pt"
    torch.save(__import__("tiny_hear").Tiny().state_dict(), w)
    e = parse_spec(f"hear:tiny_hear@{w}")
    assert e.model.model_file_path == str(w) and e.info["model_file_path"] == str(w) and e.name == "hear:tiny_hear@w.pt"
    assert not torch.equal(e.model.hear_model.proj.weight, parse_spec("hear:tiny_hear").model.hear_model.proj.weight)
    with pytest.raises(UserError, match="does not exist"):
        parse_spec(f"hear:tiny_hear@{tmp_path / 'absent.pt'}")


def test_a_hear_model_without_parameters_gets_the_logmel_control(hear_pkgs):
    e = parse_spec("hear:numpy_hear")
    assert e.control_kind == "baseline:log_mel" and e.control.layers == ["log_mel"]
    assert e.model(torch.randn(1, 16000))["timestamp"].shape == (1, 61, 257)


@pytest.mark.parametrize("spec, match", [
    ("hear:", "needs a module name"),
    ("hear:not a module", "needs a module name"),
    ("hear:no_such_hear_module", "cannot import HEAR module 'no_such_hear_module'"),
    ("hear:half_hear", "has no get_scene_embeddings"),
    ("hear:tiny_hear_8k", "sample_rate=8000"),
    ("hear:norate_hear", "no sample_rate attribute"),
    ("hear:bad_shape_hear", "expected \\(n_sounds, n_timestamps, dim\\)"),
    ("hear:failing_hear", "load_model.*failed \\(OSError: no weights here\\)"),
])
def test_bad_hear_modules_are_one_line_user_errors(hear_pkgs, spec, match):
    with pytest.raises(UserError, match=match) as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)


def test_parse_hear_spec():
    assert parse_hear_spec("hear:a.b_c") == ("a.b_c", "")
    assert parse_hear_spec("hear:pkg.mod@/w/x.pt") == ("pkg.mod", "/w/x.pt")
    assert 16000 in HEAR_SAMPLE_RATES and 8000 not in HEAR_SAMPLE_RATES


# ------------------------------------------------------------------------------------------ export
@pytest.fixture(scope="module")
def kim_net():
    from models.kim_cnn import build_kim_cnn

    net = build_kim_cnn(10, 0.25, seed=0)
    with torch.no_grad():                  # not the seed-0 init that load_exported builds before loading
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return net.eval()


def test_export_kim_cnn_round_trips_through_hear_spec(kim_net, tmp_path, monkeypatch):
    from models.zoo import kim_cnn_model

    pkg = export(kim_cnn_model(kim_net), tmp_path, name="mec_kim_rt", source="test")
    assert {p.name for p in pkg.iterdir()} >= {"__init__.py", "weights.pt", "hear.json"}
    monkeypatch.syspath_prepend(str(tmp_path))
    e = parse_spec("hear:mec_kim_rt")
    assert e.model.sample_rate == 22050 and e.info["scene_dim"] == kim_net.n_pooled
    x = torch.randn(2, 22050)
    got, ref = e.model(x), kim_cnn_model(kim_net)(x)
    torch.testing.assert_close(got["scene"], ref["flatten"][:, 0])
    torch.testing.assert_close(got["timestamp"], ref["features.16"])
    emb, ts = e.model.module.get_timestamp_embeddings(x, e.model.hear_model)
    assert ts.shape == emb.shape[:2] and bool((ts.diff(dim=1) > 0).all()) and float(ts[0, -1]) < 1000
    # the control is the Kim CNN's random twin, as for the kim_cnn spec
    assert e.control_kind == "random_twin"
    assert not torch.equal(e.control.hear_model.net.features[0].weight, e.model.hear_model.net.features[0].weight)


def test_export_errors(kim_net, tmp_path):
    export(kim_net, tmp_path, name="mec_kim_twice")
    with pytest.raises(UserError, match="already exists"):
        export(kim_net, tmp_path, name="mec_kim_twice")
    export(kim_net, tmp_path, name="mec_kim_twice", overwrite=True)
    with pytest.raises(UserError, match="not a Python identifier"):
        export(kim_net, tmp_path, name="my-model")
    with pytest.raises(UserError, match="export knows kim_cnn"):
        export(torch.nn.Linear(2, 2), tmp_path, name="lin")
    with pytest.raises(UserError, match="weights file"):
        load_exported(tmp_path / "mec_kim_twice" / "hear.json", tmp_path / "absent.pt")


def test_export_cli_error_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "models.hear", str(tmp_path), "--name", "bad-name",
                        "--spec", "logmel", "--cache-dir", str(tmp_path / "cache")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not a Python identifier" in r.stderr


def test_hearbaseline_torchcrepe_wrapper_if_installed():
    """hearbaseline 2021.1.1 (installed --no-deps: its metadata pins numpy 1.19 and TensorFlow) wraps
    torchcrepe's full model; its weights live in torchcrepe's global state, so the control is log-mel."""
    pytest.importorskip("hearbaseline.torchcrepe")
    e = parse_spec("hear:hearbaseline.torchcrepe")
    assert e.model.sample_rate == 16000 and e.info["timestamp_dim"] == 2048
    assert e.control_kind == "baseline:log_mel"
    out = e.model(torch.randn(1, 4000))
    assert out["timestamp"].shape == (1, 6, 2048) and out["scene"].shape == (1, 2048)
