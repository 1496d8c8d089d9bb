"""Tests for analysis.stats: against scipy, analytical cases, Hypothesis properties and seeded
simulations of error rates and coverage."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as ss

from analysis import stats as S
from harness.errors import UserError

FAST = settings(max_examples=40, deadline=None)
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
samples = hnp.arrays(np.float64, st.integers(2, 30), elements=finite)
# continuous values without ties (for properties that assume no ties)
distinct = hnp.arrays(np.float64, st.integers(3, 25), elements=finite, unique=True)


# --------------------------------------------------------------------------------------------
# Estimate
# --------------------------------------------------------------------------------------------
def test_estimate_to_dict_is_json_safe():
    e = S.Estimate(value=float("nan"), low=float("-inf"), high=float("inf"), p=np.float64(0.01), n=np.int64(3),
                   method="m", samples=np.array([1.0, np.nan]))
    d = e.to_dict()
    assert d == {"value": None, "low": None, "high": None, "p": 0.01, "n": 3, "method": "m", "level": 0.95,
                 "samples": [1.0, None]}
    json.dumps(d, allow_nan=False)
    assert type(d["n"]) is int and type(d["p"]) is float


def test_estimate_over_seeds_and_point():
    e = S.Estimate.over_seeds([2.0, 1.0, 4.0])
    assert (e.value, e.low, e.high, e.n, e.method, e.level) == (7 / 3, 1.0, 4.0, 3, "min/max over seeds", None)
    assert e.samples == (2.0, 1.0, 4.0)
    p = S.Estimate.point(0.5)
    assert p.value == p.low == p.high == 0.5 and p.level is None
    with pytest.raises(Exception):
        p.value = 1.0  # frozen
    with pytest.raises(UserError):
        S.Estimate(value=1.0, low=2.0, high=0.0)
    with pytest.raises(UserError):
        S.Estimate.over_seeds([1.0, np.nan])


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------
@FAST
@given(samples, st.integers(0, 2**31 - 1))
def test_bootstrap_ci_contains_mean(x, seed):
    e = S.bootstrap_ci(x, n_boot=500, seed=seed)
    assert e.low <= e.value + 1e-9 * (1 + abs(e.value)) and e.value <= e.high + 1e-9 * (1 + abs(e.value))
    assert e.n == x.size and e.samples == tuple(x)


@FAST
@given(finite, st.integers(1, 40), st.sampled_from(["percentile", "bca"]))
def test_bootstrap_of_constant_is_degenerate(c, n, method):
    e = S.bootstrap_ci(np.full(n, c), n_boot=300, method=method)
    assert e.low == e.high == e.value == pytest.approx(c, rel=1e-12, abs=1e-12)


def test_bootstrap_is_deterministic_and_seeded():
    x = np.random.default_rng(0).normal(size=50)
    a, b = S.bootstrap_ci(x, seed=3), S.bootstrap_ci(x, seed=3)
    c = S.bootstrap_ci(x, seed=4)
    assert a == b and (a.low, a.high) != (c.low, c.high)


def test_bootstrap_matches_scipy_and_normal_theory():
    x = np.random.default_rng(1).exponential(size=80)
    for method, sp_method in (("percentile", "percentile"), ("bca", "BCa")):
        ours = S.bootstrap_ci(x, n_boot=20000, seed=0, method=method)
        ref = ss.bootstrap((x,), np.mean, n_resamples=20000, method=sp_method, rng=np.random.default_rng(1))
        width = ref.confidence_interval.high - ref.confidence_interval.low
        assert abs(ours.low - ref.confidence_interval.low) < 0.05 * width
        assert abs(ours.high - ref.confidence_interval.high) < 0.05 * width
    # percentile interval of the mean of N(0,1) data ~ mean +- 1.96 sd / sqrt(n)
    y = np.random.default_rng(2).normal(size=400)
    e = S.bootstrap_ci(y, n_boot=20000, seed=0)
    half = 1.959964 * y.std() / math.sqrt(y.size)
    assert e.high - e.low == pytest.approx(2 * half, rel=0.05)


def test_bootstrap_statistic_without_axis_and_large_n_chunking():
    x = np.random.default_rng(0).normal(size=30)
    vec = S.bootstrap_ci(x, statistic=np.median, n_boot=400, seed=5)
    loop = S.bootstrap_ci(x, statistic=lambda r: float(np.median(r)), n_boot=400, seed=5)
    assert vec.low == loop.low and vec.high == loop.high
    big = np.random.default_rng(0).normal(size=20000)  # 2000 x 20000 does not fit one chunk
    e = S.bootstrap_ci(big, n_boot=2000, seed=0)
    assert e.low < e.value < e.high and e.samples == ()  # too many units to keep


def test_paired_bootstrap_diff():
    rng = np.random.default_rng(0)
    b = rng.normal(size=60)
    e = S.paired_bootstrap_diff(b + 0.25, b, n_boot=2000)
    # constant difference (up to rounding): degenerate interval
    assert (e.value, e.low, e.high) == pytest.approx((0.25, 0.25, 0.25), abs=1e-12)
    assert e.p == pytest.approx(2 / 2001)
    a = b + rng.normal(0.5, 1.0, size=60)
    e = S.paired_bootstrap_diff(a, b, n_boot=5000, seed=1)
    assert e.value == pytest.approx(np.mean(a - b)) and e.low > 0 and e.p < 0.01
    assert S.paired_bootstrap_diff(a, b, alternative="less", n_boot=5000, seed=1).p > 0.99
    # the p-value agrees with the interval: 0 outside the 95 % interval <=> p <= 0.05
    for seed in range(20):
        x, y = rng.normal(0.3, 1, 15), rng.normal(size=15)
        e = S.paired_bootstrap_diff(x, y, n_boot=2000, seed=seed)
        assert (e.low > 0 or e.high < 0) == (e.p <= 0.05 + 1e-3) or abs(e.p - 0.05) < 0.01
    with pytest.raises(UserError):
        S.paired_bootstrap_diff([1, 2, 3], [1, 2])


def test_mean_ci_t_matches_scipy():
    x = np.array([1.8, 2.1, 2.4, 1.9, 2.2])
    e = S.mean_ci_t(x, level=0.9, popmean=1.5, alternative="greater")
    ref = ss.ttest_1samp(x, 1.5, alternative="greater")
    lo, hi = ss.t.interval(0.9, df=4, loc=x.mean(), scale=ss.sem(x))
    assert (e.low, e.high) == pytest.approx((lo, hi), rel=1e-12)
    assert e.p == pytest.approx(ref.pvalue, rel=1e-12) and e.value == pytest.approx(2.08)
    c = S.mean_ci_t([3.0, 3.0, 3.0])
    assert c.low == c.high == 3.0 and c.p == 0.0
    with pytest.raises(UserError):
        S.mean_ci_t([1.0])


# --------------------------------------------------------------------------------------------
# permutation tests
# --------------------------------------------------------------------------------------------
def test_permutation_test_matches_exact_enumeration():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    ref = ss.permutation_test((x, y), lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                              permutation_type="independent", alternative="less", n_resamples=10**6)
    assert ref.pvalue == pytest.approx(1 / 20)  # exact: 1 of C(6,3) arrangements
    e = S.permutation_test(x, y, n_perm=20000, alternative="less", seed=0, n_boot=0)
    assert e.value == -3.0 and e.p == pytest.approx(0.05, abs=0.006)
    assert S.permutation_test(x, y, n_perm=20000, seed=0, n_boot=0).p == pytest.approx(0.1, abs=0.008)


@FAST
@given(samples, samples, st.sampled_from(S.ALTERNATIVES), st.integers(0, 1000))
def test_permutation_p_in_unit_interval(x, y, alternative, seed):
    e = S.permutation_test(x, y, n_perm=99, alternative=alternative, seed=seed, n_boot=50)
    assert 1 / 100 <= e.p <= 1.0
    assert e.low <= e.high


def test_permutation_false_positive_rate_on_null_data():
    rng = np.random.default_rng(12345)
    n_sim, alpha = 400, 0.05
    pvals = np.array([S.permutation_test(rng.normal(size=12), rng.normal(size=12), n_perm=199, seed=i, n_boot=0).p
                      for i in range(n_sim)])
    rate = np.mean(pvals <= alpha)
    assert 0.02 <= rate <= 0.085, rate  # binomial(400, 0.05): +-3 sd
    assert ss.kstest(pvals, "uniform").pvalue > 0.001
    # agrees with scipy's Monte Carlo permutation test on the same data, and has power
    x, y = rng.normal(0.6, 1, 20), rng.normal(size=20)
    ref = ss.permutation_test((x, y), S.mean_difference, n_resamples=9999, rng=np.random.default_rng(0)).pvalue
    assert S.permutation_test(x, y, n_perm=9999, n_boot=0).p == pytest.approx(ref, abs=0.015)
    assert S.permutation_test(rng.normal(2.0, 1, 20), rng.normal(size=20), n_perm=999, n_boot=0).p < 0.01


def test_permutation_pvalue_helper():
    null = np.arange(99.0)
    assert S.permutation_pvalue(98.0, null, "greater") == pytest.approx(2 / 100)
    assert S.permutation_pvalue(1000.0, null, "greater") == pytest.approx(1 / 100)
    assert S.permutation_pvalue(1000.0, null, "less") == 1.0
    assert S.permutation_pvalue(-5.0, null, "two-sided") == pytest.approx(2 / 100)
    with pytest.raises(UserError):
        S.permutation_pvalue(1.0, null, "bigger")


# --------------------------------------------------------------------------------------------
# rank tests
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alternative", S.ALTERNATIVES)
def test_ranksum_matches_scipy(alternative):
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.4, 1, 40).round(1), rng.normal(0, 1, 55).round(1)  # rounding makes ties
    e = S.ranksum_cles(x, y, alternative=alternative)
    ref = ss.mannwhitneyu(x, y, alternative=alternative)
    assert e.value == pytest.approx(ref.statistic / (40 * 55)) and e.p == pytest.approx(ref.pvalue)
    brute = np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :]))
    assert e.value == pytest.approx(brute) and e.n == 95


@FAST
@given(distinct, distinct)
def test_cles_complement_and_interval(x, y):
    y = y[~np.isin(y, x)]
    if y.size == 0:
        return
    a, b = S.ranksum_cles(x, y), S.ranksum_cles(y, x)
    assert a.value + b.value == pytest.approx(1.0, abs=1e-12)
    for e in (a, b):
        assert 0.0 <= e.low <= e.value <= e.high <= 1.0


def test_cles_analytical_and_delong_variance():
    e = S.ranksum_cles([5.0, 6.0, 7.0], [1.0, 2.0], alternative="greater")
    assert e.value == 1.0 and e.p == pytest.approx(0.1)  # exact: 1 / C(5, 2)
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.5, 1, 30), rng.normal(0, 1, 20)
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    auc = psi.mean()
    var = psi.mean(1).var(ddof=1) / 30 + psi.mean(0).var(ddof=1) / 20  # DeLong 1988 by brute force
    e = S.ranksum_cles(x, y, level=0.95)
    assert (e.low, e.high) == pytest.approx((auc - 1.959964 * var**0.5, auc + 1.959964 * var**0.5), rel=1e-6)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = math.sqrt((auc * (1 - auc) + 29 * (q1 - auc**2) + 19 * (q2 - auc**2)) / 600)
    h = S.ranksum_cles(x, y, interval="hanley")
    assert (h.low, h.high) == pytest.approx((auc - 1.959964 * se, auc + 1.959964 * se), rel=1e-6)
    bt = S.ranksum_cles(x, y, interval="bootstrap", n_boot=4000)
    assert abs((bt.high - bt.low) - (e.high - e.low)) < 0.25 * (e.high - e.low)
    # Kim et al.: U = 30,340,954 with 3,999 music and 11,010 non-music clips -> 0.689
    assert 30_340_954 / (3999 * 11010) == pytest.approx(0.689, abs=5e-4)


def test_cles_delong_coverage_simulation():
    rng = np.random.default_rng(7)
    true = ss.norm.cdf(0.7 / math.sqrt(2))  # P(X > Y), X ~ N(0.7, 1), Y ~ N(0, 1)
    hits = [(lambda e: e.low <= true <= e.high)(S.ranksum_cles(rng.normal(0.7, 1, 40), rng.normal(0, 1, 50)))
            for _ in range(300)]
    assert 0.91 <= np.mean(hits) <= 0.99, np.mean(hits)


@pytest.mark.parametrize("alternative", S.ALTERNATIVES)
def test_signed_rank_matches_scipy(alternative):
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.3, 1, 14), rng.normal(0, 1, 14)
    e = S.signed_rank(x, y, alternative=alternative)
    assert e.p == pytest.approx(ss.wilcoxon(x, y, alternative=alternative).pvalue)
    d = x - y
    i, j = np.triu_indices(14)
    assert e.value == pytest.approx(np.median((d[i] + d[j]) / 2)) and e.low <= e.value <= e.high
    big = S.signed_rank(rng.normal(0.2, 1, 120), alternative=alternative)  # normal-approximation branch
    assert big.low <= big.value <= big.high and abs(big.level - 0.95) < 0.01


def test_signed_rank_five_seeds_floor_and_exact_levels():
    e = S.signed_rank([0.3, 0.1, 0.4, 0.2, 0.5], alternative="greater")
    assert e.p == pytest.approx(1 / 32)  # the paper's note: 5 networks bottom out at 0.031
    assert e.level == pytest.approx(1 - 2 / 32) and (e.low, e.high) == (0.1, 0.5)
    # n = 10 at 95 %: critical value 8, P(T+ <= 8) = 25/1024 -> Walsh order statistics 9 and 47
    d = np.random.default_rng(0).normal(size=10)
    e = S.signed_rank(d)
    w = np.sort([(d[i] + d[j]) / 2 for i in range(10) for j in range(i, 10)])
    assert e.level == pytest.approx(1 - 2 * 25 / 1024) and (e.low, e.high) == (w[8], w[46])
    assert S.signed_rank(np.zeros(6)).p == 1.0


def test_signed_rank_interval_coverage_simulation():
    rng = np.random.default_rng(11)
    d = rng.standard_t(5, size=(400, 12)) + 1.0
    hits = [(lambda e: e.low <= 1.0 <= e.high)(S.signed_rank(row)) for row in d]
    achieved = S.signed_rank(d[0]).level
    assert abs(np.mean(hits) - achieved) < 0.035, (np.mean(hits), achieved)


# --------------------------------------------------------------------------------------------
# correlations
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alternative", S.ALTERNATIVES)
def test_pearson_matches_scipy(alternative):
    rng = np.random.default_rng(6)
    x = rng.normal(size=30)
    y = 0.5 * x + rng.normal(size=30)
    e = S.pearson_ci(x, y, level=0.9, alternative=alternative)
    ref = ss.pearsonr(x, y, alternative=alternative)
    ci = ss.pearsonr(x, y).confidence_interval(0.9)
    assert e.value == pytest.approx(ref.statistic) and e.p == pytest.approx(ref.pvalue)
    assert (e.low, e.high) == pytest.approx((ci.low, ci.high), rel=1e-10)


@pytest.mark.parametrize("alternative", S.ALTERNATIVES)
def test_spearman_matches_scipy(alternative):
    rng = np.random.default_rng(8)
    x = rng.normal(size=25)
    y = np.exp(x) + rng.normal(scale=0.5, size=25)
    e = S.spearman_ci(x, y, alternative=alternative)
    ref = ss.spearmanr(x, y, alternative=alternative)
    assert e.value == pytest.approx(ref.statistic) and e.p == pytest.approx(ref.pvalue)
    width = np.arctanh(e.high) - np.arctanh(e.low)
    assert width == pytest.approx(2 * 1.959964 * math.sqrt(1.06 / 22), rel=1e-6)


@FAST
@given(hnp.arrays(np.float64, st.integers(5, 30), elements=finite, unique=True), st.integers(0, 1000))
def test_correlation_intervals_contain_value(x, seed):
    y = x + np.random.default_rng(seed).normal(scale=1 + np.std(x), size=x.size)
    for f in (S.pearson_ci, S.spearman_ci):
        e = f(x, y)
        assert -1.0 <= e.low <= e.value + 1e-12 and e.value <= e.high + 1e-12 and e.high <= 1.0


def test_partial_spearman_analytical():
    rng = np.random.default_rng(9)
    z = rng.normal(size=200)
    x, y = z + rng.normal(size=200), z**3 + rng.normal(size=200)
    e = S.partial_spearman(x, y, z)
    r = lambda a, b: ss.spearmanr(a, b).statistic
    formula = (r(x, y) - r(x, z) * r(y, z)) / math.sqrt((1 - r(x, z) ** 2) * (1 - r(y, z) ** 2))
    assert e.value == pytest.approx(formula, rel=1e-10)
    assert r(x, y) > 0.3 and abs(e.value) < 0.15  # the shared cause explains the correlation
    # a covariate unrelated to both leaves the correlation (almost) as it is
    w = rng.normal(size=200)
    assert S.partial_spearman(x, z, w).value == pytest.approx(r(x, z), abs=0.02)
    # two covariates, and the t-test p-value against the t distribution
    e2 = S.partial_spearman(x, y, np.column_stack([z, w]))
    t = e2.value * math.sqrt(196 / (1 - e2.value**2))
    assert e2.p == pytest.approx(2 * ss.t.sf(abs(t), 196))
    with pytest.raises(UserError):
        S.partial_spearman(x, x, x)


def test_partial_spearman_false_positive_rate():
    rng = np.random.default_rng(10)
    p = []
    for _ in range(300):
        z = rng.normal(size=40)
        p.append(S.partial_spearman(z + rng.normal(size=40), z + rng.normal(size=40), z).p)
    assert 0.015 <= np.mean(np.array(p) <= 0.05) <= 0.09


# --------------------------------------------------------------------------------------------
# FDR and Welch t
# --------------------------------------------------------------------------------------------
@FAST
@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(0, 1)), st.floats(0.001, 0.5))
def test_fdr_bh_matches_scipy_and_is_monotone(p, alpha):
    reject, q = S.fdr_bh(p, alpha)
    assert q == pytest.approx(ss.false_discovery_control(p, method="bh"), abs=1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-15)  # q is monotone in p
    assert np.all(q >= p - 1e-15) and np.all(q <= 1.0)
    assert np.array_equal(reject, q <= alpha)


def test_fdr_bh_analytical_and_shape():
    p = np.array([[0.01, 0.04], [0.03, 0.2]])
    reject, q = S.fdr_bh(p, 0.05)
    assert q == pytest.approx(np.array([[0.04, 0.0533333], [0.0533333, 0.2]]), rel=1e-5)
    assert reject.tolist() == [[True, False], [False, False]]
    with pytest.raises(UserError):
        S.fdr_bh([0.1, 1.5])


def test_welch_t_matches_scipy_vectorised():
    rng = np.random.default_rng(12)
    music, other = rng.normal(0.3, 1.0, size=(40, 256)), rng.normal(0.0, 2.0, size=(90, 256))
    t = S.welch_t(music, other, axis=0)
    assert t.shape == (256,)
    assert t == pytest.approx(ss.ttest_ind(music, other, equal_var=False, axis=0).statistic, rel=1e-10)
    assert S.welch_t(music.T, other.T, axis=1) == pytest.approx(t, rel=1e-12)
    # analytical: means 2 and 0, variances 1 and 1, n = 2 and 2 -> t = 2 / sqrt(1/2 + 1/2)
    assert S.welch_t([1.0, 3.0], [-1.0, 1.0])[()] == pytest.approx(2.0 / math.sqrt(2.0))


def test_bad_input_raises_user_error():
    with pytest.raises(UserError, match="NaN"):
        S.bootstrap_ci([1.0, np.nan])
    with pytest.raises(UserError, match="alternative"):
        S.ranksum_cles([1, 2], [3, 4], alternative="up")
    with pytest.raises(UserError):
        S.pearson_ci([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(UserError):
        S.pearson_ci([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(UserError):
        S.bootstrap_ci([1.0, 2.0], level=95)
    with pytest.raises(UserError):
        S.welch_t([1.0], [1.0, 2.0])


def test_module_imports_first_without_circular_import():
    """harness/__init__ imports analysis.stats, so stats must not import harness at module level."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", "import analysis.stats, harness; print(analysis.stats.Estimate)"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
