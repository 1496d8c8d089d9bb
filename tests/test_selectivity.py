"""Selectivity, readout, ablation and quilt-pipeline analyses of Kim et al. 2024."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from analysis.ablation import ablation_groups, ablation_map, average_precision_per_class, mean_average_precision
from analysis.linear_readout import band_power, gabor_bank, gabor_features, pca_baseline, readout_ap
from analysis.selectivity import (index_bands, music_selectivity_index, n_selected, normalised_quilt_curve,
                                  quilt_response_pipeline, response_ratio, top_units)
from harness.errors import UserError


def test_msi_matches_scipy_welch_t():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(0)
    r = rng.gamma(2.0, size=(50, 9))
    music = np.arange(50) < 18
    r[music, :3] *= 2.0
    expected = ttest_ind(r[music], r[~music], equal_var=False).statistic
    np.testing.assert_allclose(music_selectivity_index(r, music), expected, rtol=1e-10)


def test_msi_known_values():
    # unit 0: music {1, 3} (mean 2, var 2), non-music {0, 0, 0, 0}: t = 2 / sqrt(2/2) = 2
    r = np.array([[1, 5], [3, 5], [0, 5], [0, 5], [0, 5], [0, 5]], float)
    music = np.array([1, 1, 0, 0, 0, 0], bool)
    msi = music_selectivity_index(r, music)
    assert msi[0] == pytest.approx(2.0)
    assert msi[1] == 0.0  # constant unit


# responses on a 0.1 grid: exact-arithmetic invariance, without catastrophic cancellation of
# values far below float resolution (1e-106 + 1.0 == 1.0)
responses = hnp.arrays(np.int64, st.tuples(st.integers(6, 30), st.integers(1, 6)),
                       elements=st.integers(0, 1000)).map(lambda a: a / 10.0)


@settings(max_examples=60, deadline=None)
@given(responses, st.floats(0.01, 100), st.floats(-50, 50), st.integers(0, 2**31 - 1))
def test_msi_invariant_under_positive_affine_rescaling(r, scale, shift, seed):
    music = np.random.default_rng(seed).permutation(np.arange(len(r)) < len(r) // 2)
    base = music_selectivity_index(r, music)
    scaled = music_selectivity_index(scale * r + shift, music)
    finite = np.isfinite(base) & (np.abs(base) < 1e6)
    np.testing.assert_allclose(scaled[finite], base[finite], rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(responses, st.integers(0, 2**31 - 1))
def test_msi_flips_sign_when_groups_swap(r, seed):
    music = np.random.default_rng(seed).permutation(np.arange(len(r)) < len(r) // 2)
    np.testing.assert_allclose(music_selectivity_index(r, ~music), -music_selectivity_index(r, music))


def test_top_units_and_bands():
    msi = np.arange(64, dtype=float)[::-1].copy()  # unit 0 highest
    assert n_selected(256) == 32 and n_selected(64) == 8
    np.testing.assert_array_equal(top_units(msi), np.arange(8))
    bands = index_bands(msi, n_bands=4)
    assert [list(b) for b in bands] == [list(range(8 * i, 8 * i + 8)) for i in range(4)]
    with pytest.raises(UserError):
        index_bands(msi, n_bands=9)


def test_response_ratio_and_errors():
    r = np.array([[4, 1], [2, 1], [1, 1], [1, 1]], float)
    music = np.array([1, 1, 0, 0], bool)
    assert response_ratio(r, music, [0]) == pytest.approx(3.0)
    assert response_ratio(r, music) == pytest.approx(2.0 / 1.0)
    with pytest.raises(UserError):
        response_ratio(r, np.array([1, 0, 0, 0], bool))


def test_average_precision_matches_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    y = rng.random((40, 5)) < 0.3
    y[0] = True
    s = rng.normal(size=(40, 5)) + y
    ours = average_precision_per_class(y, s)
    ref = [average_precision_score(y[:, k], s[:, k]) for k in range(5)]
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    y[:, 2] = False
    assert np.isnan(average_precision_per_class(y, s)[2])
    assert np.isfinite(mean_average_precision(y, s))


def test_ablation_groups_are_true_ranks():
    msi = np.arange(256, dtype=float)  # unit 255 highest
    l1 = -np.arange(256, dtype=float)  # unit 0 largest norm
    g = ablation_groups(msi, l1)
    assert all(len(v) == 32 for v in g.values())
    assert set(g["top_msi"]) == set(range(224, 256))
    assert set(g["bottom_msi"]) == set(range(32))
    assert set(g["middle_msi"]) == set(range(256 - 112 - 32, 256 - 112))  # ranks 112..143
    assert set(g["top_l1"]) == set(range(32))


def test_ablation_map_with_a_linear_toy_model():
    # scores = z @ w; class 0 reads unit 0 only, class 1 reads unit 1 only
    rng = np.random.default_rng(0)
    n = 200
    y = rng.random((n, 2)) < 0.4
    z = rng.normal(size=(n, 4)) * 0.1
    z[:, 0] += y[:, 0]
    z[:, 1] += y[:, 1]
    w = np.eye(4)[:, :2]

    def score_fn(units):
        zz = z.copy()
        zz[:, units] = 0
        return zz @ w + 1e-9 * rng.normal(size=(n, 2))

    out = ablation_map(score_fn, y, np.array([True, False]), {"u0": [0], "u1": [1]})
    assert out["none"] > 0.95
    assert out["u0"] < 0.7  # ablating the class's unit destroys it
    assert out["u1"] == pytest.approx(out["none"], abs=0.02)


def test_readout_ap_and_baselines():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3 == 0
    x = rng.normal(size=(120, 10))
    x[:, 0] += 6 * y  # 6 SD apart: nearly perfectly separable
    assert readout_ap(x[:80], y[:80], x[80:], y[80:]) > 0.95
    assert readout_ap(x[:80], y[:80], x[80:], y[80:], method="logistic") > 0.95
    noise = rng.normal(size=(120, 10))
    assert readout_ap(noise[:80], y[:80], noise[80:], y[80:]) < 0.8
    logmel = rng.normal(size=(30, 64, 20)).astype(np.float32)
    a, b, ev = pca_baseline(logmel[:20], logmel[20:], n_components=256)
    assert a.shape == (20, 19) and b.shape == (10, 19) and 0 < ev <= 1 + 1e-5  # float32 rounding
    bank = gabor_bank()
    g = gabor_features(logmel, bank)
    assert g.shape == (30, bank.shape[0]) and np.all(g >= 0)
    assert band_power(np.zeros((2, 64, 5))).shape == (2, 64)


def test_gabor_bank_detects_its_modulation():
    # a temporally modulated log-mel excites a matching temporal-rate filter more than a flat one
    t = np.arange(160) / 80.0  # 80 frames/s before the default 4x time pooling
    mod = np.tile(np.sin(2 * np.pi * 4.0 * t), (64, 1))[None].astype(np.float32)
    flat = np.zeros_like(mod)
    bank = gabor_bank()
    assert gabor_features(mod, bank).sum() > 10 * gabor_features(flat, bank).sum() + 1e-6


def test_quilt_response_pipeline_with_known_quilter():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(4, 1000))
    calls = []

    def quilt(x, sr, seg_ms, seed):  # shrinks the signal more for short segments
        calls.append((seg_ms, seed))
        return x * (seg_ms / 1600.0)

    def featurize(x):  # two "units": RMS and a constant
        return np.stack([np.sqrt((x ** 2).mean(1)), np.ones(len(x))], axis=1)

    sizes = [50, 100, 200, 400, 800, 1600]
    resp = quilt_response_pipeline(audio, 1000, sizes, quilt, featurize, seed=7)
    assert list(resp) == ["original", *sizes]
    assert calls == [(s, 7 + k) for k, s in enumerate(sizes)]
    curve = normalised_quilt_curve(resp, [0])
    vals = [curve[s] for s in sizes]
    assert np.all(np.diff(vals) > 0) and curve[1600] == pytest.approx(curve["original"])
    flat = normalised_quilt_curve(resp, [1])
    assert all(v == pytest.approx(1.0) for v in flat.values())
    with pytest.raises(UserError):
        quilt_response_pipeline(audio, 1000, [50], lambda x, *a: x[:, :10], featurize)


def test_quilt_response_pipeline_with_real_quilter_and_network():
    """End to end: real quilts -> log-mel -> KimCNN pooled features; one-segment quilt == original."""
    import torch

    from models.kim_cnn import build_kim_cnn
    from stimuli.features import logmel
    from stimuli.quilting import quilt_batch

    torch.set_num_threads(1)
    sr = 22050
    n = int(0.8 * sr)  # 17,640 samples: 50 ms = 1,102.5 samples does not divide it, 800 ms does
    rng = np.random.default_rng(0)
    t = np.arange(n) / sr
    audio = np.stack([np.sin(2 * np.pi * (220 + 110 * k) * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.normal(size=n)
                      for k in range(3)]).astype(np.float32)
    model = build_kim_cnn(4, 0.25, seed=0).eval()

    def quilt(x, sr_, seg_ms, seed):
        q = quilt_batch(x, sr_, seg_ms, seed=seed).audio
        out = np.zeros_like(x)
        out[:, :q.shape[1]] = q[:, :x.shape[1]]
        return out

    def featurize(x):
        return model.pooled_features(logmel(x, sr=sr))

    resp = quilt_response_pipeline(audio, sr, [50, 800], quilt, featurize, seed=0)
    assert resp["original"].shape == resp[50].shape == (3, 64)
    np.testing.assert_allclose(resp[800], resp["original"], rtol=1e-4, atol=1e-5)  # one segment = the clip
    assert not np.allclose(resp[50], resp["original"], rtol=1e-3)
    curve = normalised_quilt_curve(resp, np.arange(8))
    assert set(curve) == {"original", 50, 800} and all(0 <= v <= 1 for v in curve.values())


def test_gabor_fft_convolution_matches_direct_convolution():
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 64, 50)).astype(np.float32)
    bank = gabor_bank()
    xc = torch.as_tensor(x - x.mean(axis=(1, 2), keepdims=True)).unsqueeze(1)
    pad = (bank.shape[-2] // 2, bank.shape[-1] // 2)
    direct = torch.relu(torch.nn.functional.conv2d(xc, bank.flip(-1, -2), padding=pad)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(gabor_features(x, bank, pool=(1, 1)), direct, rtol=1e-4, atol=1e-5)


def test_category_margin_on_analytical_cases():
    """Music categories at 2 and 3, others at 1 and 1.5: margin (2 - 1.5) / mean(others) = 0.5 / 1.25."""
    from analysis.selectivity import category_margin

    cats = np.array(["Music"] * 4 + ["Song"] * 4 + ["Speech"] * 4 + ["Rain"] * 4)
    x = np.array([3.0] * 4 + [2.0] * 4 + [1.0] * 4 + [1.5] * 4)
    est = category_margin(x, cats, ("Music", "Song"), n_boot=200)
    assert est.value == pytest.approx(0.5 / 1.25) and est.low == pytest.approx(est.value) == est.high
    # one non-music category above a music one: negative margin
    x2 = x.copy()
    x2[cats == "Rain"] = 2.5
    assert category_margin(x2, cats, ("Music", "Song"), n_boot=50).value == pytest.approx((2 - 2.5) / 1.75)
    # noise widens the interval around the point value; absent positive categories raise
    rng = np.random.default_rng(0)
    noisy = category_margin(x + rng.normal(0, 0.3, x.size), cats, ("Music", "Song", "Opera"), n_boot=300)
    assert noisy.low < noisy.value < noisy.high
    with pytest.raises(UserError, match="category margin"):
        category_margin(x, cats, ("Opera",))


@given(st.floats(0.1, 10.0))
@settings(max_examples=30, deadline=None)
def test_category_margin_ignores_the_response_scale(scale):
    """A ratio of differences to a mean: invariant to rescaling the responses."""
    from analysis.selectivity import category_margin

    cats = np.array(["Music"] * 3 + ["Speech"] * 3 + ["Rain"] * 3)
    x = np.array([2.0, 2.5, 3.0, 1.0, 1.2, 0.8, 1.5, 1.1, 0.9])
    a = category_margin(x, cats, ("Music",), n_boot=20).value
    assert category_margin(scale * x, cats, ("Music",), n_boot=20).value == pytest.approx(a)
