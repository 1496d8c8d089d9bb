"""The lab tier (issue 16): every claim declares it, its time estimate, AMP on CUDA only, and one end-to-end
run per paper on tiny open-data folders (tests/lab_fixtures.py) through the lab code path on the CPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import budget
from harness.claimrun import effective_settings
from harness.options import DATA_ROOTS
from harness.registry import discover
from harness.spec import TIERS, VERDICTS, Claim, Competence, Criterion, Paper, Tier

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab_fixtures  # noqa: E402


@pytest.fixture(scope="module")
def specs():
    return discover()


def _lab_selection(specs):
    out = []
    for s in specs.values():
        variants = ("wav2vec2", "data2vec") if s.paper.key == "grasse2026" else ("",)
        out += [(s, v, effective_settings(s.tiers["lab"])) for v in variants]
    return out


def test_every_claim_declares_a_lab_tier_with_data_and_competence_thresholds(specs):
    assert "lab" in TIERS and len(specs) >= 21
    for s in specs.values():
        lab = s.tiers["lab"]
        assert lab.data and set(lab.data) <= set(DATA_ROOTS), s.id
        assert lab.expect == "PASS" and "not yet run on GPU" in lab.reason, s.id
        for c in s.competence:
            assert "lab" in c.thresholds and "lab: " in c.source and "set before measuring" in c.source, (s.id, c.name)
    new = {"fsd50k", "librispeech", "fma", "guitarset", "gtzan"}
    assert new <= set(DATA_ROOTS) and {DATA_ROOTS[k].option for k in new} == {f"--{k}" for k in new}


def test_a_competence_gains_a_tier_only_with_a_source():
    c = Competence("m.x", "m", "metric", ">=", {"ci": 0.1, "paper": 0.2}, source="measured")
    lab = c.with_tier("lab", 0.15, "ours, set before measuring")
    assert lab.thresholds == {"ci": 0.1, "paper": 0.2, "lab": 0.15} and lab.source.endswith("lab: ours, set before measuring")
    with pytest.raises(ValueError, match="needs its source"):
        c.with_tier("lab", 0.15, "")
    with pytest.raises(ValueError, match="already has"):
        lab.with_tier("lab", 0.2, "again")
    paper = Paper("toy", "Toy (2026).")
    with pytest.raises(ValueError, match="no threshold for tier"):  # a lab tier needs a lab threshold
        Claim(id="toy.x", paper=paper, finding="f", statistic="s", unit="seeds", criteria=[Criterion("x", ">", 0)],
              controls={"r": "FAIL"}, competence=(c,), tiers={"ci": Tier({}), "lab": Tier({})})


def test_the_lab_tier_fits_one_gpu_in_six_hours(specs):
    """The declared lab settings on the full open datasets (their published sizes), on one GPU."""
    est = budget.estimate(_lab_selection(specs), "lab", "cuda")
    assert set(est["papers"]) == {"kim2024", "grasse2026", "kong2025"} and not est["unestimated"]
    assert est["budget_s"] == 6 * 3600 and est["within_budget"], est["total_h"]
    assert all(0.2 < p["hours"] < 3.0 for p in est["papers"].values()), {k: p["hours"] for k, p in est["papers"].items()}
    text = "\n".join(budget.lines(est))
    assert "time estimate, lab tier" in text and "budget 6 h on one GPU: within" in text
    # shared work counts once: the ten Kim claims share their networks, the Grasse claims their runs
    kim = est["papers"]["kim2024"]["work"]
    assert len([w for w in kim if w["what"].startswith("train KimCNN without_music seed")]) == 5
    # more epochs cost more; the CPU is slower than the GPU
    more = budget.estimate([(s, v, dict(st, epochs=60) if "epochs" in st else st) for s, v, st in _lab_selection(specs)],
                           "lab", "cuda")
    assert more["papers"]["kim2024"]["seconds"] > est["papers"]["kim2024"]["seconds"]
    assert budget.estimate(_lab_selection(specs), "lab", "cpu")["total_s"] > 10 * est["total_s"]


def test_the_flop_counts_match_torch_s_counter():
    from torch.utils.flop_counter import FlopCounterMode

    from models.kim_cnn import build_kim_cnn, forward_flops as kim_flops
    from models.ssl_audio import build_encoder, forward_flops as w2v_flops, tiny_config
    from models.vit1d import ViT1DConfig, build_vit1d, forward_flops as vit_flops

    def counted(f):
        with FlopCounterMode(display=False) as m, torch.no_grad():
            f()
        return m.get_total_flops()

    net = build_kim_cnn(527, 0.5).eval()
    assert counted(lambda: net(torch.zeros(1, 64, 401))) == kim_flops(0.5, 64, 401)
    cfg = ViT1DConfig(n_mels=32, dim=48, depth=2, n_heads=4, mlp_ratio=2.0)
    vit = build_vit1d(cfg, seed=0).eval()                  # explicit attention, so the counter sees it
    assert counted(lambda: vit(torch.zeros(1, 100, 32), need_weights=True)) == vit_flops(cfg, 100)
    enc = build_encoder(tiny_config("wav2vec2", hidden=64, n_layers=2, n_heads=4, conv_channels=32)).eval()
    assert counted(lambda: enc(torch.zeros(1, 16000))) == pytest.approx(w2v_flops(64, 2, 32, 16000), rel=0.1)


def test_amp_is_a_no_op_off_cuda():
    """models.amp.Amp on the CPU: the same parameters, bit for bit, as plain backward / clip / step."""
    from models.amp import Amp

    def one_step(use_amp: bool):
        torch.manual_seed(0)
        lin = torch.nn.Linear(8, 4)
        opt = torch.optim.AdamW(lin.parameters(), lr=1e-2)
        x = torch.randn(16, 8)
        amp = Amp("cpu")
        assert not amp.enabled and amp.scaler is None
        with amp.autocast() if use_amp else torch.enable_grad():
            loss = lin(x).pow(2).mean()
        if use_amp:
            amp.backward(loss)
            amp.step(opt, lin.parameters(), 1.0)
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
            opt.step()
        return torch.cat([p.detach().flatten() for p in lin.parameters()])

    assert torch.equal(one_step(True), one_step(False))


def test_guitarset_tags_and_split(tmp_path):
    from stimuli.lab_data import guitarset_analysis_set, guitarset_tags

    tags = guitarset_tags(["00_BN1-129-Eb_comp", "01_BN1-147-Eb_solo", "05_Rock2-85-A_comp"])
    assert list(tags["style"]) == ["BN", "BN", "Rock"] and list(tags["playing"]) == ["comp", "solo", "comp"]
    assert list(tags["tempo_class"]) == ["slow", "fast", "fast"] and list(tags["key"]) == ["Eb", "Eb", "A"]
    root = lab_fixtures.make_lab_guitarset(tmp_path / "GuitarSet", per_player=2, dur_s=2.0)
    a = guitarset_analysis_set(root, 16000, 2.0)
    assert {k: len(v) for k, v in a.splits.items()} == {"fit": 8, "val": 2, "test": 2, "pre": 10}
    assert all(a.track_ids[i].startswith("05_") for i in a.splits["test"])
    assert len(a.onsets_s[0]) and a.chords[0][1][0] in ("C:maj", "A:min", "G:maj", "F:maj")


def test_a_decoded_dataset_is_read_back_from_the_cache(tmp_path):
    from harness.cache import Cache
    from stimuli.lab_data import load_fsd50k_cached

    root = lab_fixtures.make_lab_fsd50k(tmp_path / "FSD50K", n_train=4, n_val=2, n_eval=2, dur_s=0.5)
    cache = Cache(tmp_path / "cache")
    kw = dict(sr=22050, clip_s=0.5, split="all", progress=False)
    first = load_fsd50k_cached(cache, root, ontology=root / "ontology.json", **kw)
    again = load_fsd50k_cached(cache, root, ontology=root / "ontology.json", **kw)
    assert [e.outcome for e in cache.events if e.namespace == "lab-fsd50k"] == ["miss", "hit"]
    assert again.manifest["decoded_entry"] and again.manifest["data"]["hash"] == first.manifest["data"]["hash"]
    assert np.array_equal(np.asarray(again.audio), first.audio) and again.clip_ids == first.clip_ids
    assert list(again.split) == list(first.split) and again.class_names == first.class_names
    np.asarray(again.audio)[0, 0] = 1.0                      # copy-on-write: the entry is never changed
    assert load_fsd50k_cached(cache, root, ontology=root / "ontology.json", **kw).audio[0, 0] == first.audio[0, 0]


# ---------------------------------------------------------------------------------------------- end to end
#: One lab claim per paper (the fixtures' builders and options).
E2E = {
    "kim2024": ("claims/kim2024/test_separability.py", ("--fsd50k",)),
    "grasse2026": ("claims/grasse2026/test_chroma_transcription.py::test_chroma_transcription[wav2vec2]",
                   ("--librispeech", "--fma", "--transcription-data")),
    "kong2025": ("claims/kong2025/test_local_chords_from_sequence.py", ("--fma", "--guitarset")),
}


@pytest.fixture(scope="module")
def fixture_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-data")
    maestro = lab_fixtures.make_lab_maestro(root / "maestro-v3.0.0")
    return {"--fsd50k": lab_fixtures.make_lab_fsd50k(root / "FSD50K"),
            "--librispeech": lab_fixtures.make_lab_librispeech(root / "librispeech"),
            "--fma": lab_fixtures.make_lab_fma(root / "fma"),
            "--transcription-data": lab_fixtures.make_lab_transcription(root / "maestro-npz", maestro),
            "--guitarset": lab_fixtures.make_lab_guitarset(root / "GuitarSet"), "empty": root / "empty"}


@pytest.mark.slow
@pytest.mark.parametrize("paper", list(E2E))
def test_a_lab_claim_reaches_a_verdict_on_open_data_fixtures(paper, fixture_roots, tmp_path):
    """``pytest -m claims --tier lab --fsd50k DIR ...`` on tiny folders, tiny settings (--set), the CPU: the
    estimate is printed before the claim runs, the claim reaches a verdict with every control, and the tier is
    recorded in the report, its rows, the estimate file and (Kong et al.'s run, with a SQLite store) MLflow."""
    target, options = E2E[paper]
    fixture_roots["empty"].mkdir(exist_ok=True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if paper == "kong2025" else "none"
    cmd = [sys.executable, "-m", "pytest", "-m", "claims", target, "--tier", "lab", "--device", "cpu",
           "--seeds", "1", *lab_fixtures.set_args(paper), "-p", "no:cacheprovider", "-p", "no:xdist",
           "--mlflow-uri", uri, f"--report-dir={tmp_path / 'reports'}", f"--cache-dir={tmp_path / 'cache'}",
           f"--shared-data={fixture_roots['empty']}", "-q"]
    for opt in options:
        cmd += [opt, str(fixture_roots[opt])]
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout[-4000:] + out.stderr[-3000:]
    assert out.returncode in (0, 1), log                       # 1: the fixtures' verdict is not the paper's
    assert "time estimate, lab tier" in out.stdout, log
    assert out.stdout.index("time estimate, lab tier") < out.stdout.index("claims: lab tier"), log
    report = json.loads((tmp_path / "reports" / "latest" / "claims.json").read_text())
    assert report["meta"]["tier"] == "lab" and report["meta"]["estimate"]["papers_h"].keys() == {paper}
    assert (tmp_path / "reports" / "latest" / "estimate.json").is_file()
    assert "`lab` tier" in (tmp_path / "reports" / "latest" / "claims.md").read_text()
    [row] = report["claims"]
    spec = discover()[row["claim_id"]]
    assert row["tier"] == "lab" and row["verdict"] in VERDICTS and row["paper"] == paper, row.get("error", row)
    assert set(row["controls"]) == set(spec.declared_controls("lab")), row["controls"]
    assert all(v in VERDICTS for v in row["controls"].values()), row["controls"]
    assert row["competence"] and row["settings_overridden"] == lab_fixtures.TINY_SETTINGS[paper]
    assert row["data_manifests"], row
    if uri != "none":
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("music-emergence-claims/lab")
        runs = client.search_runs([exp.experiment_id])
        claim = [r for r in runs if r.data.tags.get("mec.level") == "claim"]
        session = [r for r in runs if r.data.tags.get("mec.tier") == "lab" and "mec.estimate" in r.data.tags]
        assert claim and all(r.data.tags["mec.tier"] == "lab" for r in claim)
        assert claim[0].data.tags["mec.verdict"] == row["verdict"] and session, [r.data.tags for r in runs]
