"""The optional C++ kernels (kernels/fused.py, kernels/fused_sparse.py) against the reference oracle.

Tests that run the extension skip when it cannot be built here (no compiler / ninja, or
``KANLAB_NO_CPP=1``); the fallback tests run everywhere.
"""
import warnings

import pytest
import torch

from kanlab import kernels, splines
from kanlab.kernels import FUSED_MIN_ELEMENTS, extension, fused, fused_sparse, kan_linear, kan_linear_reference
from kanlab.kernels.local import uniform_basis_matrices


@pytest.fixture(scope="module")
def ext():
    ops = kernels.load_extension()
    if ops is None:
        pytest.skip(f"C++ kernels unavailable: {kernels.build_error()}")
    return ops


def problem(n, n_in, n_out, g, k, seed, dtype=torch.float64):
    """Uniform grids on random per-input ranges, inputs beyond the extended grid both sides."""
    gen = torch.Generator().manual_seed(seed)
    lo = torch.rand(n_in, 1, generator=gen, dtype=torch.float64) * 2 - 1.5
    width = torch.rand(n_in, 1, generator=gen, dtype=torch.float64) * 2 + 0.5
    grid = splines.uniform_grid(n_in, g, k, torch.cat([lo, lo + width], 1), dtype=torch.float64)
    a, b = grid[:, 0], grid[:, -1]
    x = a - 0.3 * (b - a) + 1.6 * (b - a) * torch.rand(n, n_in, generator=gen, dtype=torch.float64)
    params = [torch.randn(n_out, n_in, g + k, generator=gen, dtype=torch.float64),
              torch.randn(n_out, n_in, generator=gen, dtype=torch.float64),
              torch.randn(n_out, n_in, generator=gen, dtype=torch.float64)]
    return grid.to(dtype), x.to(dtype), [p.to(dtype) for p in params]


def values_and_grads(fn, x, params, gy):
    leaves = [t.detach().clone().requires_grad_() for t in [x] + params]
    y = fn(*leaves)
    return [y.detach()] + list(torch.autograd.grad(y, leaves, gy))


@pytest.mark.parametrize("recompute", [True, False, None])
@pytest.mark.parametrize("seed", range(5))
def test_fused_matches_reference_values_and_all_gradients(ext, seed, recompute, monkeypatch):
    monkeypatch.setattr(fused.FusedKAN, "RECOMPUTE", recompute)
    gen = torch.Generator().manual_seed(300 + seed)
    n_in, n_out = (int(v) for v in torch.randint(1, 9, (2,), generator=gen))
    g = int(torch.randint(1, 12, (1,), generator=gen))
    k = [1, 2, 3, 4, 5][seed]
    act = ["silu", "tanh", "gelu", "identity", "relu"][seed]
    grid, x, params = problem(150, n_in, n_out, g, k, seed)
    gy = torch.randn(150, n_out, dtype=torch.float64, generator=gen)
    ref = values_and_grads(lambda *t: kan_linear_reference(t[0], grid, *t[1:], k, act), x, params, gy)
    got = values_and_grads(lambda *t: kan_linear(t[0], grid, *t[1:], k, act, uniform=True, path="fused"),
                           x, params, gy)
    for r, v in zip(ref, got):
        torch.testing.assert_close(v, r, rtol=0, atol=1e-10 * max(1.0, float(r.abs().max())))


def test_fused_float32_close_to_float64_reference(ext):
    grid, x, params = problem(200, 6, 5, 5, 3, seed=7)
    y64 = kan_linear_reference(x, grid, *params, 3, "silu")
    y32 = kan_linear(x.float(), grid.float(), *[p.float() for p in params], 3, "silu", uniform=True,
                     path="fused")
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, rtol=0, atol=1e-4 * float(y64.abs().max()))


def test_fused_gradcheck_and_exact_second_derivative(ext):
    grid, x, params = problem(12, 3, 2, 4, 3, seed=11)
    leaves = [t.requires_grad_() for t in [x] + params]

    def fn(*t):
        return kan_linear(t[0], grid, *t[1:], 3, "silu", uniform=True, path="fused")
    assert fn(*leaves).grad_fn.name() == "FusedKANBackward"
    assert torch.autograd.gradcheck(fn, leaves)
    # create_graph=True goes through the reference: d2y/dx2 equals the reference's
    second = []
    for f in (fn, lambda *t: kan_linear_reference(t[0], grid, *t[1:], 3, "silu")):
        (gx,) = torch.autograd.grad(f(*leaves).sum(), leaves[0], create_graph=True)
        second.append(torch.autograd.grad(gx.sum(), leaves[0])[0])
    assert second[1].abs().max() > 0
    torch.testing.assert_close(second[0], second[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_out, g, big_path", [(20, 5, "FusedSparseKANBackward"), (3, 5, "FusedKANBackward"),
                                                 (3, 30, "FusedSparseKANBackward")])
def test_auto_dispatch_threshold(ext, n_out, g, big_path):
    n_in = 8
    big = FUSED_MIN_ELEMENTS // n_in
    eager = "DenseKANBackward" if g < 19 else "SparseKANBackward"
    for n, expected in ((big, big_path), (big - 1, eager)):
        grid, x, params = problem(n, n_in, n_out, g, 3, seed=1)
        x.requires_grad_()
        assert kan_linear(x, grid, *params, 3, "silu", uniform=True).grad_fn.name() == expected
        # adapted (non-uniform flagged) grids keep the eager paths
        assert kan_linear(x, grid, *params, 3, "silu", uniform=False).grad_fn.name() == eager


def test_unavailable_extension_falls_back_to_dense(monkeypatch):
    monkeypatch.setattr(extension, "_STATE", {"ops": None, "error": "test"})
    grid, x, params = problem(FUSED_MIN_ELEMENTS, 2, 3, 5, 3, seed=2)
    x.requires_grad_()
    ref = kan_linear_reference(x, grid, *params, 3, "silu")
    for path, expected in (("fused", "DenseKANBackward"), ("fused_sparse", "SparseKANBackward"),
                           ("auto", "DenseKANBackward")):
        y = kan_linear(x, grid, *params, 3, "silu", uniform=True, path=path)
        assert y.grad_fn.name() == expected
        torch.testing.assert_close(y, ref, rtol=0, atol=1e-10)
    assert kernels.build_error() == "test"


def test_env_var_disables_build(monkeypatch):
    monkeypatch.setenv("KANLAB_NO_CPP", "1")
    module, reason = extension._build()
    assert module is None and "KANLAB_NO_CPP" in reason


def test_build_announces_itself_once_on_stderr_only_when_compiling(monkeypatch, tmp_path, capsys):
    """The first build on a machine says so (a warning, printed on stderr; issue 16); a cached
    build is silent."""
    from torch.utils import cpp_extension
    built = []

    def fake_load(name, **kwargs):  # stands in for the compiler: writes the library
        built.append(name)
        (tmp_path / f"{name}.so").write_bytes(b"")
    monkeypatch.delenv("KANLAB_NO_CPP", raising=False)
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: True)
    monkeypatch.setattr(cpp_extension, "_get_build_directory", lambda name, verbose: str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", fake_load)
    with warnings.catch_warnings(record=True) as notices:
        warnings.simplefilter("always")
        for _ in range(2):
            monkeypatch.setattr(extension, "_STATE", {})
            extension.load_extension()
            extension.load_extension()
    assert len(built) == 2
    assert [(w.category, str(w.message)) for w in notices] == [(extension.KernelBuildNotice,
                                                                extension.BUILD_MESSAGE)]  # once: then cached
    assert capsys.readouterr().err == ""  # nothing printed by the library itself


def test_a_lock_left_by_a_killed_build_is_cleared_and_a_live_one_kept(tmp_path):
    # torch waits for its build lock forever; a process killed mid-build leaves it behind
    import os
    import time

    lock = tmp_path / "lock"
    lock.write_text("")
    assert not extension.clear_stale_lock(str(lock))  # a build in progress: wait for it
    assert lock.exists()
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert extension.clear_stale_lock(str(lock))
    assert not lock.exists()
    assert not extension.clear_stale_lock(str(lock))  # nothing to clear


def test_threads_split_rows_without_changing_results(ext):
    grid, x, _ = problem(600, 16, 3, 5, 3, seed=4)  # 600 * 16 * 9 entries: several threads
    m_w, m_d = uniform_basis_matrices(3, x.dtype, x.device)
    b = torch.nn.functional.silu(x)
    gp = torch.randn(600, 16 * 9, dtype=torch.float64)
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            out.append((ext.packed_input(x, b, grid, m_w, 3), ext.input_grad(gp, x, b, grid, m_d, 3)))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    basis = splines.bspline_basis(x, grid, 3)  # (N, n_in, nb): columns 1.. of each input's block
    torch.testing.assert_close(out[1][0].view(600, 16, 9)[..., 1:], basis, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[1][0].view(600, 16, 9)[..., 0], b, rtol=0, atol=0)


@pytest.mark.parametrize("recompute", [True, False])
def test_fused_gradients_when_only_some_inputs_require_grad(ext, recompute, monkeypatch):
    monkeypatch.setattr(fused.FusedKAN, "RECOMPUTE", recompute)
    grid, x, params = problem(80, 4, 3, 5, 3, seed=9)
    gy = torch.randn(80, 3, dtype=torch.float64)
    for wants_x in (True, False):
        xs = x.clone().requires_grad_(wants_x)
        ps = [p.clone().requires_grad_(not wants_x) for p in params]
        leaves = [xs] if wants_x else ps
        got = torch.autograd.grad(kan_linear(xs, grid, *ps, 3, "gelu", uniform=True, path="fused"), leaves, gy)
        ref = torch.autograd.grad(kan_linear_reference(xs, grid, *ps, 3, "gelu"), leaves, gy)
        for g, r in zip(got, ref):
            torch.testing.assert_close(g, r, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- fused sparse path
def sparse_fn(k, act):
    return lambda *t: kan_linear(t[0], t[4], *t[1:4], k, act, uniform=True, path="fused_sparse")


@pytest.mark.parametrize("seed", range(6))
def test_fused_sparse_matches_reference_values_and_all_gradients(ext, seed):
    gen = torch.Generator().manual_seed(500 + seed)
    n_in = int(torch.randint(1, 9, (1,), generator=gen))
    n_out = [3, 16, 21, 40, 70, 130][seed]  # one and several output chunks, padded columns
    g = [1, 4, 11, 30, 7, 2][seed]
    k = [1, 2, 3, 4, 5, 3][seed]
    act = ["silu", "tanh", "gelu", "identity", "relu", "silu"][seed]
    n = int(torch.randint(20, 200, (1,), generator=gen))
    grid, x, params = problem(n, n_in, n_out, g, k, seed)  # inputs beyond the grid both sides
    x[:3, 0] = grid[0, [0, -1, 1]]  # exactly on knots, incl. the first and the last
    gy = torch.randn(n, n_out, dtype=torch.float64, generator=gen)
    ref = values_and_grads(lambda *t: kan_linear_reference(t[0], grid, *t[1:], k, act), x, params, gy)
    got = values_and_grads(lambda *t: sparse_fn(k, act)(*t, grid), x, params, gy)
    for r, v in zip(ref, got):
        torch.testing.assert_close(v, r, rtol=0, atol=1e-10 * max(1.0, float(r.abs().max())))


@pytest.mark.parametrize("g", [5, 40])
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-10), (torch.float32, 2e-4)])
def test_fused_sparse_wide_layers_and_several_sample_blocks(ext, dtype, atol, g):
    """Wide enough for input_grad's grouped reductions (16 / 8 inputs at once, plus a tail),
    for input groups split into sub-blocks (G = 40: fewer inputs' table slices fit in L1) and
    long enough for several sample blocks in table_grad (1200 > 512 samples)."""
    grid, x, params = problem(1200, 37, 130, g, 3, seed=21, dtype=dtype)
    gy = torch.randn(1200, 130, dtype=torch.float64, generator=torch.Generator().manual_seed(22))
    grid64, x64, params64 = grid.double(), x.double(), [p.double() for p in params]
    ref = values_and_grads(lambda *t: kan_linear_reference(t[0], grid64, *t[1:], 3, "silu"), x64, params64, gy)
    got = values_and_grads(lambda *t: sparse_fn(3, "silu")(*t, grid), x, params, gy.to(dtype))
    for r, v in zip(ref, got):
        torch.testing.assert_close(v.double(), r, rtol=0, atol=atol * max(1.0, float(r.abs().max())))


def test_fused_sparse_float32_close_to_float64_reference(ext):
    grid, x, params = problem(300, 6, 20, 40, 3, seed=8)
    y64 = kan_linear_reference(x, grid, *params, 3, "silu")
    y32 = kan_linear(x.float(), grid.float(), *[p.float() for p in params], 3, "silu", uniform=True,
                     path="fused_sparse")
    assert y32.dtype == torch.float32 and y32.grad_fn is None
    torch.testing.assert_close(y32.double(), y64, rtol=0, atol=1e-4 * float(y64.abs().max()))


def test_fused_sparse_gradcheck_and_exact_second_derivative(ext):
    grid, x, params = problem(12, 3, 18, 6, 3, seed=12)
    leaves = [t.requires_grad_() for t in [x] + params]

    def fn(*t):
        return sparse_fn(3, "gelu")(*t, grid)
    assert fn(*leaves).grad_fn.name() == "FusedSparseKANBackward"
    assert torch.autograd.gradcheck(fn, leaves)
    second = []  # create_graph=True goes through the reference
    for f in (fn, lambda *t: kan_linear_reference(t[0], grid, *t[1:], 3, "gelu")):
        (gx,) = torch.autograd.grad(f(*leaves).sum(), leaves[0], create_graph=True)
        second.append(torch.autograd.grad(gx.sum(), [leaves[0], leaves[1]]))
    assert second[1][0].abs().max() > 0
    for a, b in zip(*second):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_fused_sparse_gradients_when_only_some_inputs_require_grad(ext):
    grid, x, params = problem(80, 4, 5, 9, 2, seed=13)
    gy = torch.randn(80, 5, dtype=torch.float64)
    for wants in ([True, False, False, False], [False, True, True, True], [False, False, False, True]):
        leaves = [t.clone().requires_grad_(w) for t, w in zip([x] + params, wants)]
        used = [t for t in leaves if t.requires_grad]
        got = torch.autograd.grad(sparse_fn(2, "silu")(*leaves, grid), used, gy)
        ref = torch.autograd.grad(kan_linear_reference(leaves[0], grid, *leaves[1:], 2, "silu"), used, gy)
        for g, r in zip(got, ref):
            torch.testing.assert_close(g, r, rtol=0, atol=1e-10)


def test_fused_sparse_threads_split_work_without_changing_results(ext):
    grid, x, params = problem(1300, 24, 40, 8, 3, seed=14)  # several threads and sample blocks
    gy = torch.randn(1300, 40, dtype=torch.float64)
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            out.append(values_and_grads(lambda *t: sparse_fn(3, "silu")(*t, grid), x, params, gy))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*out):
        assert torch.equal(a, b)
    ref = values_and_grads(lambda *t: kan_linear_reference(t[0], grid, *t[1:], 3, "silu"), x, params, gy)
    for r, v in zip(ref, out[0]):
        torch.testing.assert_close(v, r, rtol=0, atol=1e-10 * max(1.0, float(r.abs().max())))


def test_chunk_width_pads_little():
    for dtype, lanes in ((torch.float32, 16), (torch.float64, 8)):
        for n_out in (1, 5, 16, 17, 40, 64, 70, 128, 300):
            ch = fused_sparse.chunk_width(n_out, dtype)
            assert ch in (lanes, 2 * lanes, 4 * lanes)
            padded = -(-n_out // ch) * ch
            assert padded <= 1.25 * (-(-n_out // lanes) * lanes)
        assert fused_sparse.chunk_width(4 * lanes, dtype) == 4 * lanes  # a whole wide chunk


def table_reference(coef, sb, ss, ch):
    """The weight table by torch ops: (n_in, nc, nb + 1, ch), zero padding columns."""
    n_out, n_in, nb = coef.shape
    nc = -(-n_out // ch)
    full = torch.cat([sb.unsqueeze(-1), ss.unsqueeze(-1) * coef], -1)  # (n_out, n_in, nb + 1)
    full = torch.cat([full, full.new_zeros(nc * ch - n_out, n_in, nb + 1)])
    return full.view(nc, ch, n_in, nb + 1).permute(2, 0, 3, 1)


@pytest.mark.parametrize("n_out, n_in, nb", [(130, 37, 8), (70, 400, 9), (5, 3, 4), (16, 16, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_table_and_parameter_gradients_are_exact_transposes(ext, n_out, n_in, nb, dtype):
    """Full tiles, output and column tails, and (70, 400) several threads: the table and
    the parameters' gradients against torch's permutes, bit for bit on 1 and 3 threads."""
    gen = torch.Generator().manual_seed(n_out + n_in)
    coef, sb, ss = (torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)
                    for shape in [(n_out, n_in, nb), (n_out, n_in), (n_out, n_in)])
    ch, k = fused_sparse.chunk_width(n_out, dtype), 3
    gtab = torch.randn(table_reference(coef, sb, ss, ch).shape, generator=gen, dtype=torch.float64).to(dtype)
    gfull = gtab.permute(1, 3, 0, 2).reshape(-1, n_in, nb + 1)[:n_out]  # (n_out, n_in, nb + 1)
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            out.append([ext.sparse_table(coef, sb, ss, k, ch)] + list(ext.sparse_param_grads(gtab, coef, ss)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*out):
        assert torch.equal(a, b)
    tab, gcoef, gsb, gss = out[0]
    assert torch.equal(tab, table_reference(coef, sb, ss, ch))
    pad = k * ch  # the k zero rows before and after the table in its storage
    for offset in (tab.storage_offset() - pad, tab.storage_offset() + tab.numel()):
        assert not torch.as_strided(tab, (pad,), (1,), offset).any()
    assert torch.equal(gcoef, ss.unsqueeze(-1) * gfull[..., 1:]) and torch.equal(gsb, gfull[..., 0])
    exact = (coef.double() * gfull[..., 1:].double()).sum(-1)
    torch.testing.assert_close(gss.double(), exact, rtol=0, atol=(1e-5 if dtype == torch.float32 else 1e-13) * nb)
