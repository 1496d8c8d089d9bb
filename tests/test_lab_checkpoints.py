"""The lab tier's ``--set start=checkpoints`` (issue 16): Grasse & Tata's encoders start from ``--checkpoints DIR``
(``<dir>/wav2vec2/`` and ``<dir>/data2vec/`` save_pretrained folders, or ``<dir>/hub_ids.json``) instead of a seeded
random init. One lab claim end to end on the tiny open-data fixtures (tests/lab_fixtures.py) from tiny saved
checkpoints of another shape than the lab settings', the cache key (the checkpoint's content, never its path),
the time estimate (the checkpoint's shape) and the one-line errors of bad inputs."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from claims.grasse2026 import _conditions as gc
from harness.cache import Cache, folder_manifest
from harness.claimrun import effective_settings
from harness.errors import UserError
from harness.options import DataRoots
from harness.registry import discover
from harness.spec import VERDICTS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab_fixtures  # noqa: E402
from test_lab_tier import E2E, REPO  # noqa: E402

#: The checkpoints' shape: not the tiny lab settings' (hidden 16, 1 layer), so a run that built the encoder from
#: the settings instead of loading it would show (other weights, other layer count).
CKPT_SHAPE = dict(hidden=24, n_layers=2, n_heads=2, conv_channels=8, intermediate_size=48, mask_time_length=3)
CKPT_SEED = 7


def save_checkpoints(root: Path, seed: int = CKPT_SEED, archs=gc.ARCHS) -> Path:
    """``<root>/<arch>/`` save_pretrained folders of tiny encoders (:func:`models.ssl_audio.tiny_config`)."""
    from models.ssl_audio import build_encoder, tiny_config

    for arch in archs:
        build_encoder(tiny_config(arch, **CKPT_SHAPE), seed=seed).save_pretrained(root / arch)
    return root


def lab_settings(**extra) -> dict:
    """A Grasse lab claim's settings with the fixtures' tiny sizes (as ``--set`` gives them), plus ``extra``."""
    spec = discover()["grasse2026.chroma.transcription"]
    return effective_settings(spec.tiers["lab"], 1, dict(lab_fixtures.TINY_SETTINGS["grasse2026"], **extra))


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """The Grasse lab data (LibriSpeech, FMA, MAESTRO as npz) and a checkpoints folder."""
    root = tmp_path_factory.mktemp("lab-ckpt")
    maestro = lab_fixtures.make_lab_maestro(root / "maestro-v3.0.0")
    return {"--librispeech": lab_fixtures.make_lab_librispeech(root / "librispeech"),
            "--fma": lab_fixtures.make_lab_fma(root / "fma"),
            "--transcription-data": lab_fixtures.make_lab_transcription(root / "maestro-npz", maestro),
            "--checkpoints": save_checkpoints(root / "checkpoints"), "empty": root / "empty"}


def data_roots(roots, **override) -> DataRoots:
    keys = {"--librispeech": "librispeech", "--fma": "fma", "--transcription-data": "transcription",
            "--checkpoints": "checkpoints"}
    values = {k: str(roots[o]) for o, k in keys.items()}
    values.update(override)
    return DataRoots(values)


def state(encoder) -> dict:
    return {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}


# ------------------------------------------------------------------------------------------- the start
@pytest.mark.parametrize("arch", gc.ARCHS)
def test_the_start_is_the_saved_checkpoint_with_the_lab_masking(arch, roots):
    """The untouched condition is the saved encoder, weights and shape (the lab shape settings do not apply);
    the lab tier's masking settings do (as they do to a random start)."""
    from transformers import AutoModel

    saved = AutoModel.from_pretrained(str(roots["--checkpoints"] / arch), local_files_only=True)
    s = lab_settings(start="checkpoints")
    enc = gc._start_encoder(arch, "lab", s, 0, data_roots(roots))
    a, b = state(enc), state(saved)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert enc.config.hidden_size == CKPT_SHAPE["hidden"] != s["hidden"]
    assert enc.config.num_hidden_layers == CKPT_SHAPE["n_layers"] != s["n_layers"]
    assert (enc.config.mask_time_prob, enc.config.mask_time_length) == (s["mask_time_prob"], s["mask_time_length"])
    rand = gc._start_encoder(arch, "lab", lab_settings(), 0, data_roots(roots))
    assert rand.config.hidden_size == s["hidden"]                          # start=random: the settings' shape


# -------------------------------------------------------------------------------------------- cache key
def test_the_cache_key_is_the_checkpoint_s_content_not_its_path(roots, tmp_path):
    cache = Cache(tmp_path / "cache")
    s = lab_settings(start="checkpoints")

    def key(ck, arch="wav2vec2", settings=s):
        return gc.condition_config(arch, 0, "lab", settings, "cpu", data_roots(roots, checkpoints=str(ck)),
                                   cache)["hash"]

    ck = roots["--checkpoints"]
    base = key(ck)
    assert f"checkpoints/wav2vec2:{folder_manifest(ck / 'wav2vec2')['hash']}" in \
        gc.condition_config("wav2vec2", 0, "lab", s, "cpu", data_roots(roots), cache)["data"]
    copy = shutil.copytree(ck, tmp_path / "elsewhere" / "ckpts")               # the same content at another path
    assert key(copy) == base
    assert key(ck, settings=lab_settings()) != base                            # start=random: no checkpoint
    # the shape settings are the checkpoint's at start=checkpoints: changing them changes nothing
    assert key(ck, settings=lab_settings(start="checkpoints", hidden=32, n_layers=3)) == base
    assert key(ck, settings=lab_settings(start="checkpoints", mask_time_length=4)) != base   # masking applies
    save_checkpoints(copy, seed=CKPT_SEED + 1, archs=("wav2vec2",))           # other weights, same path and shape
    assert key(copy) != base
    assert key(copy, arch="data2vec") == key(ck, arch="data2vec")              # one arch's folder keys one arch
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hub_ids.json").write_text(json.dumps({"wav2vec2": "facebook/wav2vec2-base", "data2vec": "x/y"}))
    k1 = key(hub)
    (hub / "hub_ids.json").write_text(json.dumps({"wav2vec2": "facebook/wav2vec2-large", "data2vec": "x/y"}))
    assert key(hub) != k1 != base                                              # a hub id is keyed by its name


# ------------------------------------------------------------------------------------------ estimate
def test_the_time_estimate_counts_the_checkpoint_s_shape(roots):
    from harness.budget import Work

    def run_flops(s, data):
        [w] = [w for w in gc.estimate_work("grasse2026.chroma.transcription", "data2vec", "lab", s, data)
               if isinstance(w, Work) and w.what.startswith("data2vec seed 0")]
        return w.flops, w.what

    data = data_roots(roots)
    shape = dict(hidden=CKPT_SHAPE["hidden"], n_layers=CKPT_SHAPE["n_layers"],
                 intermediate=CKPT_SHAPE["intermediate_size"])
    from_ckpt, what = run_flops(lab_settings(start="checkpoints"), data)
    assert from_ckpt == run_flops(lab_settings(**shape), data)[0] != run_flops(lab_settings(), data)[0]
    assert "checkpoint" in what
    # without a readable checkpoint (not given, or a hub id not in the local cache): the settings' shape, said so
    hub = roots["--checkpoints"].parent / "hub-only"
    hub.mkdir(exist_ok=True)
    (hub / "hub_ids.json").write_text(json.dumps({"wav2vec2": "no-such/model", "data2vec": "no-such/model"}))
    flops, what = run_flops(lab_settings(start="checkpoints"), data_roots(roots, checkpoints=str(hub)))
    assert flops == run_flops(lab_settings(), data)[0] and "shape of the lab settings" in what


# -------------------------------------------------------------------------------------------- errors
def _one_line_error(fn) -> str:
    with pytest.raises(UserError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_bad_starts_are_one_line_errors_naming_the_fix(roots, tmp_path):
    cache = Cache(tmp_path / "cache")

    def config(settings, data, arch="wav2vec2"):
        return lambda: gc.condition_config(arch, 0, "lab", settings, "cpu", data, cache)

    ck = lab_settings(start="checkpoints")
    # no --checkpoints: said before any data is decoded (no other root is set either)
    msg = _one_line_error(config(ck, DataRoots({})))
    assert "--checkpoints" in msg and "MEC_CHECKPOINTS" in msg and "start=checkpoints" in msg, msg
    # a checkpoints folder without the architecture's subfolder (nor hub_ids.json)
    only = save_checkpoints(tmp_path / "only-w2v", archs=("wav2vec2",))
    config(ck, data_roots(roots, checkpoints=str(only)))()                   # wav2vec2 is there
    msg = _one_line_error(config(ck, data_roots(roots, checkpoints=str(only)), arch="data2vec"))
    assert "data2vec" in msg and "save_pretrained" in msg and "hub_ids.json" in msg and str(only) in msg, msg
    msg = _one_line_error(lambda: gc._start_encoder("data2vec", "lab", ck, 0, data_roots(roots, checkpoints=str(only))))
    assert "data2vec" in msg and "save_pretrained" in msg, msg
    # a hub_ids.json without the architecture
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hub_ids.json").write_text(json.dumps({"wav2vec2": "facebook/wav2vec2-base"}))
    msg = _one_line_error(config(ck, data_roots(roots, checkpoints=str(hub)), arch="data2vec"))
    assert "hub_ids.json" in msg and "data2vec" in msg, msg
    (hub / "hub_ids.json").write_text("wav2vec2: facebook/wav2vec2-base")
    msg = _one_line_error(config(ck, data_roots(roots, checkpoints=str(hub))))
    assert "is not JSON" in msg and '"wav2vec2": HUB_ID' in msg, msg
    # an unknown start: said before any data is decoded, naming the values
    for bad in ("checkpoint", "pretrained", 3):
        msg = _one_line_error(config(lab_settings(start=bad), DataRoots({})))
        assert "start=" in msg and "'random'" in msg and "'checkpoints'" in msg, msg
        msg = _one_line_error(lambda: gc._start_encoder("wav2vec2", "lab", lab_settings(start=bad), 0, DataRoots({})))
        assert "'random'" in msg and "'checkpoints'" in msg, msg


# ------------------------------------------------------------------------------------------ end to end
def _lab_cmd(target: str, roots, tmp_path, *extra) -> list:
    roots["empty"].mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-m", "claims", target, "--tier", "lab", "--device", "cpu", "--seeds", "1",
           *lab_fixtures.set_args("grasse2026"), "-p", "no:cacheprovider", "-p", "no:xdist", "--mlflow-uri", "none",
           f"--report-dir={tmp_path / 'reports'}", f"--cache-dir={tmp_path / 'cache'}",
           f"--shared-data={roots['empty']}", "-q", *extra]
    for opt in E2E["grasse2026"][1]:
        cmd += [opt, str(roots[opt])]
    return cmd


def _run(cmd):
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return out, out.stdout[-4000:] + out.stderr[-3000:]


@pytest.mark.slow
def test_a_lab_claim_starts_from_the_checkpoints_end_to_end(roots, tmp_path):
    """``pytest -m claims --tier lab ... --set start=checkpoints --checkpoints DIR`` on the fixtures: a verdict at the
    lab tier, the override recorded, the checkpoint among the data the claim read (by content), and the untouched
    condition's RSA that of the saved encoder, not of a random init."""
    target = E2E["grasse2026"][0]                                               # ...chroma_transcription[wav2vec2]
    cmd = _lab_cmd(target, roots, tmp_path, "--set", "start=checkpoints", "--checkpoints", str(roots["--checkpoints"]))
    out, log = _run(cmd)
    assert out.returncode in (0, 1), log                       # 1: the fixtures' verdict is not the paper's
    assert "time estimate, lab tier" in out.stdout and "wav2vec2 seed 0: SSL + transcription" in out.stdout, log
    assert f"from the checkpoint ({CKPT_SHAPE['n_layers']} x {CKPT_SHAPE['hidden']})" in out.stdout, log
    report = json.loads((tmp_path / "reports" / "latest" / "claims.json").read_text())
    assert report["meta"]["tier"] == "lab"
    [row] = report["claims"]
    assert row["tier"] == "lab" and row["verdict"] in VERDICTS and row["verdict"] != "ERROR", row.get("error", row)
    assert row["settings_overridden"] == dict(lab_fixtures.TINY_SETTINGS["grasse2026"], start="checkpoints")
    ck = folder_manifest(roots["--checkpoints"] / "wav2vec2", name="checkpoints/wav2vec2")
    assert {"name": "checkpoints/wav2vec2", "hash": ck["hash"]}.items() <= \
        next(m for m in row["data_manifests"] if m["name"] == "checkpoints/wav2vec2").items(), row["data_manifests"]
    # the untouched control is the saved encoder: its partial chroma, recomputed here from the saved folder
    from analysis.rsa import rsa_layers
    from models.adapters import TransformersAudioModel, activations
    from models.ssl_audio import load_encoder

    s = lab_settings(start="checkpoints")
    ps, _, acoustic = gc.stimuli(s)

    def untouched_rho(enc):
        acts = activations(TransformersAudioModel(enc, sample_rate=gc.SR, normalize=True, device="cpu"), ps.audio,
                           ps.sr, batch_size=64, device="cpu")
        return gc.chroma_estimate([rsa_layers(acts, ps.midi, acoustic, n_perm=int(s["n_perm"]), seed=11)]).value

    values = json.loads(next((tmp_path / "reports" / "latest" / "claims").glob("*/values.json")).read_text())
    logged = values["controls"]["untouched"]["criteria"]["partial_chroma_rho"]["estimate"]["value"]
    assert logged == pytest.approx(untouched_rho(load_encoder(roots["--checkpoints"] / "wav2vec2")), abs=1e-6)
    assert logged != pytest.approx(untouched_rho(gc._start_encoder("wav2vec2", "lab", lab_settings(), 0)), abs=1e-6)


@pytest.mark.slow
def test_start_checkpoints_without_the_folder_is_one_line(roots, tmp_path):
    """The session run: the claim ends in a one-line UserError naming --checkpoints, before anything trains."""
    out, log = _run(_lab_cmd(E2E["grasse2026"][0], roots, tmp_path, "--set", "start=checkpoints"))
    assert out.returncode == 1 and "Traceback" not in out.stdout, log
    [line] = [ln for ln in out.stdout.splitlines() if ln.startswith("UserError: ")]
    assert "start=checkpoints" in line and "set --checkpoints PATH" in line, log
    [row] = json.loads((tmp_path / "reports" / "latest" / "claims.json").read_text())["claims"]
    assert row["verdict"] == "ERROR" and row["tier"] == "lab" and "--checkpoints" in row["error"], row
    assert row["data_manifests"] == [], row                                     # said before any data was read
