"""The content-addressed cache: keys, atomicity, corruption, SIGKILL, concurrent builders."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from harness.cache import MANIFEST, Cache, default_cache_root


def test_key_depends_on_config_version_and_namespace(tmp_path):
    c = Cache(tmp_path)
    k = c.key("model", {"seed": 0, "data": "abc"}, "v1")
    assert k == c.key("model", {"data": "abc", "seed": 0}, "v1")  # order-free
    assert k != c.key("model", {"seed": 1, "data": "abc"}, "v1")
    assert k != c.key("model", {"seed": 0, "data": "abd"}, "v1")
    assert k != c.key("model", {"seed": 0, "data": "abc"}, "v2")
    assert k != c.key("corpus", {"seed": 0, "data": "abc"}, "v1")


def test_second_request_is_a_hit_and_builds_nothing(tmp_path):
    c = Cache(tmp_path)
    calls = []
    build = lambda: calls.append(1) or {"x": np.arange(5.0)}
    a = c.arrays("feat", {"n": 5}, build, version="1")
    b = Cache(tmp_path).arrays("feat", {"n": 5}, build, version="1")
    assert calls == [1]
    np.testing.assert_array_equal(a["x"], b["x"])
    assert c.misses == 1 and c.hits == 0


def test_corrupted_entry_is_detected_and_rebuilt(tmp_path):
    c = Cache(tmp_path)
    obj = c.pickle("model", {"seed": 0}, lambda: {"w": [1, 2, 3]}, version="1")
    entry = c.path("model", {"seed": 0}, "1")
    with open(entry / "object.pt", "r+b") as f:  # flip bytes, same size
        f.seek(10)
        f.write(b"\x00\x01\x02")
    c2 = Cache(tmp_path)
    assert c2.pickle("model", {"seed": 0}, lambda: {"w": [1, 2, 3]}, version="1") == obj
    assert c2.events[-1].outcome == "rebuilt"


def test_truncated_entry_is_rebuilt(tmp_path):
    c = Cache(tmp_path)
    c.arrays("feat", {"n": 3}, lambda: {"x": np.ones(1000)}, version="1")
    entry = c.path("feat", {"n": 3}, "1")
    with open(entry / "x.npy", "r+b") as f:
        f.truncate(100)
    c2 = Cache(tmp_path, verify="size")
    assert c2.arrays("feat", {"n": 3}, lambda: {"x": np.ones(1000)}, version="1")["x"].shape == (1000,)
    assert c2.misses == 1


def test_a_failing_builder_leaves_nothing(tmp_path):
    c = Cache(tmp_path)

    def boom(_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        c.directory("x", {}, boom, version="1")
    assert not any(p.name.startswith(".") and "tmp" in p.name for p in (tmp_path / "x").iterdir())
    assert not c.path("x", {}, "1").exists()


KILLED_BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from harness.cache import Cache
    def build(tmp):
        (tmp / "half.bin").write_bytes(b"x" * 1000)
        Path(sys.argv[2]).write_text("started")
        time.sleep(60)
    Cache(sys.argv[1]).directory("model", {"seed": 0}, build, version="1")
""")


def test_sigkill_mid_build_leaves_no_entry_and_the_next_run_completes(tmp_path):
    flag = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILDER, str(tmp_path / "cache"), str(flag)])
    deadline = time.time() + 120
    while not flag.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert flag.exists(), "builder never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    c = Cache(tmp_path / "cache")
    entry = c.path("model", {"seed": 0}, "1")
    assert not entry.exists()
    path = c.directory("model", {"seed": 0}, lambda tmp: (tmp / "ok.bin").write_bytes(b"ok"), version="1")
    assert (path / "ok.bin").read_bytes() == b"ok" and (path / MANIFEST).exists()
    assert not list((tmp_path / "cache" / "model").glob(".*.tmp-*"))  # the killed builder's debris is gone


def _worker(root, counter):
    def build(tmp):
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(0.5)
        (tmp / "v.txt").write_text("value")

    path = Cache(root).directory("shared", {"k": 1}, build, version="1")
    return (path / "v.txt").read_text()


def test_concurrent_workers_build_once(tmp_path):
    counter = tmp_path / "count.txt"
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        out = pool.starmap(_worker, [(str(tmp_path / "c"), str(counter))] * 3)
    assert out == ["value"] * 3
    assert counter.read_text().count("built") == 1


def test_default_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MEC_CACHE_DIR", str(tmp_path / "a"))
    assert default_cache_root() == tmp_path / "a"
    monkeypatch.delenv("MEC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "music-emergence-claims"


def test_busy_is_true_only_while_another_process_builds(tmp_path):
    cache = Cache(tmp_path)
    cfg = {"a": 1}
    assert not cache.busy("ns", cfg, version="v1")
    lock = tmp_path / "ns" / f".{cache.key('ns', cfg, 'v1')}.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from filelock import FileLock
        with FileLock({str(lock)!r}):
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cache.busy("ns", cfg, version="v1")
        assert not cache.busy("ns", {"a": 2}, version="v1")  # another entry is free
    finally:
        holder.communicate("\n", timeout=30)
    assert not cache.busy("ns", cfg, version="v1")
    cache.json("ns", cfg, lambda: 1, version="v1")
    assert not cache.busy("ns", cfg, version="v1")  # built: nothing to wait for


def test_cooperative_order_rotates_and_skips_busy_entries():
    """Two workers starting the same list start at different items; a busy item is taken last;
    every item comes exactly once; all busy -> the first (its lock then waits)."""
    from harness.cache import cooperative_order

    assert list(cooperative_order([0, 1, 2], lambda s: False)) == [0, 1, 2]
    assert list(cooperative_order([0, 1, 2], lambda s: False, start=1)) == [1, 2, 0]
    assert list(cooperative_order([0, 1, 2], lambda s: False, start=4)) == [1, 2, 0]
    assert list(cooperative_order([0, 1, 2], lambda s: s == 0)) == [1, 2, 0]
    assert list(cooperative_order([0, 1], lambda s: True)) == [0, 1]
    assert list(cooperative_order([], lambda s: True, start=3)) == []
    built = set()
    order = []
    for s in cooperative_order([0, 1, 2], lambda s: s not in built and s == 1):   # 1 busy until 0 is built
        order.append(s)
        built.add(s)
    assert order == [0, 2, 1]
