"""Fast KAN kernels against the plain reference path (the oracle) and against autograd."""
import pytest
import torch

from kanlab import KANLayer, splines
from kanlab import kernels
from kanlab.activations import ACTIVATIONS, activation
from kanlab.kernels import LayerParams, eager_path, kan_linear, kan_linear_reference, resolve_path
from kanlab.kernels.local import local_basis, lookup, span_tables

FAST = ["dense", "sparse"]


def random_grid(n_in, g, k, uniform, gen, dtype=torch.float64):
    """Uniform grid on random per-input ranges, or a random non-uniform one (sorted points)."""
    lo = torch.rand(n_in, 1, generator=gen, dtype=dtype) * 2 - 1.5
    width = torch.rand(n_in, 1, generator=gen, dtype=dtype) * 2 + 0.5
    if uniform:
        steps = torch.linspace(0, 1, g + 1, dtype=dtype)
    else:
        steps = torch.cumsum(torch.rand(n_in, g + 1, generator=gen, dtype=dtype) + 0.05, dim=1)
        steps = (steps - steps[:, :1]) / (steps[:, -1:] - steps[:, :1])
    return splines.extend_grid(lo + width * steps, k)


def problem(n, n_in, n_out, g, k, uniform, seed, dtype=torch.float64):
    """Inputs reaching beyond the extended grid on both sides, random parameters."""
    gen = torch.Generator().manual_seed(seed)
    grid = random_grid(n_in, g, k, uniform, gen).to(dtype)
    lo, hi = grid[:, 0], grid[:, -1]
    span = hi - lo
    x = lo - 0.3 * span + 1.6 * span * torch.rand(n, n_in, generator=gen, dtype=torch.float64)
    params = [torch.randn(n_out, n_in, g + k, generator=gen, dtype=torch.float64),
              torch.randn(n_out, n_in, generator=gen, dtype=torch.float64),
              torch.randn(n_out, n_in, generator=gen, dtype=torch.float64)]
    return grid, x.to(dtype), [p.to(dtype) for p in params]


@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_local_bases_equal_cox_de_boor_and_derivative(uniform, k):
    grid, x, _ = problem(700, 3, 1, 4, k, uniform, seed=k)
    shifted, w, dw = local_basis(x, grid, k, uniform)
    cols, live = span_tables(grid.shape[1] - 1, k, x.device)
    cols, live = lookup(cols, shifted) - 1, lookup(live, shifted)  # (N, n_in, k+1) each
    n_basis = grid.shape[1] - 1 - k
    dense = x.new_zeros(*x.shape, n_basis).scatter_add_(2, cols, w * live)
    deriv = x.new_zeros(*x.shape, n_basis).scatter_add_(2, cols, dw * live)
    torch.testing.assert_close(dense, splines.bspline_basis(x, grid, k), rtol=0, atol=1e-12)
    torch.testing.assert_close(deriv, splines.bspline_basis_derivative(x, grid, k),
                               rtol=0, atol=1e-9 * float(deriv.abs().max()))


@pytest.mark.parametrize("path", FAST)
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_fast_paths_match_reference_values_and_all_gradients(path, uniform, seed):
    gen = torch.Generator().manual_seed(100 + seed)
    n, n_in, n_out = (int(v) for v in torch.randint(1, 9, (3,), generator=gen))
    g = int(torch.randint(1, 12, (1,), generator=gen))
    k = [1, 2, 3, 4][seed]
    act = ["silu", "tanh", "gelu", "identity"][seed]
    grid, x, params = problem(n * 20, n_in, n_out, g, k, uniform, seed)
    leaves = [t.clone().requires_grad_() for t in [x, *params]]
    y = kan_linear(*leaves[:1], grid, *leaves[1:], k, act, uniform=uniform, path=path)
    ref_leaves = [t.clone().requires_grad_() for t in [x, *params]]
    y_ref = kan_linear_reference(ref_leaves[0], grid, *ref_leaves[1:], k, act)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-10)
    gy = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    grads = torch.autograd.grad(y, leaves, gy)
    grads_ref = torch.autograd.grad(y_ref, ref_leaves, gy)
    for name, a, b in zip(["x", "coef", "scale_base", "scale_spline"], grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=f"grad {name}")


@pytest.mark.parametrize("path", FAST)
def test_float32_matches_float64_reference(path):
    grid, x, params = problem(300, 5, 4, 7, 3, True, seed=7)
    y64 = kan_linear_reference(x, grid, *params, 3, "silu")
    y32 = kan_linear(x.float(), grid.float(), *[p.float() for p in params], 3, "silu",
                     uniform=True, path=path)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, rtol=1e-4, atol=1e-4 * float(y64.abs().max()))


@pytest.mark.parametrize("path", FAST)
@pytest.mark.parametrize("uniform", [True, False])
def test_gradcheck_and_gradgradcheck(path, uniform):
    grid, x, params = problem(6, 2, 3, 3, 3, uniform, seed=3)
    leaves = [t.requires_grad_() for t in [x, *params]]

    def f(x, c, sb, ss):
        return kan_linear(x, grid, c, sb, ss, 3, "silu", uniform=uniform, path=path)
    assert torch.autograd.gradcheck(f, leaves)
    assert torch.autograd.gradgradcheck(f, leaves)


@pytest.mark.parametrize("grid_size", [4, 40])  # dense and sparse path under KANLayer
def test_layer_second_derivative_in_input_matches_reference(grid_size):
    layer = KANLayer(2, 3, grid_size=grid_size, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.coef.normal_(generator=torch.Generator().manual_seed(1))
    x = (torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1)

    def laplacian(forward):
        xr = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(forward(xr).sum(), xr, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), xr, create_graph=True)
        loss = (h ** 2).sum()  # physics-informed style: a loss on second derivatives
        return h, torch.autograd.grad(loss, [layer.coef, layer.scale_base, layer.scale_spline])

    def reference(xr):
        return kan_linear_reference(xr, layer.grid, layer.coef, layer.scale_base * layer.mask,
                                    layer.scale_spline * layer.mask, 3, "silu")
    h, grads = laplacian(layer)
    h_ref, grads_ref = laplacian(reference)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-10)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
    xs = x[:5].clone().requires_grad_()
    assert torch.autograd.gradgradcheck(layer, (xs,))


@pytest.mark.parametrize("path", FAST)
def test_partial_requires_grad(path):
    grid, x, params = problem(50, 3, 2, 5, 3, True, seed=5)
    c = params[0].clone().requires_grad_()  # only the coefficients train; x is data
    y = kan_linear(x, grid, c, params[1], params[2], 3, "silu", uniform=True, path=path)
    (g,) = torch.autograd.grad(y.sum(), c)
    cr = params[0].clone().requires_grad_()
    (gr,) = torch.autograd.grad(kan_linear_reference(x, grid, cr, params[1], params[2], 3, "silu").sum(), cr)
    torch.testing.assert_close(g, gr, rtol=0, atol=1e-10)
    xr = x.clone().requires_grad_()  # only the input (frozen layer)
    (gx,) = torch.autograd.grad(kan_linear(xr, grid, *params, 3, "silu", uniform=True, path=path).sum(), xr)
    (gxr,) = torch.autograd.grad(kan_linear_reference(xr, grid, *params, 3, "silu").sum(), xr)
    torch.testing.assert_close(gx, gxr, rtol=0, atol=1e-10)


@pytest.mark.parametrize("path", FAST)
def test_repeated_knots_and_tiny_batches(path):
    grid, _, params = problem(1, 2, 2, 6, 3, False, seed=9)
    grid[:, 5] = grid[:, 4]  # a double knot inside the grid
    for n in (0, 1, 3):
        x = torch.rand(n, 2, dtype=torch.float64) * 2 - 1
        y = kan_linear(x, grid, *params, 3, "silu", uniform=False, path=path)
        torch.testing.assert_close(y, kan_linear_reference(x, grid, *params, 3, "silu"), rtol=0, atol=1e-10)


def test_dense_input_gradient_in_chunks_equals_one_pass():
    from kanlab.kernels.dense import dense_input, input_grad
    grid, x, _ = problem(37, 5, 1, 6, 3, True, seed=4)
    a, key, dw, db = dense_input(x, grid, 3, "silu", True, True)
    ga = torch.randn(a.shape, dtype=a.dtype)
    ga[:, -1] = 0  # the dump column meets a zero weight column
    whole = input_grad(ga, key, dw, db, grid.shape[1], 3)
    parts = input_grad(ga, key, dw, db, grid.shape[1], 3, chunk=40)  # 2 rows per chunk
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-12)


def test_dispatch_and_errors():
    assert eager_path(5 + 3, 3) == "dense"
    assert eager_path(50 + 3, 3) == "sparse"
    assert eager_path(200 + 3, 3) == "sparse"
    grid, x, params = problem(4, 2, 2, 3, 3, True, seed=0)
    with pytest.raises(ValueError, match="path"):
        kan_linear(x, grid, *params, 3, "silu", path="fast")
    layer = LayerParams(grid, *params, 3, "silu", True)
    assert resolve_path(x[:0], layer, "dense") == "reference"  # empty batch
    assert resolve_path(x, layer, "sparse") == "sparse"  # explicit
    assert resolve_path(x, layer) == "dense"  # small batch, small grid: eager choice


def test_a_new_table_entry_is_taken_where_it_applies(monkeypatch):
    """Adding a path is one entry of PATHS: auto tries it where its predicates hold, an
    explicit request falls back where it does not support the call."""
    calls = []

    def run(x, layer):
        calls.append(x.shape)
        return kernels.PATHS["reference"].run(x, layer)
    entry = kernels.KernelPath(run, supports=lambda x, layer: x.dtype == torch.float64, fallback="dense",
                               auto=lambda x, layer: x.shape[0] >= 10)
    table = {"toy": entry, **{name: p for name, p in kernels.PATHS.items() if not name.startswith("fused")}}
    monkeypatch.setattr(kernels, "PATHS", table)  # whole table: its order is the auto priority
    grid, x, params = problem(12, 2, 3, 4, 3, True, seed=1)
    layer = LayerParams(grid, *params, 3, "silu", True)
    assert resolve_path(x, layer) == "toy" and resolve_path(x[:9], layer) == "dense"
    assert resolve_path(x.float(), layer._replace(grid=grid.float()), "toy") == "dense"
    y = kan_linear(x, grid, *params, 3, "silu", uniform=True)
    assert calls == [x.shape]
    torch.testing.assert_close(y, kan_linear_reference(x, grid, *params, 3, "silu"), rtol=0, atol=1e-12)


def all_paths():
    """Every path of the table, with the C++ ones skipped where the extension is unavailable."""
    cpp = pytest.mark.skipif("not kernels_available()", reason="C++ kernels unavailable")
    return [pytest.param(p, marks=cpp) if p.startswith("fused") else p for p in kernels.PATHS]


def kernels_available():
    return kernels.load_extension() is not None


@pytest.mark.parametrize("path", all_paths())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_finite_inputs_give_nan_in_exactly_their_rows(path, dtype):
    """NaN / inf inputs (and huge finite ones) behave alike on every path: NaN in exactly the
    rows that hold a non-finite value, the reference's values elsewhere (issue 17)."""
    n_out = 3 if path == "fused" else 20  # the C++ dense path serves small outputs
    grid, x, params = problem(40, 3, n_out, 5, 3, True, seed=2)
    huge = 1e300 if dtype == torch.float64 else 1e30
    x[[1, 7, 8, 30], [0, 2, 1, 1]] = torch.tensor([float("nan"), float("inf"), -float("inf"), huge], dtype=torch.float64)
    x[12] = float("nan")
    x, grid, params = x.to(dtype), grid.to(dtype), [p.to(dtype) for p in params]
    bad = ~torch.isfinite(x).all(1)
    layer = LayerParams(grid, *params, 3, "silu", True)
    assert resolve_path(x, layer, path) == path
    y = kan_linear(x, grid, *params, 3, "silu", uniform=True, path=path)
    assert y[bad].isnan().all() and y[~bad].isfinite().all()
    ref = kan_linear_reference(x.double(), grid.double(), *[p.double() for p in params], 3, "silu")
    torch.testing.assert_close(y[~bad].double(), ref[~bad], rtol=1e-5 if dtype == torch.float32 else 1e-12,
                               atol=1e-4 if dtype == torch.float32 else 1e-10)


@pytest.mark.filterwarnings("ignore::UserWarning")  # dynamo notes on lru_cache-wrapped tables
def test_layer_traces_into_one_graph_under_torch_compile():
    layer = KANLayer(3, 2, grid_size=40, generator=torch.Generator().manual_seed(0))  # sparse in eager
    compiled = torch.compile(layer, backend="eager", fullgraph=True)  # tracing only: fast
    x = torch.rand(16, 3, requires_grad=True)
    y = compiled(x)
    torch.testing.assert_close(y, layer(x))
    (g,) = torch.autograd.grad(y.sum(), x)
    (g_ref,) = torch.autograd.grad(layer(x).sum(), x)
    torch.testing.assert_close(g, g_ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", FAST)
def test_cuda_matches_cpu_reference(path):
    grid, x, params = problem(500, 4, 3, 30, 3, True, seed=11)
    cuda = [t.cuda().requires_grad_() for t in [x, *params]]
    y = kan_linear(cuda[0], grid.cuda(), *cuda[1:], 3, "silu", uniform=True, path=path)
    cpu = [t.clone().requires_grad_() for t in [x, *params]]
    y_ref = kan_linear_reference(cpu[0], grid, *cpu[1:], 3, "silu")
    torch.testing.assert_close(y.cpu(), y_ref, rtol=0, atol=1e-10)
    gy = torch.randn(y.shape, dtype=y.dtype)
    for a, b in zip(torch.autograd.grad(y, cuda, gy.cuda()), torch.autograd.grad(y_ref, cpu, gy)):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=1e-10)


def test_functorch_transforms_fall_back_to_the_reference():
    layer = KANLayer(3, 2, grid_size=6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.rand(5, 3, dtype=torch.float64) * 2 - 1
    jac = torch.func.jacfwd(lambda inp: layer(inp).sum(0))(x)  # (2, 5, 3)
    xr = x.clone().requires_grad_()
    ref = torch.stack([torch.autograd.grad(layer(xr)[:, o].sum(), xr)[0] for o in range(2)])
    torch.testing.assert_close(jac, ref, atol=1e-12, rtol=0)
    vm = torch.func.vmap(layer)(x[:, None, :])  # (5, 1, 2)
    torch.testing.assert_close(vm[:, 0], layer(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    """Each base activation's record: b' and b'' against autograd of b (relu away from 0)."""
    act = activation(name)
    x = (torch.linspace(-4, 4, 101, dtype=torch.float64) + 1e-3).requires_grad_()
    def grad(y):  # dy/dx, zero where y does not depend on x
        if not y.requires_grad:
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True, allow_unused=True)
        return torch.zeros_like(x) if g is None else g
    d_ref = grad(act.function(x))
    d2_ref = grad(d_ref).detach()
    torch.testing.assert_close(act.derivative(x), d_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(act.second(x), d2_ref, rtol=0, atol=1e-12)
    with torch.no_grad():  # the fast kernels' backward: silu takes a fused op there
        torch.testing.assert_close(act.derivative(x.detach()), d_ref.detach(), rtol=0, atol=1e-12)
    d = act.derivative(x)
    torch.testing.assert_close(grad(d), d2_ref, rtol=0, atol=1e-12)  # b' stays differentiable
