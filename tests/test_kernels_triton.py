"""The Triton path (kernels/triton_kan.py, triton_kernels.py) against the reference oracle.

On CPU the kernels run in Triton's interpreter (conftest sets TRITON_INTERPRET=1; slow, so the
shapes are small); with ``KANLAB_TEST_DEVICE=cuda`` the same tests run the compiled kernels.
Float32 results are compared with the float64 reference on the same (float32) inputs, the truth
both precisions approximate.
"""
import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from kanlab import KANLayer, splines
from kanlab.kernels import PATHS, kan_linear, kan_linear_reference

pytest.importorskip("triton", reason="the Triton path needs the optional dependency triton")
from kanlab.kernels import triton_kan  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Case:
    k: int
    uniform: bool
    g: int
    n: int
    n_in: int
    n_out: int
    act: str = "silu"
    table_grad: str = "auto"
    dtype: torch.dtype = torch.float64


# odd shapes: N not a multiple of the block (16 rows), n_in = 1, n_out = 1, n_out above a block,
# n_in above an input block (4), G = 1 and 200, every order, both table-gradient kernels
CASES = [
    Case(1, True, 1, 200, 2, 3, "silu", "tile"),  # four partial sums of the tile kernel
    Case(2, False, 5, 70, 1, 4, "tanh", "scatter"),
    Case(3, True, 200, 40, 3, 1, "gelu", "scatter"),
    Case(3, False, 200, 40, 2, 2, "silu", "tile"),  # the table in four chunks of 64 rows
    Case(4, True, 6, 64, 5, 3, "identity", "tile"),
    Case(5, False, 3, 33, 2, 3, "relu", "scatter"),
    Case(5, True, 9, 17, 2, 2, "zero"),
    Case(3, True, 5, 70, 3, 67, "silu", "tile", torch.float32),
    Case(3, False, 200, 50, 2, 3, "silu", "auto", torch.float32),
    Case(2, True, 200, 50, 2, 3, "tanh", "tile", torch.float32),
]


def draw(gen, *shape, normal=False):
    """Float64 draws on the CPU (the same numbers whatever the test device)."""
    fn = torch.randn if normal else torch.rand
    return fn(*shape, generator=gen, dtype=torch.float64, device="cpu")


def random_grid(n_in, g, k, uniform, gen):
    """Uniform grid on random per-input ranges, or a random non-uniform one (sorted points)."""
    lo = draw(gen, n_in, 1) * 2 - 1.5
    width = draw(gen, n_in, 1) * 2 + 0.5
    if uniform:
        steps = torch.linspace(0, 1, g + 1, dtype=torch.float64, device="cpu")
    else:
        steps = torch.cumsum(draw(gen, n_in, g + 1) + 0.05, dim=1)
        steps = (steps - steps[:, :1]) / (steps[:, -1:] - steps[:, :1])
    return splines.extend_grid(lo + width * steps, k)


def problem(case: Case, seed: int, device):
    """Grid, inputs reaching beyond the extended grid on both sides, parameters (CPU float64
    draws, then ``case.dtype`` on ``device``)."""
    gen = torch.Generator().manual_seed(seed)
    grid = random_grid(case.n_in, case.g, case.k, case.uniform, gen)
    lo, hi = grid[:, 0], grid[:, -1]
    x = lo - 0.3 * (hi - lo) + 1.6 * (hi - lo) * draw(gen, case.n, case.n_in)
    params = [draw(gen, case.n_out, case.n_in, case.g + case.k, normal=True),
              draw(gen, case.n_out, case.n_in, normal=True), draw(gen, case.n_out, case.n_in, normal=True)]
    return [t.to(device, case.dtype) for t in (grid, x, *params)]


def output_grad(n, n_out, device):
    return draw(torch.Generator().manual_seed(1), n, n_out, normal=True).to(device)


def values_and_grads(fn, tensors, gy):
    """``[y, dL/dx, dL/dcoef, dL/dscale_base, dL/dscale_spline]`` for ``L = <y, gy>``."""
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    y = fn(*leaves)
    return [y.detach()] + list(torch.autograd.grad(y, leaves, gy.to(y.dtype)))


def triton_fn(grid, k, act, uniform):
    return lambda x, *p: kan_linear(x, grid, *p, k, act, uniform=uniform, path="triton")


def reference_fn(grid, k, act):
    return lambda x, *p: kan_linear_reference(x, grid, *p, k, act)


NAMES = ["y", "grad x", "grad coef", "grad scale_base", "grad scale_spline"]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_values_and_all_gradients_match_reference(case, device, monkeypatch):
    monkeypatch.setattr(triton_kan, "TABLE_GRAD", case.table_grad)
    grid, x, *params = problem(case, seed=case.k + case.g, device=device)
    gy = output_grad(case.n, case.n_out, device)
    got = values_and_grads(triton_fn(grid, case.k, case.act, case.uniform), [x, *params], gy)
    # the truth: the float64 reference on the same inputs
    truth = values_and_grads(reference_fn(grid.double(), case.k, case.act), [t.double() for t in [x, *params]], gy)
    tol = 1e-10 if case.dtype == torch.float64 else 1e-5  # relative to the largest entry
    for name, a, b in zip(NAMES, got, truth):
        assert a.dtype == case.dtype and a.shape == b.shape, name
        torch.testing.assert_close(a.double(), b, rtol=0, atol=tol * float(b.abs().max()), msg=name)


@pytest.mark.parametrize("uniform", [True, False])
def test_inputs_on_the_knots_follow_half_open_intervals(uniform, device):
    """Every knot (first and last included), points just inside, and points far outside: exact
    float64 knots (dyadic), so the closed form and the search see the same interval as the reference."""
    k, g = 3, 6
    if uniform:
        grid = splines.uniform_grid(2, g, k, (-1.0, 2.0), dtype=torch.float64)  # knots multiples of 1/2
    else:
        grid = splines.extend_grid(torch.tensor([[-1.0, -0.75, 0.0, 0.25, 1.0, 1.5, 2.0]] * 2,
                                                dtype=torch.float64), k)
    knots = grid[0]
    x = torch.cat([knots, knots + 1e-9, knots - 1e-9, torch.tensor([-1e6, 1e6], dtype=torch.float64)])
    x = torch.stack([x, x.flip(0)], dim=1).to(device)
    gen = torch.Generator().manual_seed(0)
    params = [draw(gen, *shape, normal=True).to(device) for shape in [(3, 2, g + k), (3, 2), (3, 2)]]
    grid = grid.to(device)
    y = kan_linear(x, grid, *params, k, "silu", uniform=uniform, path="triton")
    torch.testing.assert_close(y, kan_linear_reference(x, grid, *params, k, "silu"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("act", ["silu", "zero"])
def test_nan_inputs_make_exactly_their_rows_nan(act, device):
    case = Case(3, False, 5, 20, 3, 4, act)
    grid, x, *params = problem(case, seed=2, device=device)
    x[3, 1] = float("nan")
    x[11, 0] = float("nan")
    y = kan_linear(x, grid, *params, 3, act, uniform=False, path="triton")
    bad = torch.zeros(20, dtype=torch.bool, device=device)
    bad[[3, 11]] = True
    assert y[bad].isnan().all()
    assert not y[~bad].isnan().any()
    torch.testing.assert_close(y[~bad], kan_linear_reference(x[~bad], grid, *params, 3, act), rtol=0, atol=1e-12)


def test_empty_batch(device):
    case = Case(3, True, 5, 0, 3, 2)
    grid, x, *params = problem(case, seed=0, device=device)
    got = values_and_grads(triton_fn(grid, 3, "silu", True), [x, *params], torch.zeros(0, 2, device=device))
    assert got[0].shape == (0, 2) and got[1].shape == (0, 3)
    for a in got[2:]:
        assert not a.any()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_are_summed_in_float32(dtype, device):
    """The output is the exact value rounded once to ``dtype``: within 1 ulp, and equal to the
    rounded exact value nearly everywhere (Triton's interpreter truncates float32 -> bfloat16
    instead of rounding, so there only the first); gradients within a few ulps of their scale."""
    case = Case(3, True, 5, 60, 8, 3, dtype=dtype)
    grid, x, *params = problem(case, seed=4, device=device)
    grid = problem(dataclasses.replace(case, dtype=torch.float32), seed=4, device=device)[0]  # exactly uniform
    gy = output_grad(60, 3, device)
    got = values_and_grads(triton_fn(grid, 3, "silu", True), [x, *params], gy)
    truth = values_and_grads(reference_fn(grid.double(), 3, "silu"), [t.double() for t in [x, *params]], gy)
    eps = torch.finfo(dtype).eps
    y, y_true = got[0], truth[0]
    assert ((y.double() - y_true).abs() <= eps * y_true.abs() + 1e-3 * eps * float(y_true.abs().max())).all()
    if not (dtype == torch.bfloat16 and triton_kan._STATE.get("interpreted")):
        assert (y == y_true.to(dtype)).double().mean() >= 0.9  # summed in dtype: ~1/3 (measured)
    for name, a, b in zip(NAMES[1:], got[1:], truth[1:]):
        assert a.dtype == dtype, name
        torch.testing.assert_close(a.double(), b, rtol=0, atol=4 * eps * float(b.abs().max()), msg=name)


def test_second_derivatives_go_through_the_reference(device):
    case = Case(3, False, 5, 12, 2, 3)
    grid, x, *params = problem(case, seed=6, device=device)

    def hessian_terms(fn):
        xr = x.clone().requires_grad_()
        coef = params[0].clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(xr, coef, *params[1:]).sum(), xr, create_graph=True)
        return torch.autograd.grad((gx ** 2).sum(), [xr, coef])
    got = hessian_terms(triton_fn(grid, 3, "silu", False))
    ref = hessian_terms(reference_fn(grid, 3, "silu"))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * float(b.abs().max()))


def test_arguments_the_kernels_do_not_handle_use_the_eager_path(device):
    case = Case(3, True, 5, 10, 2, 2)
    grid, x, *params = problem(case, seed=1, device=device)
    mixed = [params[0].float(), *params[1:]]  # coef in another dtype than x
    assert not triton_kan.supports(x, grid, *mixed, 3)
    assert not triton_kan.supports(x, grid, *params, 6)  # order above 5
    y = kan_linear(x, grid, params[0], *params[1:], 3, "silu", uniform=True, path="triton")
    torch.testing.assert_close(y, kan_linear_reference(x, grid, *params, 3, "silu"), rtol=0, atol=1e-12)


def test_dispatch_errors_and_kernel_choice(monkeypatch):
    assert "triton" in PATHS
    case = Case(3, True, 5, 10, 2, 2)
    grid, x, *params = problem(case, seed=1, device="cpu")
    assert not triton_kan.auto_applies(x, grid, *params, 3)  # CPU tensors: never chosen by "auto"
    monkeypatch.setitem(triton_kan._STATE, "interpreted", False)  # kernels loaded for the GPU
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        kan_linear(x, grid, *params, 3, "silu", uniform=True, path="triton")
    monkeypatch.setattr(triton_kan.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"kanlab\[gpu\]"):
        kan_linear(x, grid, *params, 3, "silu", uniform=True, path="triton")
    monkeypatch.setattr(triton_kan, "TABLE_GRAD", "auto")
    assert triton_kan.table_grad_kernel(9) == "tile" and triton_kan.table_grad_kernel(204) == "scatter"
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert triton_kan.table_grad_kernel(204) == "tile"  # the kernel without atomics
    finally:
        torch.use_deterministic_algorithms(old)


def test_import_kanlab_does_not_import_triton():
    code = "import sys, kanlab, kanlab.kernels; assert 'triton' not in sys.modules, 'triton imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_picks_triton_for_cuda_tensors_and_a_layer_matches_reference(monkeypatch):
    calls = []
    apply = triton_kan.TritonKAN.apply
    monkeypatch.setattr(triton_kan.TritonKAN, "apply", lambda *a: calls.append(1) or apply(*a))
    layer = KANLayer(64, 32, grid_size=5, device="cuda", generator=torch.Generator().manual_seed(0))
    x = torch.rand(5000, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(1)) * 2 - 1
    y = layer(x)
    assert calls, "auto did not take the Triton path"
    ref = kan_linear_reference(x.double(), layer.grid.double(), layer.coef.double(),
                               (layer.scale_base * layer.mask).double(), (layer.scale_spline * layer.mask).double(),
                               3, "silu")
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=1e-5 * float(ref.abs().max()))



@pytest.mark.slow  # ~5 s of Triton's compiler per kernel
def test_every_kernel_compiles_for_hopper():
    """The interpreter runs some programs the compiler rejects: compile every kernel variant to
    sm_90 machine code, no GPU needed (in a subprocess: this one loaded the kernels interpreted)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "triton_compile_check.py")
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.count("| kan_") == 4 * 2 * 5 * 3  # kernels x grid kinds x orders x dtypes
