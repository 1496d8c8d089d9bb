"""Declarative claim specifications and the interval-based verdict rule.

A :class:`Claim` says what a paper found, how we measure it (statistic, resampling unit),
the decision rule (criteria: comparator and threshold applied to an interval bound), the named
controls with the verdict each must get, and per-tier settings with whether the claim is
expected to replicate at that tier and why not.

Verdict rule for one criterion with interval ``[low, high]`` and comparator ``>`` (or ``>=``):

- PASS if ``low`` is above the threshold (and ``p <= p_max`` when a ``p_max`` is given);
- FAIL if ``high`` is not above it;
- INCONCLUSIVE otherwise (the interval straddles the threshold, or the bound passed but ``p`` did not).

``<`` / ``<=`` mirror this. A claim PASSes when every criterion passes, FAILs when any fails,
and is INCONCLUSIVE otherwise.

A model earns its claim: each trained condition a verdict rests on declares a :class:`Competence`
(its own task's metric on held-out data, with a threshold per tier). When the main condition's
models miss it, the verdict is INCONCLUSIVE ("model did not learn its task"), never PASS or FAIL.

A claim may also carry :class:`Reference` values from other sources (e.g. the authors' code
release) for comparison; they are hashed with the spec and shown in the ledger, never judged.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

from analysis.stats import Estimate

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
COMPARATORS = (">", ">=", "<", "<=")
#: ``ci``: embedded corpora, reduced models, CPU minutes (a smoke test). ``paper``: the papers' sizes on the
#: user's data (AudioSet, checkpoints). ``lab``: the paper-like code path on open datasets (FSD50K, LibriSpeech,
#: FMA, MAESTRO, GuitarSet, GTZAN) at sizes for one GPU (issue 16).
TIERS = ("ci", "paper", "lab")


@dataclass(frozen=True)
class Paper:
    """A source paper: short key, full citation and DOI or arXiv id."""

    key: str
    citation: str
    doi: str = ""
    url: str = ""
    note: str = ""


@dataclass(frozen=True)
class Criterion:
    """One decision rule: ``estimate[statistic]`` compared to ``threshold`` through its interval.

    Parameters
    ----------
    statistic : str
        Key of the :class:`~analysis.stats.Estimate` in the claim's evidence.
    comparator : {">", ">=", "<", "<="}
    threshold : float
    p_max : float, optional
        When given, PASS also requires the estimate's ``p`` to be at most this.
    source : str
        Where the threshold comes from: ``"ours"`` or a quote of the paper's value.
    description : str
        Plain-language reading of the rule.
    """

    statistic: str
    comparator: str
    threshold: float
    p_max: float | None = None
    source: str = "ours"
    description: str = ""

    def __post_init__(self):
        if self.comparator not in COMPARATORS:
            raise ValueError(f"comparator {self.comparator!r} is not one of {COMPARATORS}")

    def text(self) -> str:
        s = f"{self.statistic} {self.comparator} {self.threshold:g}"
        if self.p_max is not None:
            s += f" (p ≤ {self.p_max:g})"
        return s

    def verdict(self, est: Estimate) -> str:
        """Apply the rule to an interval."""
        lo, hi = est.low, est.high
        if lo is None or hi is None or _nan(lo) or _nan(hi):
            return INCONCLUSIVE
        t = self.threshold
        if self.comparator in (">", ">="):
            better = (lambda x: x > t) if self.comparator == ">" else (lambda x: x >= t)
            bound_pass, bound_fail = better(lo), not better(hi)
        else:
            better = (lambda x: x < t) if self.comparator == "<" else (lambda x: x <= t)
            bound_pass, bound_fail = better(hi), not better(lo)
        if bound_fail:
            return FAIL
        if bound_pass:
            if self.p_max is not None and (est.p is None or _nan(est.p) or est.p > self.p_max):
                return INCONCLUSIVE
            return PASS
        return INCONCLUSIVE


@dataclass(frozen=True)
class Competence:
    """What a trained condition must reach on its own task before its representations are judged.

    Declared once per trained condition (in the paper's conditions module) and referenced by every
    claim whose verdict rests on that condition; it is part of the claim's spec hash.

    Parameters
    ----------
    name : str
        Key of the :class:`~analysis.stats.Estimate` in ``Evidence.competence`` (e.g.
        ``"without_music.test_map"``).
    condition : str
        The trained condition it gates (e.g. ``"without_music"``).
    metric : str
        The task metric in words, with the held-out data it is measured on.
    comparator : {">", ">=", "<", "<="}
    thresholds : mapping of tier name to float
        One threshold per tier the claim declares (a tier's models and task differ).
    source : str
        Where each threshold comes from (a measurement, the paper's value...).
    baseline : str
        The same metric for an untrained / chance / prior model, in words with its value.

    A competence is met when its criterion PASSes on the estimate's interval: for
    ``Estimate.over_seeds`` that is every seed's model meeting the threshold.
    """

    name: str
    condition: str
    metric: str
    comparator: str
    thresholds: Mapping
    source: str
    baseline: str = ""

    def __post_init__(self):
        if self.comparator not in COMPARATORS:
            raise ValueError(f"competence {self.name!r}: comparator {self.comparator!r} is not one of {COMPARATORS}")
        for t in self.thresholds:
            if t not in TIERS:
                raise ValueError(f"competence {self.name!r}: unknown tier {t!r}")
        if not self.source:
            raise ValueError(f"competence {self.name!r}: a threshold needs its source")
        object.__setattr__(self, "thresholds", {k: float(v) for k, v in self.thresholds.items()})

    def criterion(self, tier: str) -> Criterion:
        return Criterion(self.name, self.comparator, self.thresholds[tier], source=self.source)

    def with_tier(self, tier: str, threshold: float, source: str) -> "Competence":
        """This competence with a threshold for one more tier, whose source is appended to :attr:`source`."""
        if tier in self.thresholds:
            raise ValueError(f"competence {self.name!r} already has a threshold for tier {tier!r}")
        if not source:
            raise ValueError(f"competence {self.name!r}: the {tier} threshold needs its source")
        return replace(self, thresholds={**self.thresholds, tier: threshold}, source=f"{self.source}; {tier}: {source}")

    def text(self, tier: str) -> str:
        return f"{self.name} {self.comparator} {self.thresholds[tier]:g}"

    def judge(self, est: Estimate, tier: str) -> dict:
        """Whether ``est`` meets this competence at ``tier``, as a report-ready dict."""
        crit = self.criterion(tier)
        met = crit.verdict(est) == PASS
        d = {"name": self.name, "condition": self.condition, "metric": self.metric,
             "comparator": self.comparator, "threshold": crit.threshold, "met": met,
             "value": est.value, "low": est.low, "high": est.high, "n": est.n, "method": est.method,
             "baseline": self.baseline}
        if not met:
            bound = est.low if self.comparator in (">", ">=") else est.high
            shown = "" if bound is None or _nan(bound) or bound == est.value else \
                f" ({'worst' if est.method and 'seed' in est.method else 'bound'} {bound:.3g})"
            miss = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[self.comparator]
            value = "nan" if est.value is None or _nan(est.value) else f"{est.value:.3g}"
            d["reason"] = f"{self.name} {value}{shown} {miss} {crit.threshold:g}"
        return d


@dataclass(frozen=True)
class Reference:
    """A value a source reports for the claim, kept beside the criteria for comparison, never judged.

    The paper's headline number lives in :attr:`Claim.reported`; a reference records any other
    figure (or definition) with where it comes from, e.g. the authors' code release, so that a
    replication's measurement can be set against it. References are part of the spec hash but no
    verdict reads them: thresholds stay in :class:`Criterion`.

    Parameters
    ----------
    name : str
        Dotted key, unique within the claim (e.g. ``"ablation.map.top_msi"``).
    value : float, (low, high) pair of float, or None
        The number; a pair for a reported range ("flat at 0.44-0.47"); None for a qualitative
        statement (then ``text`` says it).
    source : str
        Where the value comes from (e.g. ``"Kim et al. notebook kgspiano/Music"``).
    text : str
        What the value is, in words: the stimulus, the units, the statistic, and how it relates to
        the project's own statistic when they differ.
    """

    name: str
    value: object
    source: str
    text: str = ""

    def __post_init__(self):
        if not self.name:
            raise ValueError("a reference needs a name")
        if not self.source:
            raise ValueError(f"reference {self.name!r}: a reference needs its source")
        v = self.value
        if v is None:
            if not self.text:
                raise ValueError(f"reference {self.name!r}: a qualitative reference (value None) needs its text")
        elif isinstance(v, (tuple, list)):
            if len(v) != 2 or not all(_number(x) for x in v) or float(v[0]) > float(v[1]):
                raise ValueError(f"reference {self.name!r}: a range must be (low, high) numbers, got {v!r}")
            object.__setattr__(self, "value", (float(v[0]), float(v[1])))
        elif _number(v):
            object.__setattr__(self, "value", float(v))
        else:
            raise ValueError(f"reference {self.name!r}: value must be a number, a (low, high) pair or None, got {v!r}")

    def value_text(self) -> str:
        v = self.value
        if v is None:
            return "(qualitative)"
        if isinstance(v, tuple):
            return f"{v[0]:g}-{v[1]:g}"
        return f"{v:g}"

    def text_line(self) -> str:
        return f"{self.name} = {self.value_text()} ({self.source})" + (f": {self.text}" if self.text else "")


@dataclass(frozen=True)
class Tier:
    """Settings of a claim at one tier and whether it is expected to replicate there.

    Parameters
    ----------
    settings : mapping
        Sizes, seeds, epochs... read by the claim through ``run.settings``.
    expect : {"PASS", "FAIL", "INCONCLUSIVE"}
        The verdict we expect at this tier. Anything but PASS is a declared non-replication:
        pytest reports it as xfail(strict) and fails if the claim unexpectedly PASSes.
    reason : str
        Why a non-PASS is expected (required when ``expect != "PASS"``).
    data : tuple of str
        Data roots the claim needs at this tier (keys of ``harness.options.DATA_ROOTS``).
    variants : mapping of str to (expect, reason)
        Per parametrisation (the pytest id, e.g. ``"wav2vec2"``), an expectation that differs from
        ``expect``, with its own reason: the variants of one claim may stand differently at a tier
        (one architecture's model learned its task, the other's did not).
    """

    settings: Mapping = field(default_factory=dict)
    expect: str = PASS
    reason: str = ""
    data: tuple = ()
    controls: Mapping = field(default_factory=dict)
    controls_reason: str = ""
    variants: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if self.expect not in VERDICTS:
            raise ValueError(f"expect={self.expect!r} must be one of {VERDICTS}")
        if self.expect != PASS and not self.reason:
            raise ValueError("a declared non-replication (expect != PASS) needs a reason")
        if self.controls and not self.controls_reason:
            raise ValueError("a tier that re-declares a control's verdict needs controls_reason (what was measured)")
        for name, v in self.controls.items():
            allowed = (v,) if isinstance(v, str) else tuple(v)
            if not allowed or any(a not in VERDICTS for a in allowed):
                raise ValueError(f"tier control {name!r}: {v!r} is not a verdict or a tuple of verdicts")
            if PASS in allowed and FAIL in allowed:
                raise ValueError(f"tier control {name!r}: accepting both PASS and FAIL would make it unfalsifiable")
        for name, v in self.variants.items():
            if not (isinstance(v, tuple) and len(v) == 2 and v[0] in VERDICTS and isinstance(v[1], str)):
                raise ValueError(f"tier variant {name!r}: {v!r} must be (expected verdict, reason)")
            if v[0] != PASS and not v[1]:
                raise ValueError(f"tier variant {name!r}: a declared non-replication needs a reason")
        object.__setattr__(self, "variants", dict(self.variants))
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "data", tuple(self.data))
        object.__setattr__(self, "controls", {k: (v if isinstance(v, str) else tuple(v))
                                              for k, v in self.controls.items()})

    def expect_for(self, variant: str = "") -> tuple[str, str]:
        """(expected verdict, reason) of one parametrisation (``variants`` if declared, else the tier's)."""
        return self.variants.get(variant, (self.expect, self.reason))


@dataclass(frozen=True)
class Claim:
    """A paper's finding as a falsifiable, tiered test.

    Parameters
    ----------
    id : str
        Dotted id, ``<paper>.<topic>.<finding>`` (e.g. ``kim2024.ms_units.response_ratio``).
    paper : Paper
    finding : str
        The paper's sentence (quoted) or, for abstract-only papers, the abstract's claim.
    statistic : str
        What is measured, in words.
    unit : str
        The resampling unit the intervals are over: ``"seeds"``, ``"stimuli"``, ``"clips"``...
    criteria : sequence of Criterion
        All must PASS for the claim to PASS. The first is the headline statistic.
    controls : mapping of str to verdict
        Named controls and the verdict each must get (a negative control must FAIL, an oracle
        must PASS). A mismatch fails the test: it shows the claim can fail.
    tiers : mapping of tier name to Tier
    reported : str or None
        The paper's reported value; ``None`` means "none: threshold is ours".
    alpha : float
        Significance level used for intervals and p-value criteria.
    control_notes : mapping
        What each control is, in words.
    version : int
        Bump when the claim's logic changes (not its thresholds: those are hashed).
    competence : sequence of Competence
        The trained conditions' own-task competences the verdict rests on (the main condition's
        models); missing any turns the verdict INCONCLUSIVE.
    references : sequence of Reference
        Other sources' values for comparison (e.g. the authors' code release), hashed with the spec
        but never judged; :meth:`reference` looks one up by name.
    """

    id: str
    paper: Paper
    finding: str
    statistic: str
    unit: str
    criteria: tuple
    controls: Mapping
    tiers: Mapping
    reported: str | None = None
    alpha: float = 0.05
    control_notes: Mapping = field(default_factory=dict)
    notes: str = ""
    version: int = 1
    competence: tuple = ()
    references: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "criteria", tuple(self.criteria))
        object.__setattr__(self, "competence", tuple(self.competence))
        object.__setattr__(self, "references", tuple(self.references))
        for r in self.references:
            if not isinstance(r, Reference):
                raise ValueError(f"{self.id}: references must be harness.spec.Reference, got {r!r}")
        ref_names = [r.name for r in self.references]
        if len(set(ref_names)) != len(ref_names):
            raise ValueError(f"{self.id}: reference names must be unique")
        names = [c.name for c in self.competence]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: competence names must be unique")
        for c in self.competence:
            if not isinstance(c, Competence):
                raise ValueError(f"{self.id}: competence entries must be harness.spec.Competence, got {c!r}")
            missing = [t for t in self.tiers if t not in c.thresholds]
            if missing:
                raise ValueError(f"{self.id}: competence {c.name!r} has no threshold for tier(s) {', '.join(missing)}")
        object.__setattr__(self, "controls", dict(self.controls))
        object.__setattr__(self, "tiers", dict(self.tiers))
        object.__setattr__(self, "control_notes", dict(self.control_notes))
        if not self.criteria:
            raise ValueError(f"{self.id}: a claim needs at least one criterion")
        if not self.controls:
            raise ValueError(f"{self.id}: a claim needs at least one control that must fail it")
        if FAIL not in self.controls.values():
            raise ValueError(f"{self.id}: at least one control must be declared to FAIL")
        for name, v in self.controls.items():
            if v not in VERDICTS:
                raise ValueError(f"{self.id}: control {name!r} verdict {v!r} not in {VERDICTS}")
        if "main" in self.controls:
            raise ValueError(f"{self.id}: 'main' is reserved for the claim's own condition")
        for t in self.tiers:
            if t not in TIERS:
                raise ValueError(f"{self.id}: unknown tier {t!r}")
        if "ci" not in self.tiers:
            raise ValueError(f"{self.id}: every claim needs a 'ci' tier")
        for tname, t in self.tiers.items():
            # where the claim is expected to PASS, some control must be able to show it can fail
            if t.expect == PASS and FAIL not in self.declared_controls(tname).values():
                raise ValueError(f"{self.id}: at tier {tname!r} no control is declared to FAIL strictly")
        for tname, t in self.tiers.items():
            for name in t.controls:
                if name not in self.controls:
                    raise ValueError(f"{self.id}: tier {tname!r} re-declares unknown control {name!r}")
        stats = [c.statistic for c in self.criteria]
        if len(set(stats)) != len(stats):
            raise ValueError(f"{self.id}: criteria statistics must be unique")

    @property
    def reported_text(self) -> str:
        return self.reported if self.reported is not None else "none: threshold is ours"

    @property
    def headline(self) -> Criterion:
        return self.criteria[0]

    def canonical(self) -> dict:
        """The spec as plain data (what is hashed, logged as params and stored as an artifact)."""
        d = asdict(self)
        d["reported"] = self.reported_text
        if not self.references:  # a spec without references hashes as before they existed
            del d["references"]
        for t in d["tiers"].values():  # nor does a tier without per-variant expectations
            if not t.get("variants"):
                t.pop("variants", None)
        return json.loads(json.dumps(d, sort_keys=True, default=str))

    def sha256(self) -> str:
        """SHA-256 of the canonical spec: a silently edited threshold changes it."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def declared_controls(self, tier: str) -> dict:
        """Control name → accepted verdict(s) at ``tier`` (the tier may re-declare, with a reason).

        At least one control must still be declared to FAIL strictly at every tier.
        """
        out = dict(self.controls)
        if tier in self.tiers:
            out.update(self.tiers[tier].controls)
        return out

    def reference(self, name: str) -> Reference:
        """The reference called ``name`` (KeyError if the spec has none)."""
        for r in self.references:
            if r.name == name:
                return r
        raise KeyError(f"{self.id}: no reference {name!r}")

    def tier(self, name: str) -> Tier:
        if name not in self.tiers:
            raise KeyError(name)
        return self.tiers[name]


@dataclass
class Evidence:
    """What a claim function measured for one condition (the claim's own, or a control).

    Parameters
    ----------
    estimates : mapping of statistic name to Estimate
        Must cover the claim's criteria for the main condition; a control may cover a subset.
    values : mapping
        Extra numbers worth keeping (per-seed values, baselines); JSON-able.
    note : str
    competence : mapping of competence name to Estimate
        The condition's models on their own task (held-out), one value per seed; required for the
        main condition for every :class:`Competence` the claim declares.
    training_s : mapping of competence name to float
        Seconds spent training the models behind each competence (summed over seeds, as recorded
        when they were built); reported beside the competence.
    """

    estimates: Mapping
    values: Mapping = field(default_factory=dict)
    note: str = ""
    competence: Mapping = field(default_factory=dict)
    training_s: Mapping = field(default_factory=dict)


def combine(verdicts) -> str:
    """PASS if all PASS; FAIL if any FAIL; otherwise INCONCLUSIVE."""
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if any(v == FAIL for v in verdicts):
        return FAIL
    if all(v == PASS for v in verdicts):
        return PASS
    return INCONCLUSIVE


def evaluate(spec: Claim, evidence: Evidence, *, require_all: bool = True) -> tuple[str, dict]:
    """Verdict of one condition's evidence under the spec's criteria.

    Returns the combined verdict and a per-criterion breakdown. ``require_all`` demands an
    estimate for every criterion (the claim's own condition); controls may cover a subset.
    """
    per = {}
    for c in spec.criteria:
        est = evidence.estimates.get(c.statistic)
        if est is None:
            if require_all:
                raise ValueError(f"{spec.id}: evidence lacks the estimate {c.statistic!r}")
            continue
        per[c.statistic] = {"verdict": c.verdict(est), "estimate": est.to_dict(),
                            "comparator": c.comparator, "threshold": c.threshold, "p_max": c.p_max}
    if not per:
        raise ValueError(f"{spec.id}: evidence covers none of the criteria")
    return combine(v["verdict"] for v in per.values()), per


def assess_competence(spec: Claim, evidence: Evidence, tier: str) -> tuple[list[dict], str]:
    """Judge the main condition's declared competences at ``tier``.

    Returns
    -------
    detail : list of dict
        One :meth:`Competence.judge` dict per declared competence.
    reason : str
        ``""`` when every competence is met, else ``"model did not learn its task: ..."``.

    Raises
    ------
    ValueError
        When the evidence lacks a declared competence (the claim function is a defect).
    """
    detail = []
    for c in spec.competence:
        est = (evidence.competence or {}).get(c.name)
        if est is None:
            raise ValueError(f"{spec.id}: the main evidence lacks the declared competence {c.name!r} "
                             f"(return Evidence(..., competence={{{c.name!r}: Estimate}}))")
        d = c.judge(est, tier)
        d["training_s"] = (evidence.training_s or {}).get(c.name)
        detail.append(d)
    missed = [d["reason"] for d in detail if not d["met"]]
    return detail, ("model did not learn its task: " + "; ".join(missed)) if missed else ""


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _nan(x) -> bool:
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True
