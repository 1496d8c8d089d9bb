"""Claim specs and the interval verdict rule, on analytical cases."""
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.stats import Estimate
from harness.spec import FAIL, INCONCLUSIVE, PASS, Claim, Criterion, Evidence, Paper, Tier, combine, evaluate

PAPER = Paper("toy", "Toy, A. (2026). A toy paper.")


def make_spec(threshold=1.5, **kw) -> Claim:
    base = dict(id="toy.ratio", paper=PAPER, finding="Toys prefer music.", statistic="ratio", unit="seeds",
                criteria=[Criterion("ratio", ">=", threshold, source="ours")],
                controls={"random_init": FAIL}, tiers={"ci": Tier({"seeds": 3})})
    base.update(kw)
    return Claim(**base)


@pytest.mark.parametrize("low,high,expected", [
    (1.6, 2.0, PASS), (1.5, 2.0, PASS), (1.0, 1.4, FAIL), (1.0, 1.49, FAIL), (1.4, 1.6, INCONCLUSIVE)])
def test_greater_equal_rule(low, high, expected):
    c = Criterion("ratio", ">=", 1.5)
    assert c.verdict(Estimate((low + high) / 2, low, high)) == expected


@pytest.mark.parametrize("low,high,expected", [
    (0.0, 0.04, PASS), (0.06, 0.2, FAIL), (0.01, 0.2, INCONCLUSIVE), (0.0, 0.05, INCONCLUSIVE), (0.05, 0.2, FAIL)])
def test_less_than_rule(low, high, expected):
    assert Criterion("p", "<", 0.05).verdict(Estimate(low, low, high)) == expected


def test_p_max_turns_a_bound_pass_into_inconclusive():
    c = Criterion("rho", ">", 0.3, p_max=0.01)
    assert c.verdict(Estimate(0.5, 0.4, 0.6, p=0.001)) == PASS
    assert c.verdict(Estimate(0.5, 0.4, 0.6, p=0.2)) == INCONCLUSIVE
    assert c.verdict(Estimate(0.5, 0.4, 0.6, p=None)) == INCONCLUSIVE
    assert c.verdict(Estimate(0.1, 0.0, 0.2, p=0.001)) == FAIL


def test_nan_interval_is_inconclusive():
    assert Criterion("x", ">", 0).verdict(Estimate(float("nan"), float("nan"), float("nan"))) == INCONCLUSIVE


@given(st.floats(-10, 10), st.floats(0, 5), st.floats(-10, 10))
def test_mirror_symmetry(low, width, thr):
    """x > t on [lo, hi] gives the same verdict as -x < -t on [-hi, -lo]."""
    hi = low + width
    a = Criterion("x", ">", thr).verdict(Estimate(low, low, hi))
    b = Criterion("x", "<", -thr).verdict(Estimate(-low, -hi, -low))
    assert a == b


@given(st.lists(st.sampled_from([PASS, FAIL, INCONCLUSIVE]), min_size=1, max_size=5))
def test_combine(vs):
    out = combine(vs)
    if FAIL in vs:
        assert out == FAIL
    elif all(v == PASS for v in vs):
        assert out == PASS
    else:
        assert out == INCONCLUSIVE


def test_edited_threshold_changes_the_spec_hash():
    a, b = make_spec(1.5), make_spec(1.4)
    assert a.sha256() != b.sha256()
    assert make_spec(1.5).sha256() == a.sha256()  # deterministic
    c = dataclasses.replace(a, controls={"random_init": FAIL, "shuffled": FAIL})
    assert c.sha256() != a.sha256()


def test_spec_needs_a_failing_control_and_reasons():
    with pytest.raises(ValueError, match="must be declared to FAIL"):
        make_spec(controls={"oracle": PASS})
    with pytest.raises(ValueError, match="needs a reason"):
        Tier({"seeds": 3}, expect=FAIL)
    with pytest.raises(ValueError, match="comparator"):
        Criterion("x", "=>", 1.0)
    with pytest.raises(ValueError, match="'ci' tier"):
        make_spec(tiers={"paper": Tier({})})


def test_reported_none_means_threshold_is_ours():
    assert make_spec().reported_text == "none: threshold is ours"
    assert make_spec(reported="2.07×").reported_text == "2.07×"


def test_evaluate_main_requires_every_criterion_controls_may_cover_a_subset():
    spec = make_spec(criteria=[Criterion("ratio", ">=", 1.5), Criterion("gain", ">", 0.0)])
    with pytest.raises(ValueError, match="lacks"):
        evaluate(spec, Evidence({"ratio": Estimate.point(2.0)}))
    verdict, per = evaluate(spec, Evidence({"ratio": Estimate(1.0, 0.9, 1.1)}), require_all=False)
    assert verdict == FAIL and set(per) == {"ratio"}


def test_a_tier_may_redeclare_a_control_with_a_reason_but_never_unfalsifiably():
    with pytest.raises(ValueError, match="controls_reason"):
        Tier({}, controls={"random_init": (FAIL, INCONCLUSIVE)})
    with pytest.raises(ValueError, match="unfalsifiable"):
        Tier({}, controls={"random_init": (FAIL, PASS)}, controls_reason="x")
    with pytest.raises(ValueError, match="unknown control"):
        make_spec(tiers={"ci": Tier({}, controls={"nope": FAIL}, controls_reason="x")})
    with pytest.raises(ValueError, match="no control is declared to FAIL strictly"):
        make_spec(tiers={"ci": Tier({}, controls={"random_init": (FAIL, INCONCLUSIVE)}, controls_reason="m")})
    # where the claim is itself declared not to replicate, its controls may be re-declared too
    weak = make_spec(tiers={"ci": Tier({}, expect=INCONCLUSIVE, reason="too few seeds",
                                       controls={"random_init": (FAIL, INCONCLUSIVE)}, controls_reason="m")})
    assert weak.declared_controls("ci") == {"random_init": (FAIL, INCONCLUSIVE)}
    spec = make_spec(controls={"random_init": FAIL, "shuffled": FAIL},
                     tiers={"ci": Tier({}, controls={"shuffled": (FAIL, INCONCLUSIVE)}, controls_reason="measured")})
    assert spec.declared_controls("ci") == {"random_init": FAIL, "shuffled": (FAIL, INCONCLUSIVE)}
    assert spec.declared_controls("paper") == {"random_init": FAIL, "shuffled": FAIL}


# ------------------------------------------------------------------------------ competence
from harness.spec import Competence, assess_competence  # noqa: E402

MAP = Competence("main.test_map", "main", "held-out mAP", ">=", {"ci": 0.5}, source="ours, from measurement",
                 baseline="chance 0.1")


def test_competence_is_met_only_when_every_seed_meets_it():
    assert MAP.judge(Estimate.over_seeds([0.6, 0.7, 0.8]), "ci")["met"]
    d = MAP.judge(Estimate.over_seeds([0.45, 0.7, 0.8]), "ci")
    assert not d["met"] and d["reason"].startswith("main.test_map 0.65") and "< 0.5" in d["reason"]
    assert not MAP.judge(Estimate.point(float("nan")), "ci")["met"]
    loss = Competence("ssl.loss", "ssl", "held-out loss", "<=", {"ci": 1.0}, source="ours")
    assert loss.judge(Estimate.over_seeds([0.5, 0.9]), "ci")["met"]
    assert "> 1" in loss.judge(Estimate.over_seeds([0.5, 1.2]), "ci")["reason"]


def test_an_undertrained_main_condition_turns_the_verdict_inconclusive():
    spec = make_spec(competence=(MAP,))
    ev = Evidence({"ratio": Estimate.over_seeds([2.0, 2.1])}, competence={"main.test_map": Estimate.over_seeds([0.1, 0.2])})
    detail, reason = assess_competence(spec, ev, "ci")
    assert reason.startswith("model did not learn its task: main.test_map") and not detail[0]["met"]
    ok = Evidence({"ratio": Estimate.over_seeds([2.0])}, competence={"main.test_map": Estimate.over_seeds([0.9])},
                  training_s={"main.test_map": 12.5})
    detail, reason = assess_competence(spec, ok, "ci")
    assert reason == "" and detail[0]["met"] and detail[0]["training_s"] == 12.5
    with pytest.raises(ValueError, match="lacks the declared competence"):
        assess_competence(spec, Evidence({"ratio": Estimate.point(2.0)}), "ci")


def test_a_competence_needs_a_threshold_per_tier_and_changes_the_hash():
    with pytest.raises(ValueError, match="no threshold for tier"):
        make_spec(competence=(MAP,), tiers={"ci": Tier({"seeds": 3}), "paper": Tier({"seeds": 5})})
    with pytest.raises(ValueError, match="source"):
        Competence("x", "main", "m", ">=", {"ci": 0.5}, source="")
    a = make_spec(competence=(MAP,))
    b = make_spec(competence=(dataclasses.replace(MAP, thresholds={"ci": 0.4}),))
    assert a.sha256() != b.sha256() != make_spec().sha256()


def test_references_are_hashed_looked_up_and_never_judged():
    from harness.spec import Reference

    ref = Reference("map.baseline", 0.0802, source="a notebook", text="mAP before ablation")
    rng = Reference("quilts.flat", (0.44, 0.47), source="a notebook")
    a = make_spec(references=(ref, rng))
    assert a.reference("map.baseline").value == 0.0802 and a.reference("quilts.flat").value == (0.44, 0.47)
    with pytest.raises(KeyError):
        a.reference("nope")
    # a spec without references hashes as it did before references existed (no key in the canonical form)
    assert "references" not in make_spec().canonical()
    assert a.canonical()["references"][0]["value"] == 0.0802
    # removing or editing a reference changes the hash
    assert a.sha256() != make_spec(references=(ref,)).sha256() != make_spec().sha256()
    assert a.sha256() != make_spec(references=(dataclasses.replace(ref, value=0.08), rng)).sha256()
    # never judged: the verdict depends only on the criteria
    ev = Evidence({"ratio": Estimate(2.0, 1.8, 2.2)})
    assert evaluate(a, ev)[0] == evaluate(make_spec(), ev)[0] == PASS
    assert ref.value_text() == "0.0802" and rng.value_text() == "0.44-0.47"


def test_bad_references_raise():
    from harness.spec import Reference

    with pytest.raises(ValueError, match="source"):
        Reference("x", 1.0, source="")
    with pytest.raises(ValueError, match="range"):
        Reference("x", (0.5, 0.4), source="s")
    with pytest.raises(ValueError, match="qualitative"):
        Reference("x", None, source="s")
    with pytest.raises(ValueError, match="must be a number"):
        Reference("x", "0.8", source="s")
    with pytest.raises(ValueError, match="unique"):
        make_spec(references=(Reference("x", 1, source="s"), Reference("x", 2, source="s")))
    with pytest.raises(ValueError, match="harness.spec.Reference"):
        make_spec(references=({"name": "x"},))


def test_a_tier_may_expect_differently_per_variant():
    from harness.spec import INCONCLUSIVE, Tier

    t = Tier(variants={"wav2vec2": (INCONCLUSIVE, "its SSL model did not learn its task")})
    assert t.expect_for("wav2vec2") == (INCONCLUSIVE, "its SSL model did not learn its task")
    assert t.expect_for("data2vec") == ("PASS", "")
    with pytest.raises(ValueError, match="needs a reason"):
        Tier(variants={"wav2vec2": (INCONCLUSIVE, "")})
    with pytest.raises(ValueError, match="must be"):
        Tier(variants={"wav2vec2": "FAIL"})
