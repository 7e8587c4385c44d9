"""The Triton kernels of the ``"triton"`` path (imported by :mod:`.triton_kan` on first use only).

Every kernel works on the *table* ``T`` ``(n_in, R, n_out)``, ``R = nb + 1``: row 0 of input
``i`` holds ``scale_base[:, i]``, row ``1 + m`` holds ``scale_spline[:, i] * coef[:, i, m]``;
outputs are the fastest dimension, so the row of one basis is one contiguous load. Per input the
kernels find the knot interval ``span`` of each sample (closed form on uniform grids, a binary
search over the knots otherwise), the ``k + 1`` live bases ``span - k + j`` by the local de Boor
triangle (and their derivatives; a zero knot difference, from repeated knots, gives a zero
term as in the reference), and touch those rows of ``T`` only:

* :func:`kan_forward_kernel`: ``y[n] = sum_i b(x_ni) T[i, 0] + sum_j B_j(x_ni) T[i, 1 + span - k + j]``;
  rows holding a NaN input come out NaN;
* :func:`kan_input_grad_kernel`: ``dL/dx[n, i] = <g[n], b'(x_ni) T[i, 0] + sum_j B'_j(x_ni) T[i, ...]>``;
* :func:`kan_table_grad_tile_kernel`: ``dL/dT`` without atomics: per block of samples the local
  bases are expanded into a ``(BLOCK_N, BLOCK_R)`` tile *in registers* and multiplied with the output
  gradient (``tl.dot``); each program writes its own partial sum (deterministic);
* :func:`kan_table_grad_scatter_kernel`: ``dL/dT`` by atomic adds of ``B_j g[n]`` into the ``k + 1``
  live rows (cost independent of the grid size; not bitwise reproducible).

No ``(N, n_in, nb)`` tensor exists anywhere. Sums run in the table's dtype (float32 for float16 /
bfloat16 inputs, else the input's). Float literals in the kernels are small integers, exact in any
precision (a literal like ``1 / 3`` would be rounded to float32 even in a float64 kernel).
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["kan_forward_kernel", "kan_input_grad_kernel", "kan_table_grad_tile_kernel",
           "kan_table_grad_scatter_kernel"]


@triton.jit
def _uniform_basis(x, knots, n_knots, K: tl.constexpr):
    """Closed form on a uniform grid: ``span`` from ``(x - t_0) / h``, then the blending weights at
    ``f = (x - t_span) / (t_span+1 - t_span)``: the knots of the span itself, so that ``f`` carries
    no rounding error of the distance to ``t_0`` (~ ``eps * span``, 1e-5 in float32 at G = 200)."""
    t0 = tl.load(knots).to(x.dtype)
    u = (x - t0) / (tl.load(knots + 1).to(x.dtype) - t0)  # in units of intervals
    top = (n_knots - 1).to(x.dtype)
    clamped = tl.minimum(tl.maximum(tl.where(u == u, u, -1.0), -1.0), top)  # NaN and +-inf: outside
    s = tl.floor(clamped)
    span = s.to(tl.int32)
    inside = (s >= 0) & (s < top)
    lo = tl.load(knots + span, mask=inside, other=0.0).to(x.dtype)
    inv_h = 1.0 / (tl.load(knots + span + 1, mask=inside, other=1.0).to(x.dtype) - lo)
    f = tl.where(inside, (x - lo) * inv_h, 0.0)  # finite everywhere (dead spans are masked later)
    w = (tl.full(x.shape, 1, x.dtype),)
    prev = w
    for p in tl.static_range(1, K + 1):  # w[j] at order p: basis span - p + j
        prev = w
        nxt = ()
        for j in tl.static_range(p + 1):
            term = tl.zeros(x.shape, x.dtype)
            if j >= 1:
                term += (f + (p - j)) * prev[j - 1]
            if j < p:
                term += ((j + 1) - f) * prev[j]
            nxt = nxt + (term / p,)
        w = nxt
    # uniform knots: B'_{m,k} = (B_{m,k-1} - B_{m+1,k-1}) / h, from the order k - 1 weights
    dw = ()
    for j in tl.static_range(K + 1):
        d = tl.zeros(x.shape, x.dtype)
        if j >= 1:
            d += prev[j - 1]
        if j < K:
            d -= prev[j]
        dw = dw + (d * inv_h,)
    return span, w, dw


@triton.jit
def _search_span(x, knots, n_knots, STEPS: tl.constexpr):
    """Knot interval holding ``x``: (number of knots <= x) - 1, by a branch-free binary search
    (``2 ** STEPS > n_knots``); -1 below the knots, ``n_knots - 1`` at or above the last, -1 for NaN."""
    pos = tl.zeros(x.shape, tl.int32)
    for s in tl.static_range(STEPS):
        cand = pos + (1 << (STEPS - 1 - s))
        inside = cand <= n_knots
        t = tl.load(knots - 1 + cand, mask=inside, other=0.0).to(x.dtype)
        pos = tl.where(inside & (t <= x), cand, pos)
    return pos - 1


@triton.jit
def _general_basis(x, knots, n_knots, K: tl.constexpr, STEPS: tl.constexpr):
    """Any non-decreasing grid: ``span`` by search, then the local de Boor triangle."""
    span = _search_span(x, knots, n_knots, STEPS)
    above = (n_knots - 1) - span  # knots above the span's left knot
    kn = ()  # kn[d + K - 1] = knot span + d, d = 1 - K .. K; 0 beyond the knot vector, where only
    for d in tl.static_range(2 * K):  # bases that do not exist use them (masked later)
        ok = (span >= K - 1 - d) & (above >= d + 1 - K)
        kn = kn + (tl.load(knots + span + (d + 1 - K), mask=ok, other=0.0).to(x.dtype),)
    inside = (span >= 0) & (above >= 1)
    xs = tl.where(inside, x, kn[K - 1])  # dead lanes (NaN, outside) compute finite junk, masked later
    left = (xs,)  # left[j] = x - t[span + 1 - j], right[j] = t[span + j] - x, j >= 1
    right = (xs,)
    for j in tl.static_range(1, K + 1):
        left = left + (xs - kn[K - j],)
        right = right + (kn[K - 1 + j] - xs,)
    w = (tl.full(x.shape, 1, x.dtype),)
    prev = w
    for j in tl.static_range(1, K + 1):
        prev = w
        saved = tl.zeros(x.shape, x.dtype)
        nxt = ()
        for r in tl.static_range(j):
            d = right[r + 1] + left[j - r]  # t[span + r + 1] - t[span + 1 - j + r]; 0 -> term 0
            temp = tl.where(d == 0, 0.0, prev[r] / tl.where(d == 0, 1.0, d))
            nxt = nxt + (saved + right[r + 1] * temp,)
            saved = left[j - r] * temp
        w = nxt + (saved,)
    # B'_m = k (B_{m,k-1} / (t_{m+k} - t_m) - B_{m+1,k-1} / (t_{m+k+1} - t_{m+1})), m = span - k + j
    dw = ()
    for j in tl.static_range(K + 1):
        d = tl.zeros(x.shape, x.dtype)
        if j >= 1:
            lower = kn[K - 1 + j] - kn[j - 1]
            d += tl.where(lower == 0, 0.0, prev[j - 1] / tl.where(lower == 0, 1.0, lower))
        if j < K:
            upper = kn[K + j] - kn[j]
            d -= tl.where(upper == 0, 0.0, prev[j] / tl.where(upper == 0, 1.0, upper))
        dw = dw + (d * K,)
    return span, w, dw


@triton.jit
def _local_basis(x, knots, n_knots, K: tl.constexpr, UNIFORM: tl.constexpr, STEPS: tl.constexpr):
    """``(span, w, dw, live)``: ``w[j]`` / ``dw[j]`` the value / derivative of basis ``span - K + j``,
    zero where that basis does not exist (``live[j]`` False: ``span - K + j`` outside ``[0, nb)``)."""
    if UNIFORM:
        span, w, dw = _uniform_basis(x, knots, n_knots, K)
    else:
        span, w, dw = _general_basis(x, knots, n_knots, K, STEPS)
    above = (n_knots - 1) - span  # (integer sums are few: the interpreter checks each for overflow)
    w_live = ()
    dw_live = ()
    live = ()
    for j in tl.static_range(K + 1):
        ok = (span >= K - j) & (above > j)  # 0 <= span - K + j < nb = n_knots - K - 1
        live = live + (ok,)
        w_live = w_live + (tl.where(ok, w[j], 0.0),)
        dw_live = dw_live + (tl.where(ok, dw[j], 0.0),)
    return span, w_live, dw_live, live


@triton.jit
def kan_forward_kernel(x_ptr, b_ptr, grid_ptr, t_ptr, y_ptr, n_rows, n_in, n_out, n_knots,
                       K: tl.constexpr, UNIFORM: tl.constexpr, STEPS: tl.constexpr,
                       BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
    """Programs ``(row blocks, output blocks)``; each loops over the inputs."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    row_ok = rows < n_rows
    col_ok = cols < n_out
    rows64 = rows.to(tl.int64)
    width = n_knots - K  # R = nb + 1
    acc = tl.zeros((BLOCK_N, BLOCK_O), t_ptr.dtype.element_ty)
    nan_row = rows < 0
    x_rows = x_ptr + rows64 * n_in
    b_rows = b_ptr + rows64 * n_in
    for i in range(n_in):
        xi = tl.load(x_rows + i, mask=row_ok, other=0.0).to(acc.dtype)
        bi = tl.load(b_rows + i, mask=row_ok, other=0.0)
        span, w, dw, live = _local_basis(xi, grid_ptr + i * n_knots, n_knots, K, UNIFORM, STEPS)
        table = t_ptr + i * (width * n_out)  # tables hold < 2 ** 31 entries
        acc += bi[:, None] * tl.load(table + cols, mask=col_ok, other=0.0)[None, :]
        row = table + cols[None, :] + ((span + (1 - K)) * n_out)[:, None]  # row 1 + span - K + j, j = 0
        for j in tl.static_range(K + 1):
            acc += w[j][:, None] * tl.load(row, mask=live[j][:, None] & col_ok[None, :], other=0.0)
            row += n_out
        nan_row = nan_row | (xi != xi)
    acc = tl.where(nan_row[:, None], float("nan"), acc)
    tl.store(y_ptr + rows64[:, None] * n_out + cols[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def kan_input_grad_kernel(x_ptr, db_ptr, grid_ptr, t_ptr, g_ptr, gx_ptr, n_rows, n_in, n_out, n_knots,
                          K: tl.constexpr, UNIFORM: tl.constexpr, STEPS: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    """Programs ``(row blocks, input blocks)``; ``gx`` (zeros, table dtype) accumulates over output blocks."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n_rows
    rows64 = rows.to(tl.int64)
    x_rows = x_ptr + rows64 * n_in
    db_rows = db_ptr + rows64 * n_in
    gx_rows = gx_ptr + rows64 * n_in
    width = n_knots - K
    for o0 in range(0, n_out, BLOCK_O):
        cols = o0 + tl.arange(0, BLOCK_O)
        col_ok = cols < n_out
        g = tl.load(g_ptr + rows64[:, None] * n_out + cols[None, :], mask=row_ok[:, None] & col_ok[None, :],
                    other=0.0).to(t_ptr.dtype.element_ty)
        for ii in range(BLOCK_I):
            i = tl.program_id(1) * BLOCK_I + ii
            ok_i = row_ok & (rows * 0 + i < n_in)  # (a block: the interpreter mis-types bool scalar & block)
            i = tl.minimum(i, n_in - 1)  # addresses stay inside for the masked tail
            xi = tl.load(x_rows + i, mask=ok_i, other=0.0).to(g.dtype)
            dbi = tl.load(db_rows + i, mask=ok_i, other=0.0)
            span, w, dw, live = _local_basis(xi, grid_ptr + i * n_knots, n_knots, K, UNIFORM, STEPS)
            table = t_ptr + i * (width * n_out)  # tables hold < 2 ** 31 entries
            # d y[n, :] / d x_ni, then one reduction against g
            dy = dbi[:, None] * tl.load(table + cols, mask=col_ok, other=0.0)[None, :]
            row = table + cols[None, :] + ((span + (1 - K)) * n_out)[:, None]
            for j in tl.static_range(K + 1):
                dy += dw[j][:, None] * tl.load(row, mask=live[j][:, None] & col_ok[None, :], other=0.0)
                row += n_out
            out = gx_rows + i
            tl.store(out, tl.load(out, mask=ok_i, other=0.0) + tl.sum(g * dy, axis=1), mask=ok_i)


@triton.jit
def kan_table_grad_tile_kernel(x_ptr, b_ptr, grid_ptr, g_ptr, part_ptr, n_rows, n_in, n_out, n_knots,
                               rows_per_program, n_chunks,
                               K: tl.constexpr, UNIFORM: tl.constexpr, STEPS: tl.constexpr,
                               BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr):
    """Programs ``(row ranges, inputs x row chunks of T, output blocks)``; writes
    ``part[p, i, r, o] = sum_{n in range p} A[n, i, r] g[n, o]`` for its ``BLOCK_R`` rows ``r`` of ``T``."""
    p = tl.program_id(0)
    i = tl.program_id(1) // n_chunks
    r = (tl.program_id(1) % n_chunks) * BLOCK_R + tl.arange(0, BLOCK_R)  # rows of T[i]
    cols = tl.program_id(2) * BLOCK_O + tl.arange(0, BLOCK_O)
    col_ok = cols < n_out
    width = n_knots - K
    acc = tl.zeros((BLOCK_R, BLOCK_O), part_ptr.dtype.element_ty)
    start = p * rows_per_program
    for n0 in range(0, rows_per_program, BLOCK_N):
        rows = start + n0 + tl.arange(0, BLOCK_N)
        row_ok = rows < n_rows
        rows64 = rows.to(tl.int64)
        xi = tl.load(x_ptr + rows64 * n_in + i, mask=row_ok, other=0.0).to(acc.dtype)
        bi = tl.load(b_ptr + rows64 * n_in + i, mask=row_ok, other=0.0)
        span, w, dw, live = _local_basis(xi, grid_ptr + i * n_knots, n_knots, K, UNIFORM, STEPS)
        a = tl.where(r[None, :] == 0, bi[:, None], 0.0)  # (BLOCK_N, BLOCK_R): the packed row, locally
        offset = r[None, :] - span[:, None]  # basis span - K + j sits in row 1 + span - K + j
        for j in tl.static_range(K + 1):
            a += tl.where(offset == 1 - K + j, w[j][:, None], 0.0)
        g = tl.load(g_ptr + rows64[:, None] * n_out + cols[None, :], mask=row_ok[:, None] & col_ok[None, :],
                    other=0.0).to(acc.dtype)
        acc += tl.dot(tl.trans(a), g, input_precision="ieee")
    base = (p * n_in + i) * (width * n_out)  # partial sums hold < 2 ** 31 entries
    tl.store(part_ptr + base + r[:, None] * n_out + cols[None, :], acc,
             mask=(r < width)[:, None] & col_ok[None, :])


@triton.jit
def kan_table_grad_scatter_kernel(x_ptr, b_ptr, grid_ptr, g_ptr, gt_ptr, n_rows, n_in, n_out, n_knots,
                                  K: tl.constexpr, UNIFORM: tl.constexpr, STEPS: tl.constexpr,
                                  BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    """Programs ``(row blocks, input blocks, output blocks)``; atomic adds into ``gt`` (zeros)."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(2) * BLOCK_O + tl.arange(0, BLOCK_O)
    row_ok = rows < n_rows
    col_ok = cols < n_out
    rows64 = rows.to(tl.int64)
    width = n_knots - K
    g = tl.load(g_ptr + rows64[:, None] * n_out + cols[None, :], mask=row_ok[:, None] & col_ok[None, :],
                other=0.0).to(gt_ptr.dtype.element_ty)
    x_rows = x_ptr + rows64 * n_in
    b_rows = b_ptr + rows64 * n_in
    for ii in range(BLOCK_I):
        i = tl.program_id(1) * BLOCK_I + ii
        ok_i = row_ok & (rows * 0 + i < n_in)  # (a block: the interpreter mis-types bool scalar & block)
        input_ok = cols * 0 + i < n_in
        i = tl.minimum(i, n_in - 1)
        xi = tl.load(x_rows + i, mask=ok_i, other=0.0).to(g.dtype)
        bi = tl.load(b_rows + i, mask=ok_i, other=0.0)
        span, w, dw, live = _local_basis(xi, grid_ptr + i * n_knots, n_knots, K, UNIFORM, STEPS)
        table = gt_ptr + i * (width * n_out)
        tl.atomic_add(table + cols, tl.sum(bi[:, None] * g, axis=0), mask=col_ok & input_ok, sem="relaxed")
        row = table + cols[None, :] + ((span + (1 - K)) * n_out)[:, None]
        for j in tl.static_range(K + 1):
            tl.atomic_add(row, w[j][:, None] * g, mask=(live[j] & ok_i)[:, None] & col_ok[None, :], sem="relaxed")
            row += n_out
