"""Library entries against sympy (the oracle), safe forms, and the affine fit."""
import pytest
import torch

sympy = pytest.importorskip("sympy")

from kanlab.symbolic import (  # noqa: E402
    SingularFitError,
    fit_functions,
    get_function,
    library_names,
    rank_candidates,
    register,
)
from kanlab.symbolic.library import canonical_params  # noqa: E402

DOMAIN = {"sqrt": (0.1, 3), "x^1.5": (0.1, 3), "1/sqrt": (0.1, 3), "log": (0.1, 3), "arcsin": (-0.95, 0.95),
          "arccos": (-0.95, 0.95), "arctanh": (-0.95, 0.95), "tan": (-1.4, 1.4)}


@pytest.mark.parametrize("name", library_names())
def test_torch_matches_sympy_on_domain(name):
    fn = get_function(name)
    lo, hi = DOMAIN.get(name, (-3, 3))
    x = torch.linspace(lo, hi, 101, dtype=torch.float64)
    x = x[x.abs() > 0.05] if name.startswith("1/x") or name in ("sgn",) else x
    u = sympy.Symbol("u")
    ref = sympy.lambdify(u, fn.sympy_fn(u), "numpy")(x.numpy())
    torch.testing.assert_close(fn.torch_fn(x), torch.as_tensor(ref, dtype=torch.float64).expand_as(x),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", library_names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_safe_forms_finite_values_and_gradients_everywhere(name, dtype):
    x = torch.tensor([-1e3, -2.0, -1.0, -1e-30, 0.0, 1e-30, 1.0, 1.5707963, 2.0, 80.0, 1e3], dtype=dtype,
                     requires_grad=True)
    y = get_function(name).torch_fn(x)
    assert torch.isfinite(y).all(), (name, y)
    (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True) if y.requires_grad else (torch.zeros_like(x),)
    assert g is None or torch.isfinite(g).all(), (name, g)


def test_unknown_name_and_register():
    with pytest.raises(ValueError, match="unknown symbolic function 'sinc'"):
        get_function("sinc")
    with pytest.raises(ValueError, match="already in the library"):
        register("sin", torch.sin, sympy.sin, 2)
    entry = register("sinh_test", torch.sinh, sympy.sinh, 3, overwrite=True)
    assert get_function("sinh_test") is entry and "sinh_test" in library_names()
    assert get_function("x^0.5").name == "sqrt"


@pytest.mark.parametrize("name,params,lo,hi", [
    ("sin", (2.5, 0.3, 1.7, -0.4), -1, 1), ("exp", (1.3, 0.0, 0.8, 0.2), -1, 1),
    ("x^2", (1.0, 0.4, 2.0, -1.0), -1, 1), ("1/x", (1.0, 1.5, 0.7, 0.1), -1, 1),
    ("arctanh", (0.8, 0.0, 1.2, 0.0), -1, 1), ("sqrt", (1.0, 0.0, 1.0, 0.5), 0.5, 2),
    ("tanh", (-3.0, 0.5, 1.0, 0.0), -1, 1), ("log", (1.0, 0.0, 1.0, 0.0), 0.5, 2)])
def test_fit_recovers_the_function(name, params, lo, hi):
    fn = get_function(name).torch_fn
    x = torch.rand(500, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * (hi - lo) + lo
    a, b, c, d = params
    y = c * fn(a * x + b) + d
    res = fit_functions(x, y, [fn])
    assert res.r2.shape == (1,) and res.params.shape == (1, 4)
    assert float(res.r2[0]) > 1 - 1e-12
    pa, pb, pc, pd = (float(v) for v in res.params[0])
    torch.testing.assert_close(pc * fn(pa * x + pb) + pd, y, rtol=1e-8, atol=1e-8)
    assert float(res.cancellation[0]) < 10


def test_fit_batched_matches_single_and_is_chunk_independent():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 200, dtype=torch.float64, generator=gen) * 2 - 1
    y = torch.stack([torch.sin(3 * x[0]), x[1] ** 2, torch.exp(-x[2])])
    fns = [get_function(n).torch_fn for n in ("sin", "x^2", "exp", "x")]
    batched = fit_functions(x, y, fns)
    small = fit_functions(x, y, fns, max_elements=1000)
    torch.testing.assert_close(batched.r2, small.r2)
    for e in range(3):
        single = fit_functions(x[e], y[e], fns)
        torch.testing.assert_close(single.r2, batched.r2[e])
    assert batched.r2.argmax(dim=1).tolist() == [0, 1, 2]


def test_singular_fit_and_nan_candidate_are_handled():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)
    with pytest.raises(SingularFitError, match="constant"):
        fit_functions(x, torch.full_like(x, 3.0), [torch.sin])
    res = fit_functions(x, torch.sin(x), [lambda t: t * float("nan"), torch.sin])
    assert res.r2[0] == float("-inf") and float(res.r2[1]) > 1 - 1e-12
    assert torch.isfinite(res.params).all()


def test_ranking_prefers_simple_exact_and_flags_taylor_slices():
    x = torch.linspace(-1, 1, 300, dtype=torch.float64)
    names = ["x", "x^2", "cos", "x^4"]
    res = fit_functions(x, 2 * x ** 2 + 1, [get_function(n).torch_fn for n in names])
    cx = torch.tensor([get_function(n).complexity for n in names])
    score = rank_candidates(res.r2, cx, 0.8, res.cancellation)
    assert names[int(score.argmin())] == "x^2"
    if float(res.r2[2]) > 0.9999:  # cos(eps x) ~ 1 - eps^2 x^2 / 2 only fits as a flat slice
        assert float(res.cancellation[2]) > 10
    with pytest.raises(ValueError, match="weight_simple"):
        rank_candidates(res.r2, cx, 1.5)


_TAYLOR_LIB = ["cos", "gaussian", "sin", "x^2", "x", "exp", "tanh", "sqrt"]  # cos first: ties go to it


def _rank(x, y, guard=True):
    """Library names best first, ranked without the cancellation guard (only ``degenerate``)."""
    res = fit_functions(x, y, [get_function(n).torch_fn for n in _TAYLOR_LIB])
    cx = torch.tensor([get_function(n).complexity for n in _TAYLOR_LIB])
    score = rank_candidates(res.r2, cx, 0.8, res.cancellation, float("inf"), res.degenerate if guard else None)
    return [_TAYLOR_LIB[int(k)] for k in score.argsort(stable=True)], res


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.5, 2.0)])
def test_taylor_regime_cos_loses_to_exact_square(lo, hi):
    # noise-free float64 x^2: cos(eps x) with c ~ 1/eps^2 matches it to r^2 ~ 1 - 1e-8, at the
    # same complexity; the degenerate flag (not the cancellation guard) ranks it below x^2
    x = torch.linspace(lo, hi, 400, dtype=torch.float64)
    order, res = _rank(x, 3 * x ** 2 - 1)
    cos, sq = _TAYLOR_LIB.index("cos"), _TAYLOR_LIB.index("x^2")
    assert order[0] == "x^2" and float(res.r2[sq]) > 1 - 1e-12
    assert bool(res.degenerate[cos]) and float(res.r2[cos]) > 1 - 1e-4  # a close competitor, flagged
    assert not bool(res.degenerate[sq]) and not bool(res.degenerate[_TAYLOR_LIB.index("x")])


def test_taylor_regime_cos_cannot_win_by_fitting_noise():
    # a near-quadratic edge with a small wiggle (what a pruned KAN's edge for x*y looks
    # like): cos's quartic Taylor term buys a sliver of r^2 over x^2 -- enough to win
    # the plain score -- but explains little of what the quadratic leaves: degenerate
    x = torch.linspace(-1, 1, 400, dtype=torch.float64)
    y = x ** 2 - 0.01 * x ** 4 + 2e-3 * torch.sin(9 * x)
    unguarded, _ = _rank(x, y, guard=False)
    order, res = _rank(x, y)
    assert unguarded[0] == "cos"  # the failure the guard exists for
    assert order[0] == "x^2" and bool(res.degenerate[_TAYLOR_LIB.index("cos")])


def test_nearly_straight_square_loses_to_x():
    # x^2 with a huge offset, c (x - 10.4)^2 + d, is a line plus a sliver of curvature: on a
    # nearly straight, wiggly edge it edges out x in r^2 (pure fit ranking, weight_simple=0),
    # but explains almost nothing of what the line leaves -> degenerate, x first
    x = torch.linspace(-1, 1, 400, dtype=torch.float64)
    y = x + 1e-3 * x ** 2 + 3e-3 * torch.sin(9 * x)
    names = ["x^2", "x"]
    res = fit_functions(x, y, [get_function(n).torch_fn for n in names])
    cx = torch.tensor([get_function(n).complexity for n in names])
    plain = rank_candidates(res.r2, cx, 0.0, res.cancellation, float("inf"))
    guarded = rank_candidates(res.r2, cx, 0.0, res.cancellation, float("inf"), res.degenerate)
    assert int(plain.argmin()) == 0 and int(guarded.argmin()) == 1
    assert res.degenerate.tolist() == [True, False]


@pytest.mark.parametrize("y_fn,best", [(lambda x: torch.cos(3 * x), "cos"), (lambda x: torch.cos(0.5 * x + 0.3), "cos"),
                                       (lambda x: torch.sqrt(2 + x), "sqrt"), (lambda x: torch.exp(0.5 * x), "exp"),
                                       (lambda x: torch.tanh(2 * x), "tanh")])
def test_taylor_guard_keeps_real_shapes(y_fn, best):
    # genuine curves, some nearly quadratic over the range (cos(x/2), sqrt(2 + x), exp(x/2)):
    # fit exactly, they beat the best quadratic by orders of magnitude and must stay first
    x = torch.linspace(-1, 1, 400, dtype=torch.float64)
    order, res = _rank(x, y_fn(x))
    k = _TAYLOR_LIB.index(best)
    assert order[0] == best or (best == "cos" and order[0] == "sin"), order  # cos(u) = sin(u + pi/2)
    assert not bool(res.degenerate[k]) and float(res.r2[k]) > 1 - 1e-12


@pytest.mark.parametrize("name,params", [("x^2", (-2.0, 0.6, 0.5, 1.0)), ("exp", (1.5, -2.0, 3.0, 0.1)),
                                         ("x", (2.0, 1.0, 3.0, 0.5)), ("1/sqrt", (4.0, 1.0, 2.0, 0.0))])
def test_canonical_params_keep_the_function(name, params):
    fn = get_function(name).torch_fn
    x = torch.linspace(0.1, 1, 20, dtype=torch.float64)
    a, b, c, d = params
    ca, cb, cc, cd = canonical_params(name, *params)
    torch.testing.assert_close(cc * fn(ca * x + cb) + cd, c * fn(a * x + b) + d)
    assert name == "exp" and cb == 0 or abs(ca) == 1 or name not in ("x^2", "x", "1/sqrt")
