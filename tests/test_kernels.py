"""Fast KAN kernels against the plain reference path (the oracle) and against autograd."""
import pytest
import torch

from kanlab import KANLayer, splines
from kanlab.kernels import choose_path, kan_linear, kan_linear_reference
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
    shifted, w, dw = local_basis(x, grid, k, uniform, masked=True)
    cols = lookup(span_tables(grid.shape[1] - 1, k, x.device)[0], shifted) - 1
    n_basis = grid.shape[1] - 1 - k
    dense = x.new_zeros(*x.shape, n_basis).scatter_add_(2, cols, w)
    deriv = x.new_zeros(*x.shape, n_basis).scatter_add_(2, cols, dw)
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
    assert choose_path(5 + 3, 3) == "dense"
    assert choose_path(50 + 3, 3) == "sparse"
    assert choose_path(200 + 3, 3) == "sparse"
    grid, x, params = problem(4, 2, 2, 3, 3, True, seed=0)
    with pytest.raises(ValueError, match="path"):
        kan_linear(x, grid, *params, 3, "silu", path="fast")


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


@pytest.mark.parametrize("name", ["silu", "tanh", "gelu", "identity", "relu"])
def test_base_derivative_closed_forms_match_autograd(name):
    from kanlab.activations import base_function
    from kanlab.kernels.common import base_derivative
    x = (torch.linspace(-4, 4, 101, dtype=torch.float64) + 1e-3).requires_grad_()
    d = base_derivative(name, x)
    (ref,) = torch.autograd.grad(base_function(name)(x).sum(), x, create_graph=True)
    torch.testing.assert_close(d, ref, rtol=0, atol=1e-12)
    with torch.no_grad():  # the fast kernels' backward: silu takes a fused op there
        torch.testing.assert_close(base_derivative(name, x.detach()), ref.detach(), rtol=0, atol=1e-12)
    if name in ("silu", "tanh", "gelu"):  # the closed form stays differentiable (jets need b'')
        (d2,) = torch.autograd.grad(d.sum(), x)
        (ref2,) = torch.autograd.grad(ref.sum(), x)
        torch.testing.assert_close(d2, ref2, rtol=0, atol=1e-12)
