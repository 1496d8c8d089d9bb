"""Compiled (numba) kernels of :func:`stimuli.quilting.quilt`, the one-clip path.

One clip at one size is a few thousand small operations: per segment a few border frames, per
step of the greedy ordering an arg-min over the unused segments, per boundary a head and a
continuation, two small FFTs, a spectrum product and an arg-max over ``2 S + 1`` shifts. As torch
calls each of them costs microseconds of dispatch and temporaries; here each stage is one compiled
loop over the samples, reading the clip's mirror image where it needs samples beyond its ends
(:func:`_mirror`) instead of building a padded copy.

The numbers are those of the batched torch path (:func:`stimuli.quilting.quilt_batch`), bit for bit:

* the FFTs run on the same committed MKL DFTI descriptors (:class:`stimuli.quilting._RealFFT`,
  the same lengths and numbers of rows), called through their function addresses
  (:func:`_dfti_compute`);
* every other operation here is one that rounds the same in both: copies, products, sums and
  differences of two numbers, ``1 / sqrt``, the running sum of the squared heads in double
  (torch's CPU ``cumsum`` keeps it in double), the spectrum product with each product rounded (as
  torch's vector loop; :func:`stimuli.quilting._padded_product` keeps the batched path in it),
  ``torch.lerp`` as its fused multiply-add (:func:`lerp`), and arg-min / arg-max that keep the
  first extreme and let a NaN win, as numpy's;
* what would round differently (the mel matrix product, ``log10``, ``cdist``) stays in torch, called
  by :mod:`stimuli.quilting` on the same shapes as the batched path.

:mod:`stimuli.quilting` checks the product and the lerp against torch once per process before
using this path. The kernels are compiled on first use and cached on disk (``cache=True``: in
``__pycache__`` beside this file, or under ``NUMBA_CACHE_DIR``), so a later process loads them
(about a second) instead of compiling them again (tens of seconds). Importing this module imports
numba; :mod:`stimuli.quilting` does so only at the first one-clip quilt and falls back to the
torch path without numba.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: Returned by :func:`shift_search` when a DFTI compute call fails (no valid shift is this low).
DFTI_FAILED = -(1 << 62)


@intrinsic
def _dfti_compute(typingctx, fn, handle, src, dst):
    """``fn(handle, src, dst)`` for the address ``fn`` of MKL's ``DftiComputeForward`` or
    ``DftiComputeBackward`` (declared ``MKL_LONG f(DFTI_DESCRIPTOR_HANDLE, void *, ...)``); all
    arguments are addresses (intp) and the status is returned. The function's address is an
    argument, not a constant of the code, so the compiled code can be cached on disk."""
    sig = types.int64(types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        fn_addr, h, x, y = args
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(64), [i8p, i8p], var_arg=True)   # variadic, as declared
        f = builder.inttoptr(fn_addr, fnty.as_pointer())
        return builder.call(f, [builder.inttoptr(h, i8p), builder.inttoptr(x, i8p), builder.inttoptr(y, i8p)])
    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma``), in the type of ``a``."""
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        f = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(f, args)
    return sig, codegen


@njit(inline="always")
def _mirror(i, n):
    """Source index of sample ``i`` of the mirror extension of an ``n``-sample clip (about its first
    and last samples, repeating): :func:`stimuli.quilting.reflect_index` for one index."""
    if 0 <= i < n:
        return i
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = abs(i) % period
    return period - i if i >= n else i


@njit(inline="always")
def _read(x, at, out):
    """``out[:] = x[at : at + len(out)]``, through the mirror image where that reaches beyond ``x``."""
    n, m = x.shape[0], out.shape[0]
    if 0 <= at and at + m <= n:
        for i in range(m):
            out[i] = x[at + i]
    else:
        for i in range(m):
            out[i] = x[_mirror(at + i, n)]


@njit(inline="always")
def _lerp(start, end, weight, one):
    """``torch.lerp(start, end, weight)`` as torch computes it on the CPU: ``weight * (end - start) +
    start`` for ``|weight| < 0.5``, else ``(weight - 1) * (end - start) + end``, each one fused
    multiply-add (``one``: 1 in the arrays' precision)."""
    small = abs(weight) < 0.5                                # (selects, not branches: the loop vectorises)
    return _fma(weight if small else weight - one, end - start, start if small else end)


@njit(cache=True, nogil=True)
def lerp(start, end, weight, out):
    """``out = torch.lerp(start, end, weight)`` elementwise (1-D arrays; for the first-use check)."""
    one = out.dtype.type(1.0)
    for i in range(out.shape[0]):
        out[i] = _lerp(start[i], end[i], weight[i], one)


@njit(cache=True, nogil=True)
def complex_product(a, b, out):
    """``out = a * b`` for complex arrays viewed as interleaved (real, imag) pairs, each product
    rounded: ``(ar br - ai bi, ar bi + ai br)``, as :func:`shift_search` (for the first-use check)."""
    for k in range(a.shape[0] // 2):
        ar, ai, br, bi = a[2 * k], a[2 * k + 1], b[2 * k], b[2 * k + 1]
        out[2 * k] = ar * br - ai * bi
        out[2 * k + 1] = ar * bi + ai * br


@njit(cache=True, nogil=True)
def border_power(x, row_starts, window, frames, spectra, power, lo, fwd_fn, chunk_plan, last_plan):
    """Power spectra of the border frames of one clip, bins ``lo : lo + power.shape[1]``.

    Frame ``r`` is ``x[row_starts[r] :][:win] * window``, zero-padded to n_fft. The frames are
    windowed and transformed ``chunk = frames.shape[0]`` at a time (so that the frames and their
    spectra stay in a core's cache), by one DFTI call per chunk (descriptor ``chunk_plan``,
    ``last_plan`` for a shorter last chunk) into ``spectra`` (interleaved pairs), then ``power[r] =
    re * re + im * im``. Returns the DFTI status (0: success)."""
    # (the loops run over 1-D views of rows: numba's 2-D indexing keeps LLVM from vectorising them)
    win, n_fft, n_bins = window.shape[0], frames.shape[1], power.shape[1]
    n_rows, chunk = row_starts.shape[0], frames.shape[0]
    for r0 in range(0, n_rows, chunk):
        rows = min(chunk, n_rows - r0)
        for r in range(rows):
            row, at = frames[r], row_starts[r0 + r]
            xs = x[at: at + win]
            for i in range(win):
                row[i] = xs[i] * window[i]
            for i in range(win, n_fft):
                row[i] = 0
        status = _dfti_compute(fwd_fn, chunk_plan if rows == chunk else last_plan, frames.ctypes.data,
                               spectra.ctypes.data)
        if status != 0:
            return status
        for r in range(rows):
            sp, pw = spectra[r, 2 * lo: 2 * (lo + n_bins)], power[r0 + r]
            for b in range(n_bins):
                re, im = sp[2 * b], sp[2 * b + 1]
                pw[b] = re * re + im * im
    return 0


@njit(cache=True, nogil=True)
def border_features(logmel, table, scale, overath, left, right, target):
    """Border features and ordering targets of one clip from its frames' ``log10(mel + 1e-10)``.

    ``logmel`` (n_rows, n_mels) is scaled by ``scale`` (10: dB) and gathered: segment ``k``'s left
    border is frames ``table[0, k, :]`` end to end, its right border frames ``table[1, k, :]``
    (``left``, ``right``: (n_seg, border_frames * n_mels)). ``target[i] = left[i + 1] - right[i]``,
    the change across the source's own boundary (for the last segment ``left[i] - right[i - 1]``).
    With ``overath``, ``right`` becomes ``right + target`` (its ordering cost is the distance from
    that to ``left``)."""
    n_seg, n_frames = table.shape[1], table.shape[2]
    n_mels = logmel.shape[1]
    for side in range(2):
        out = left if side == 0 else right
        for k in range(n_seg):
            o = out[k]
            for f in range(n_frames):
                src = logmel[table[side, k, f]]
                for m in range(n_mels):
                    o[f * n_mels + m] = src[m] * scale
    n_feat = left.shape[1]
    for i in range(n_seg):
        nxt = i + 1 if i + 1 < n_seg else n_seg - 1
        prv = i if i + 1 < n_seg else n_seg - 2
        t, a, b = target[i], left[nxt], right[prv]
        for d in range(n_feat):
            t[d] = a[d] - b[d]
    if overath:
        for i in range(n_seg):
            t, o = target[i], right[i]
            for d in range(n_feat):
                o[d] = o[d] + t[d]


@njit(cache=True, nogil=True)
def greedy_order(cost, offset, start, order):
    """The greedy walk of one clip, from segment ``start``, into ``order`` (n_seg,).

    The cost of segment j after segment i is ``cost[i, j]``, or ``|cost[i, j] - offset[i]|`` when
    ``offset`` has n_seg entries (Kim et al.'s: ``cost`` holds ``||d(i, j)||`` and ``offset``
    ``||d(i, i + 1)||``). Each step appends the unused segment with the lowest cost after the
    current one, its original successor ``i + 1`` barred (+inf) but at the last step, which places
    the one unused segment. As the batched walk: a used segment costs ``cost + inf``, and the
    arg-min is numpy's (the first minimum; a NaN wins)."""
    n_seg = cost.shape[0]
    magnitude = offset.shape[0] == n_seg
    used = np.zeros(n_seg, dtype=np.bool_)
    inf = cost.dtype.type(np.inf)
    zero = cost.dtype.type(0.0)
    cur = start
    order[0] = cur
    used[cur] = True
    for q in range(1, n_seg):
        best_j = 0
        if q == n_seg - 1:                                   # the one unused segment
            for j in range(n_seg):
                if not used[j]:
                    best_j = j
                    break
        else:
            best = inf
            row = cost[cur]
            off = offset[cur] if magnitude else zero
            for j in range(n_seg):
                if j == cur + 1:
                    c = inf
                else:
                    c = abs(row[j] - off) if magnitude else row[j]
                    c = c + (inf if used[j] else zero)
                if c != c:                                   # NaN: numpy's argmin returns the first one
                    best_j = j
                    break
                if j == 0 or c < best:
                    best, best_j = c, j
        cur = best_j
        order[q] = cur
        used[cur] = True


@njit(cache=True, nogil=True)
def shift_search(x, order, seg, S, F, b0, b1, prev, pref, lag_pref, neg_lag_pref, tiny,
                 heads, head_spectra, energy, inv_norm, sums, u, spec, corr,
                 fwd_fn, bwd_fn, head_plan, step_fwd_plan, step_bwd_plan, shifts):
    """The shifts of boundaries ``b0 .. b1`` of one clip (boundary ``i`` joins slots ``i`` and
    ``i + 1``), in sequence from the previous boundary's shift ``prev``; returns the last shift
    (or :data:`DFTI_FAILED`) and writes ``shifts[i + 1]``.

    As the batched join does for a block of boundaries: the heads ``x[order[i + 1] * seg - S - F//2
    :][:2S + F]`` (mirror image beyond the clip) go to rows of ``heads`` (n_fft samples, zero
    beyond), with, per candidate shift, the energy over the ``F`` samples it would cross-fade
    (differences of the running sum of the squares, kept in double and stored in the clip's
    precision, as torch's ``cumsum``) and ``inv_norm = 1 / sqrt(energy)`` in preference order
    (``lag_pref``; 0 where the energy is at most ``tiny``, if any of the block's is). One DFTI call
    (``head_plan``, ``b1 - b0`` rows) transforms the heads, which are then conjugated. Then per
    boundary: the continuation ``x[(order[i] + 1) * seg + prev - F//2 :][:F]`` into ``u[:F]`` (the
    rest of its n_fft samples stays 0), ``spec = rfft(u)``, ``spec *= conj(H)``, ``corr =
    irfft(spec)`` (``step_fwd_plan`` / ``step_bwd_plan``: one row), and the shift
    ``pref[argmax_j corr[neg_lag_pref[j]] * inv_norm[i, j]]`` (the first maximum). Spectra are
    complex arrays viewed as interleaved (real, imag) pairs."""
    h = F // 2
    W = 2 * S + F
    n_fft = heads.shape[1]
    bins = spec.shape[0] // 2
    n_lags = lag_pref.shape[0]
    rows = b1 - b0
    if rows <= 0:
        return prev
    # heads, their per-shift energies, and whether any is (at most) silent
    # (the loops run over 1-D views of rows: numba's 2-D indexing keeps LLVM from vectorising them)
    for r in range(rows):
        row = heads[r]
        _read(x, order[b0 + r + 1] * seg - S - h, row[:W])
        for i in range(W, n_fft):
            row[i] = 0
    # running sums of the squares (each square rounded, the sum in double, each partial sum stored
    # in the clip's precision), eight heads at a time: eight independent chains of additions
    for r in range(0, rows, 8):
        last = rows - 1
        h0, h1, h2, h3 = heads[r], heads[min(r + 1, last)], heads[min(r + 2, last)], heads[min(r + 3, last)]
        h4, h5 = heads[min(r + 4, last)], heads[min(r + 5, last)]
        h6, h7 = heads[min(r + 6, last)], heads[min(r + 7, last)]
        s0, s1, s2, s3, s4, s5, s6, s7 = sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]
        s0[0] = s1[0] = s2[0] = s3[0] = s4[0] = s5[0] = s6[0] = s7[0] = 0
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for i in range(W):
            v0, v1, v2, v3, v4, v5, v6, v7 = h0[i], h1[i], h2[i], h3[i], h4[i], h5[i], h6[i], h7[i]
            a0 += v0 * v0
            a1 += v1 * v1
            a2 += v2 * v2
            a3 += v3 * v3
            a4 += v4 * v4
            a5 += v5 * v5
            a6 += v6 * v6
            a7 += v7 * v7
            s0[i + 1], s1[i + 1], s2[i + 1], s3[i + 1] = a0, a1, a2, a3
            s4[i + 1], s5[i + 1], s6[i + 1], s7[i + 1] = a4, a5, a6, a7
        for g in range(min(8, rows - r)):
            e, sg = energy[r + g], sums[g]
            for m in range(2 * S + 1):
                e[m] = sg[m + F] - sg[m]
    low, nan = False, False
    for r in range(rows):
        e = energy[r]
        for m in range(2 * S + 1):
            low |= e[m] <= tiny
            nan |= e[m] != e[m]
    low = low and not nan                                    # torch: bool(energy.amin() <= tiny)
    # 1 / sqrt(energy) (0 for a silent head if the block has one), then in preference order
    one, zero = energy.dtype.type(1.0), energy.dtype.type(0.0)
    for r in range(rows):
        e, inv = energy[r], inv_norm[r]
        if low:
            for m in range(2 * S + 1):
                e[m] = one / np.sqrt(e[m]) if e[m] > tiny else zero
        else:                                                # separate loops: each one vectorises
            for m in range(2 * S + 1):
                e[m] = np.sqrt(e[m])
            for m in range(2 * S + 1):
                e[m] = one / e[m]
        for j in range(n_lags):
            inv[j] = e[lag_pref[j]]
    if _dfti_compute(fwd_fn, head_plan, heads.ctypes.data, head_spectra.ctypes.data) != 0:
        return DFTI_FAILED
    for r in range(rows):
        hs = head_spectra[r]
        for k in range(bins):
            hs[2 * k + 1] = -hs[2 * k + 1]
    # the boundaries in sequence
    u_ptr, spec_ptr, corr_ptr = u.ctypes.data, spec.ctypes.data, corr.ctypes.data
    for r in range(rows):
        i = b0 + r
        _read(x, (order[i] + 1) * seg + prev - h, u[:F])
        if _dfti_compute(fwd_fn, step_fwd_plan, u_ptr, spec_ptr) != 0:
            return DFTI_FAILED
        hs, inv = head_spectra[r], inv_norm[r]
        for k in range(bins):
            ar, ai = spec[2 * k], spec[2 * k + 1]
            br, bi = hs[2 * k], hs[2 * k + 1]
            spec[2 * k] = ar * br - ai * bi
            spec[2 * k + 1] = ar * bi + ai * br
        if _dfti_compute(bwd_fn, step_bwd_plan, spec_ptr, corr_ptr) != 0:
            return DFTI_FAILED
        # the normalised correlations in preference order (into spec, free until the next
        # boundary), then their arg-max: the first maximum, or the first NaN as numpy's
        nan = False
        for j in range(n_lags):
            v = corr[neg_lag_pref[j]] * inv[j]
            spec[j] = v
            nan |= v != v
        best_j = 0
        if nan:
            while spec[best_j] == spec[best_j]:
                best_j += 1
        else:
            best = spec[0]
            for j in range(1, n_lags):
                if spec[j] > best:
                    best, best_j = spec[j], j
        prev = pref[best_j]
        shifts[i + 1] = prev
    return prev


@njit(cache=True, nogil=True)
def assemble(x, order, shifts, seg, F, weights, out):
    """The quilt of one clip into ``out`` (n_seg * seg): slot ``q`` plays ``x[order[q] * seg +
    shifts[q] + r]`` (mirror image beyond the clip), and output samples ``q * seg - F//2 + r``,
    ``r < F``, of each boundary mix the previous slot's continuation ``u`` into the new slot's head
    ``v`` as ``torch.lerp(u, v, weights[r])``. Computed in ``x``'s precision, stored in ``out``'s."""
    n = x.shape[0]
    n_seg = order.shape[0]
    h = F // 2
    one = weights.dtype.type(1.0)
    for q in range(n_seg):
        _read(x, order[q] * seg + shifts[q], out[q * seg: (q + 1) * seg])
    if F == 0:
        return
    for q in range(1, n_seg):
        ua = (order[q - 1] + 1) * seg + shifts[q - 1] - h
        vb = order[q] * seg + shifts[q] - h
        mixed = out[q * seg - h: q * seg - h + F]
        if 0 <= min(ua, vb) and max(ua, vb) + F <= n:
            for r in range(F):
                mixed[r] = _lerp(x[ua + r], x[vb + r], weights[r], one)
        else:
            for r in range(F):
                mixed[r] = _lerp(x[_mirror(ua + r, n)], x[_mirror(vb + r, n)], weights[r], one)


@njit(cache=True, nogil=True)
def order_join_assemble(cost, offset, start, x, seg, S, F, block_rows, head_plans, pref, lag_pref,
                        neg_lag_pref, tiny, heads, head_spectra, energy, inv_norm, sums, u, spec, corr,
                        fwd_fn, bwd_fn, step_fwd_plan, step_bwd_plan, weights, order, shifts, out):
    """One clip's quilt after its ordering costs: :func:`greedy_order` into ``order``, the shifts
    into ``shifts`` by :func:`shift_search` a block of ``block_rows`` boundaries at a time (the
    block starting at boundary ``b * block_rows`` transforms its heads with ``head_plans[b]``;
    none without shifts or fades), and :func:`assemble` into ``out``. Returns 0, or
    :data:`DFTI_FAILED`."""
    greedy_order(cost, offset, start, order)
    n_b = order.shape[0] - 1
    prev = 0
    for b in range(head_plans.shape[0]):
        b0 = b * block_rows
        b1 = min(n_b, b0 + block_rows)
        prev = shift_search(x, order, seg, S, F, b0, b1, prev, pref, lag_pref, neg_lag_pref, tiny,
                            heads, head_spectra, energy, inv_norm, sums, u, spec, corr,
                            fwd_fn, bwd_fn, head_plans[b], step_fwd_plan, step_bwd_plan, shifts)
        if prev == DFTI_FAILED:
            return DFTI_FAILED
    assemble(x, order, shifts, seg, F, weights, out)
    return 0
