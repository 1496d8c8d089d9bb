"""Sound quilting: properties, analytical cases, the numpy reference as an oracle, the Kim framing."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from stimuli.quilting import (KIM_SEG_MS, ORDERING_DEFAULTS, ORDERINGS, benchmark_quilting, cut_and_zero, quilt, quilt_batch,
                              quilt_params, quilt_stimuli, reference_quilt_numpy, reflect_index)

torch.set_num_threads(1)


def _signal(n_samples: int, sr: int, seed: int, n_clips: int = 1) -> np.ndarray:
    """Noise under a slow envelope plus a gliding tone: segments differ from each other."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sr
    env = 0.3 + np.abs(np.sin(2 * np.pi * rng.uniform(0.3, 3.0, (n_clips, 1)) * t))
    f = rng.uniform(150, 600, (n_clips, 1)) * (1 + 0.5 * t / t[-1])
    x = env * (np.sin(2 * np.pi * np.cumsum(f, axis=1) / sr) + 0.3 * rng.standard_normal((n_clips, n_samples)))
    return x.astype(np.float32)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sr=st.sampled_from([4000, 8000]), seg_ms=st.sampled_from([50.0, 80.0, 125.0]),
       n_seg=st.integers(1, 12), extra=st.integers(0, 150), ordering=st.sampled_from(ORDERINGS),
       seed=st.integers(0, 2**31 - 1))
def test_quilt_properties(sr, seg_ms, n_seg, extra, ordering, seed):
    p0 = quilt_params(10**6, sr, seg_ms, ordering)
    n_samples = n_seg * p0.seg_samples + min(extra, p0.seg_samples - 1)
    x = _signal(n_samples, sr, seed)[0]
    q = quilt(x, sr, seg_ms, ordering, seed=seed)
    seg, S, F = q.seg_samples, q.max_shift_samples, q.fade_samples
    h = F // 2
    # length as documented; each segment exactly once; shifts within the maximum
    assert q.audio.shape == (n_seg * seg,)
    assert sorted(q.order.tolist()) == list(range(n_seg))
    assert q.shifts_samples[0] == 0 and np.all(np.abs(q.shifts_samples) <= S)
    assert S == int(np.floor(ORDERING_DEFAULTS[ordering]["max_shift_ms"] * sr / 1000 + 0.5))
    # made of the source's segments: outside the fades, slot p plays its segment displaced by its shift
    for p_, (b, s) in enumerate(zip(q.order, q.shifts_samples)):
        lo = 0 if p_ == 0 else F - h
        hi = seg if p_ == n_seg - 1 else seg - h
        src = b * seg + s + np.arange(lo, hi)
        ok = (src >= 0) & (src < n_samples)
        np.testing.assert_array_equal(q.audio[p_ * seg + lo: p_ * seg + hi][ok], x[src[ok]])
        mirrored = np.where(src < 0, -src, 2 * (n_samples - 1) - src)    # reads outside the source mirror it
        np.testing.assert_array_equal(q.audio[p_ * seg + lo: p_ * seg + hi][~ok], x[mirrored[~ok]])
    # the same seed gives the same quilt
    q2 = quilt(x, sr, seg_ms, ordering, seed=seed)
    np.testing.assert_array_equal(q.audio, q2.audio)
    np.testing.assert_array_equal(q.order, q2.order)


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_one_segment_gives_the_source_back(ordering):
    sr = 8000
    x = _signal(sr, sr, 3)[0]
    q = quilt(x, sr, 1000.0, ordering, seed=5)
    np.testing.assert_array_equal(q.audio, x)
    assert q.order.tolist() == [0] and q.shifts_samples.tolist() == [0]


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_order_is_shuffled_and_original_successor_excluded(ordering):
    sr = 8000
    x = _signal(4 * sr, sr, 1)[0]
    q = quilt(x, sr, 100.0, ordering, seed=0)
    steps = np.diff(q.order)
    # only the very last placement may follow the original order
    assert np.sum(steps[:-1] == 1) == 0
    assert not np.array_equal(q.order, np.sort(q.order))


def test_stationary_tone_is_joined_without_clicks():
    """Analytical: quilting a steady sine must give a steady sine; shifts re-align the phase."""
    sr, f0 = 8000, 220.0
    x = np.sin(2 * np.pi * f0 * np.arange(2 * sr) / sr).astype(np.float32)
    max_step = np.abs(np.diff(x)).max()
    for ordering in ORDERINGS:
        q = quilt(x, sr, 50.0, ordering, seed=2)
        assert np.abs(np.diff(q.audio)).max() <= 1.05 * max_step
        # the envelope stays flat: the cross-fades mix in-phase signals
        assert np.abs(q.audio).reshape(-1, 80).max(axis=1).min() > 0.95
    # without the shift search, the joins are out of phase and the fades dip
    q0 = quilt(x, sr, 50.0, "kim2024", seed=2, max_shift_ms=0.0)
    assert np.abs(q0.audio).reshape(-1, 80).max(axis=1).min() < 0.9


@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("seg_ms", [50.0, 400.0])
def test_fast_path_matches_the_numpy_reference(ordering, seg_ms):
    sr = 22050
    x = _signal(2 * sr, sr, 11, n_clips=2)
    fast64 = quilt_batch(x, sr, seg_ms, ordering, seed=4, dtype=torch.float64)
    fast32 = quilt_batch(x, sr, seg_ms, ordering, seed=4)
    for i in range(2):
        ref = reference_quilt_numpy(x[i], sr, seg_ms, ordering, seed=4, clip_index=i)
        np.testing.assert_array_equal(fast64.order[i], ref.order)
        np.testing.assert_array_equal(fast64.shifts_samples[i], ref.shifts_samples)
        np.testing.assert_allclose(fast64.audio[i], ref.audio, atol=1e-6)
        np.testing.assert_array_equal(fast32.order[i], ref.order)
        assert np.mean(fast32.shifts_samples[i] == ref.shifts_samples) >= 0.95


def test_single_clip_equals_batch_row_zero_and_seeds_differ():
    sr = 8000
    x = _signal(2 * sr, sr, 7, n_clips=3)
    qb = quilt_batch(x, sr, 100.0, "kim2024", seed=9)
    q0 = quilt(x[0], sr, 100.0, "kim2024", seed=9)
    np.testing.assert_array_equal(qb.audio[0], q0.audio)
    starts = {int(quilt(x[0], sr, 100.0, "kim2024", seed=s).order[0]) for s in range(8)}
    assert len(starts) > 1


def test_reflect_index_matches_numpy_reflect_pad():
    for n, pad in [(10, 3), (10, 25), (7, 0), (2, 5)]:
        x = np.arange(n)
        np.testing.assert_array_equal(x[reflect_index(n, pad)], np.pad(x, pad, mode="reflect"))


def test_paper_defaults_in_samples():
    p = quilt_params(10 * 22050, 22050, 50.0, "kim2024")
    assert (p.seg_samples, p.fade_samples, p.max_shift_samples, p.win_samples, p.border_frames) == (1103, 551, 276, 551, 2)
    p = quilt_params(10 * 22050, 22050, 50.0, "overath")
    assert (p.fade_samples, p.max_shift_samples) == (662, 331)


def test_bad_input_raises_user_error():
    x = np.zeros(8000, np.float32)
    with pytest.raises(UserError, match="ordering"):
        quilt(x, 8000, 100.0, "random")
    with pytest.raises(UserError, match="longer than the clip"):
        quilt(x, 8000, 2000.0)
    with pytest.raises(UserError, match="mono"):
        quilt(np.zeros((2, 8000), np.float32), 8000, 100.0)
    with pytest.raises(UserError, match="half"):
        quilt(x, 8000, 50.0, max_shift_ms=40.0)


def test_cut_and_zero_and_quilt_stimuli():
    sr = 4000
    x = _signal(10 * sr, sr, 5, n_clips=2) + 0.5
    cz = cut_and_zero(x, sr)
    assert cz.shape == (2, 10 * sr)
    np.testing.assert_array_equal(cz[:, : 8 * sr], x[:, : 8 * sr])
    assert np.all(cz[:, 8 * sr:] == 0)
    stim = quilt_stimuli(x, sr, seg_ms=KIM_SEG_MS, seed=1)
    np.testing.assert_array_equal(stim["original"], cz)
    for ms in KIM_SEG_MS:
        a = stim[float(ms)]
        assert a.shape == (2, 10 * sr)
        assert np.all(a[:, 8 * sr:] == 0)                        # 8 s is whole segments for every size
        assert np.all(np.abs(a[:, : 8 * sr - 200]).max(axis=1) > 0)
        assert stim["quilts"][float(ms)].order.shape[1] == round(8000 / ms)


def test_benchmark_reports_ratio_and_agreement():
    r = benchmark_quilting(n_clips=2, sr=8000, clip_s=2.0, seg_ms=(50.0, 200.0), n_reference_clips=1, n_oracle_clips=1, repeats=1)
    assert r["ms_per_clip_fast"] > 0 and r["ms_per_clip_reference"] > 0
    assert r["speedup"] == pytest.approx(r["ms_per_clip_reference"] / r["ms_per_clip_fast"])
    assert r["speedup_vs_oracle"] == pytest.approx(r["ms_per_clip_reference_oracle"] / r["ms_per_clip_fast"])
    assert r["timer"] == "process_time" and set(r["wall_ms_per_clip"]) == {"fast", "reference", "oracle"}
    assert r["n_reference_clips"] == 1 and r["n_oracle_clips"] == 1
    # the kernel's user / system split of a few milliseconds can put all of it on one side: either
    # part may read 0 (in about 1 run in 15 at this size), and a ratio over 0 is NaN, not an error
    user = r["user_ms_per_clip"]
    if user["fast"] > 0:
        assert r["speedup_user"] == pytest.approx(user["reference"] / user["fast"])
    else:
        assert np.isnan(r["speedup_user"])
    for k in ("fast", "reference", "oracle"):
        assert r["sys_ms_per_clip"][k] >= 0 and user[k] >= 0
        assert user[k] + r["sys_ms_per_clip"][k] > 0
    assert r["agreement"]["order"] == 1.0
    assert r["agreement"]["lean_order"] == 1.0 and r["agreement"]["lean_shifts"] == 1.0


def test_speed_ratios_over_a_time_below_the_clock_resolution_are_nan():
    from stimuli.quilting import _ratio
    assert _ratio(6.0, 2.0) == 3.0 and np.isnan(_ratio(6.0, 0.0))


def test_all_sizes_at_once_equals_one_size_at_a_time():
    from stimuli.quilting import quilt_multi
    sr = 8000
    x = _signal(3 * sr, sr, 13, n_clips=2)
    sizes = (50.0, 125.0, 400.0, 3000.0)
    multi = quilt_multi(x, sr, sizes, "overath", seed=6)
    for ms in sizes:
        one = quilt_batch(x, sr, ms, "overath", seed=6)
        np.testing.assert_array_equal(multi[ms].order, one.order)
        np.testing.assert_array_equal(multi[ms].shifts_samples, one.shifts_samples)
        np.testing.assert_array_equal(multi[ms].audio, one.audio)


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_lean_reference_equals_the_oracle(ordering):
    from stimuli.quilting import reference_quilt_lean
    sr = 8000
    x = _signal(3 * sr, sr, 17)[0]
    for ms, extra in [(50.0, {}), (125.0, {}), (400.0, {"max_shift_ms": 0.0}), (3000.0, {})]:
        ref = reference_quilt_numpy(x, sr, ms, ordering, seed=3, clip_index=1, **extra)
        lean = reference_quilt_lean(x, sr, ms, ordering, seed=3, clip_index=1, **extra)
        np.testing.assert_array_equal(lean.order, ref.order)
        np.testing.assert_array_equal(lean.shifts_samples, ref.shifts_samples)
        np.testing.assert_allclose(lean.audio, ref.audio, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunking_does_not_change_the_result(monkeypatch, dtype):
    """Tiny working buffers force many feature chunks and one head block per step: same quilts."""
    import stimuli.quilting as Q
    sr = 8000
    x = _signal(3 * sr, sr, 19, n_clips=3)
    sizes = (50.0, 100.0, 400.0)
    big = Q.quilt_multi(x, sr, sizes, "kim2024", seed=2, dtype=dtype)
    monkeypatch.setattr(Q, "_CHUNK_ELEMENTS", 1)
    small = Q.quilt_multi(x, sr, sizes, "kim2024", seed=2, dtype=dtype)
    for ms in sizes:
        np.testing.assert_array_equal(small[ms].order, big[ms].order)
        np.testing.assert_array_equal(small[ms].shifts_samples, big[ms].shifts_samples)
        np.testing.assert_array_equal(small[ms].audio, big[ms].audio)


def test_mirror_pad_matches_reflect_index():
    from stimuli.quilting import _mirror_pad
    x = torch.arange(2 * 11, dtype=torch.float64).reshape(2, 11)
    for pad in (0, 1, 5, 10, 11, 30):
        np.testing.assert_array_equal(_mirror_pad(x, pad).numpy(), x.numpy()[:, reflect_index(11, pad)])


def test_fast_path_matches_the_oracle_for_all_six_sizes():
    from stimuli.quilting import quilt_multi
    sr = 4000
    x = _signal(10 * sr, sr, 23, n_clips=2)
    multi = quilt_multi(x, sr, KIM_SEG_MS, "kim2024", seed=8, dtype=torch.float64)
    for ms in KIM_SEG_MS:
        for i in range(2):
            ref = reference_quilt_numpy(x[i], sr, ms, "kim2024", seed=8, clip_index=i)
            np.testing.assert_array_equal(multi[ms].order[i], ref.order)
            np.testing.assert_array_equal(multi[ms].shifts_samples[i], ref.shifts_samples)
            np.testing.assert_allclose(multi[ms].audio[i], ref.audio, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows", [1, 16, 37])
def test_real_fft_matches_torch_fft_bit_for_bit(dtype, rows):
    """_RealFFT (cached MKL descriptors where available) gives exactly torch.fft's numbers."""
    from stimuli.quilting import _RealFFT
    n = 1152
    fft = _RealFFT(n, dtype, torch.device("cpu"))
    x = torch.randn((rows, n), dtype=dtype, generator=torch.Generator().manual_seed(rows))
    x[:, 551:] = 0
    spec = torch.empty((rows, n // 2 + 1), dtype=torch.fft.rfft(x[:1]).dtype)
    for _ in range(2):                                   # a new descriptor, then the cached one
        assert torch.equal(fft.rfft(x, out=spec), torch.fft.rfft(x))
    y = spec * torch.fft.rfft(torch.randn((rows, n), dtype=dtype)).conj()
    want = torch.fft.irfft(y, n=n)
    out = torch.empty((rows, n), dtype=dtype)
    assert torch.equal(fft.irfft(y.clone(), out=out), want)
    assert torch.equal(fft.irfft(y.clone(), out=out), want)


def test_real_fft_bound_transforms_outlive_the_descriptor_cache_and_follow_the_thread_count():
    import gc
    from stimuli.quilting import _DFTI_PLANS, _RealFFT
    n, rows = 1152, 8
    x = torch.randn(rows, n)
    spec, back = torch.empty(rows, n // 2 + 1, dtype=torch.complex64), torch.empty(rows, n)
    fft = _RealFFT(n, torch.float32, torch.device("cpu"))
    forward, backward = fft.bind(x, spec), fft.bind(spec, back, False)
    _DFTI_PLANS.__dict__.get("plans", {}).clear()        # the bound functions keep their descriptors
    del fft
    gc.collect()
    forward()
    assert torch.equal(spec, torch.fft.rfft(x))
    want = torch.fft.irfft(spec, n=n)
    backward()
    assert torch.equal(back, want)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)                         # a new descriptor, checked again
        fft = _RealFFT(n, torch.float32, torch.device("cpu"))
        assert torch.equal(fft.rfft(x, out=spec), torch.fft.rfft(x))
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError):
        _RealFFT(n, torch.float32, torch.device("cpu")).rfft(x[:, :-1], out=spec)


def test_real_fft_falls_back_to_torch_fft():
    from stimuli.quilting import _RealFFT
    fft = _RealFFT(96, torch.float32, torch.device("cpu"))
    fft.direct = False                                   # as on other devices or without MKL
    x = torch.randn(3, 96)
    out = torch.empty(3, 49, dtype=torch.complex64)
    assert torch.equal(fft.rfft(x, out=out), torch.fft.rfft(x))
    assert torch.equal(fft.irfft(out.clone(), out=torch.empty(3, 96)), torch.fft.irfft(out, n=96))


# ---------------------------------------------------------------------------- one clip per call
def _compiled_path_or_skip():
    """The one-clip kernels, or a skip where this environment lacks numba or MKL's FFTs."""
    import stimuli.quilting as Q
    pytest.importorskip("numba")
    if Q._dfti_library() is None or Q._one_clip_kernels() is None:
        pytest.skip("no MKL DFTI descriptors or kernels: quilt() is the batched path here")
    return Q


def _same_quilt(a, b):
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.shifts_samples, b.shifts_samples)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.audio.dtype == b.audio.dtype == np.float32
    assert (a.seg_samples, a.max_shift_samples, a.fade_samples) == (b.seg_samples, b.max_shift_samples, b.fade_samples)


@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_clip_path_equals_the_batched_path_bit_for_bit(ordering, dtype):
    """quilt() (compiled kernels) gives quilt_batch(x[None])[0] exactly, and each clip's row of a batch."""
    Q = _compiled_path_or_skip()
    sr = 8000
    x = _signal(3 * sr, sr, 29, n_clips=2)
    for ms in (50.0, 125.0, 400.0, 1600.0):
        batch = quilt_batch(x, sr, ms, ordering, seed=7, dtype=dtype)
        for i in range(2):
            one = Q._quilt_one(x[i], sr, ms, ordering, 7, "cpu", dtype, {})
            assert one is not None                                  # the compiled path, not the fallback
            _same_quilt(one, quilt_batch(x[i][None], sr, ms, ordering, seed=7, dtype=dtype)[0])
        # clip i of a batch draws its start from default_rng([seed, i]): clip 0 is quilt()'s
        _same_quilt(quilt(x[0], sr, ms, ordering, seed=7, dtype=dtype), batch[0])


def test_one_clip_path_at_the_kim_settings():
    """A 10-s clip at 22,050 Hz, all six sizes: the per-call benchmark's case."""
    _compiled_path_or_skip()
    sr = 22050
    x = _signal(10 * sr, sr, 31)[0]
    for ms in KIM_SEG_MS:
        _same_quilt(quilt(x, sr, ms, seed=3), quilt_batch(x[None], sr, ms, seed=3)[0])


@pytest.mark.parametrize("case", ["silent middle", "all zero", "no shifts", "no fades", "odd length",
                                  "float64 input", "torch input", "other features"])
def test_one_clip_path_edge_cases(case):
    """Silent heads (the 0 norm), no shift search or no fades, mirror reads at both ends of an odd
    length, other input types and feature settings: still the batched path's quilt."""
    _compiled_path_or_skip()
    sr = 8000
    x, params = _signal(3 * sr, sr, 37)[0], {}
    if case == "silent middle":
        x[sr: 2 * sr] = 0
    elif case == "all zero":
        x = np.zeros(2 * sr, np.float32)
    elif case == "no shifts":
        params = {"max_shift_ms": 0.0}
    elif case == "no fades":
        params = {"fade_ms": 0.0}
    elif case == "odd length":
        x = x[: 2 * sr + 777]
    elif case == "float64 input":
        x = x.astype(np.float64) * (1 + 1e-9)
    elif case == "torch input":
        x = torch.from_numpy(x)
    elif case == "other features":
        params = {"border_ms": 10.0, "n_mels": 16, "win_ms": 8.0, "hop_ms": 5.0}
    for ordering in ORDERINGS:
        for ms in (50.0, 250.0):
            _same_quilt(quilt(x, sr, ms, ordering, seed=4, **params),
                        quilt_batch(x[None], sr, ms, ordering, seed=4, **params)[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sr=st.sampled_from([4000, 8000, 11025]), seg_ms=st.sampled_from([50.0, 80.0, 125.0, 300.0]),
       n_seg=st.integers(1, 14), extra=st.integers(0, 150), ordering=st.sampled_from(ORDERINGS),
       seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_one_clip_path_equals_the_batched_path_property(sr, seg_ms, n_seg, extra, ordering, seed, dtype):
    pytest.importorskip("numba")
    p0 = quilt_params(10**6, sr, seg_ms, ordering)
    x = _signal(n_seg * p0.seg_samples + min(extra, p0.seg_samples - 1), sr, seed % 1000)[0]
    _same_quilt(quilt(x, sr, seg_ms, ordering, seed=seed, dtype=dtype),
                quilt_batch(x[None], sr, seg_ms, ordering, seed=seed, dtype=dtype)[0])


def test_one_clip_fallback_without_numba_gives_the_same_quilt(monkeypatch):
    """With the compiled path switched off (as without numba), quilt() is the batched path: same quilt."""
    import stimuli.quilting as Q
    sr = 8000
    x = _signal(2 * sr, sr, 41)[0]
    compiled = {ms: quilt(x, sr, ms, "overath", seed=1) for ms in (50.0, 200.0)}
    monkeypatch.setitem(Q._NUMBA, "ok", False)
    assert Q._one_clip_kernels() is None and Q._quilt_one(x, sr, 50.0, "overath", 1, "cpu", torch.float32, {}) is None
    calls = []
    batch = Q.quilt_batch
    monkeypatch.setattr(Q, "quilt_batch", lambda *a, **k: calls.append(1) or batch(*a, **k))
    for ms, q in compiled.items():
        _same_quilt(quilt(x, sr, ms, "overath", seed=1), q)
    assert len(calls) == 2                                           # the fallback ran


def test_one_clip_path_does_not_run_off_the_cpu_or_in_half_precision():
    import stimuli.quilting as Q
    x = _signal(8000, 8000, 43)[0]
    assert Q._quilt_one(x, 8000, 100.0, "kim2024", 0, "meta", torch.float32, {}) is None
    assert Q._quilt_one(x, 8000, 100.0, "kim2024", 0, "cpu", torch.float16, {}) is None
    with pytest.raises(UserError, match="floating point"):
        quilt(np.zeros(8000, np.int16), 8000, 100.0)


def test_per_call_benchmark_reports_the_fields_of_its_rows():
    from stimuli.quilting import benchmark_quilt_per_call
    r = benchmark_quilt_per_call(sr=8000, clip_s=2.0, seg_ms=(50.0, 200.0), repeats=1)
    assert r["ms_per_clip"] > 0 and r["ms_per_clip_reference"] > 0
    assert r["speedup"] == pytest.approx(r["ms_per_clip_reference"] / r["ms_per_clip"])
    assert set(r["ms_per_call"]) == set(r["ms_per_call_reference"]) == {50.0, 200.0}
    assert r["ms_per_clip"] == pytest.approx(sum(r["ms_per_call"].values()))
    assert r["timer"] == "process_time" and set(r["wall_ms_per_clip"]) == {"quilt", "reference"}
    assert r["warmup_s"] >= 0 and r["repeats"] == 1 and len(r["ms_per_repeat"]) == 1
    assert r["path"] in ("compiled", "torch") and r["identical_to_batch"] == 1.0
    assert set(r["user_ms_per_clip"]) == set(r["sys_ms_per_clip"]) == {"quilt", "reference"}
    assert r["speedup_user"] > 0 or np.isnan(r["speedup_user"])


def test_bench_rows_show_the_per_call_row_beside_the_batched_row(monkeypatch):
    import bench.rows as R
    import stimuli.quilting as Q
    small = dict(sr=8000, clip_s=2.0, seg_ms=(50.0, 200.0))
    batched, per_call = Q.benchmark_quilting, Q.benchmark_quilt_per_call
    monkeypatch.setattr(Q, "benchmark_quilting", lambda **k: batched(n_clips=2, n_reference_clips=1, n_oracle_clips=1,
                                                                      repeats=1, **small))
    monkeypatch.setattr(Q, "benchmark_quilt_per_call", lambda **k: per_call(repeats=1, **small))
    rows = R.bench_quilting()
    what = [r["what"] for r in rows]
    assert what[0].endswith("(batched)") and what[1].startswith("quilting, one clip per call (quilt())")
    speedup = rows[what.index("quilting speed-up per call (quilt() over the lean reference)")]
    assert speedup["target"] == "≥ 10" and isinstance(speedup["ok"], bool)
    assert all(R.format_row(r) for r in rows)


@pytest.mark.parametrize("chunk", [1, 16 * 432 * 5])
def test_one_clip_path_with_several_blocks_of_heads(monkeypatch, chunk):
    """Small working buffers: heads transformed one boundary, or five, at a time (with a remainder
    block), in both paths: the same quilts."""
    import stimuli.quilting as Q
    _compiled_path_or_skip()
    monkeypatch.setattr(Q, "_CHUNK_ELEMENTS", chunk)
    sr = 8000
    x = _signal(2 * sr, sr, 47)[0]
    for ordering in ORDERINGS:
        for ms in (50.0, 125.0):
            _same_quilt(quilt(x, sr, ms, ordering, seed=6), quilt_batch(x[None], sr, ms, ordering, seed=6)[0])


@pytest.mark.parametrize("frame_chunk", [1, 7, 10**6])
def test_one_clip_path_frames_in_chunks_or_at_once(monkeypatch, frame_chunk):
    """The border frames transformed a chunk at a time (the last one shorter) or all at once: the
    batched path's features (which transforms all frames at once), so the same quilts."""
    import stimuli.quilting as Q
    _compiled_path_or_skip()
    monkeypatch.setattr(Q, "_FRAME_CHUNK", frame_chunk)
    sr = 8000
    x = _signal(2 * sr, sr, 53)[0]
    for ordering in ORDERINGS:
        _same_quilt(quilt(x, sr, 50.0, ordering, seed=8), quilt_batch(x[None], sr, 50.0, ordering, seed=8)[0])
    assert Q._chunks_match(Q.fft_size(Q.quilt_params(len(x), sr, 50.0).win_samples), torch.float32, 160, 7)
