"""kanlab.structure: separability and symmetry tests on functions of known structure (and known
non-structure), exact functions and a trained KAN, and the tree they give."""
import math

import pytest
import torch

import kanlab
from kanlab.structure import (
    additive_score,
    function_derivatives,
    multiplicative_score,
    structure_tree,
    symmetry_score,
    variable_importance,
)

sympy = pytest.importorskip("sympy")


def _x(n=300, d=3, lo=0.5, hi=1.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, dtype=torch.float64, generator=g)


def test_derivatives_match_closed_form_and_kan_jet():
    x = _x()
    d = function_derivatives(lambda x: x[:, 0] ** 2 * torch.sin(x[:, 1]) + x[:, 2], x)
    a, b = x[:, 0], x[:, 1]
    torch.testing.assert_close(d.grad[:, 0], 2 * a * torch.sin(b))
    torch.testing.assert_close(d.hess[:, 0, 1], 2 * a * torch.cos(b))
    torch.testing.assert_close(d.hess[:, 1, 1], -a ** 2 * torch.sin(b))
    torch.testing.assert_close(d.hess[:, 2], torch.zeros_like(x))
    model = kanlab.KAN([3, 2, 1], grid_size=5, seed=0, dtype=torch.float64)
    dm = function_derivatives(model, x)  # value, gradient, diagonal from input_jet; mixed by autograd
    u, g, diag = kanlab.input_jet(model, x, method="autograd")
    torch.testing.assert_close(dm.grad, g[:, 0])
    torch.testing.assert_close(torch.diagonal(dm.hess, dim1=1, dim2=2), diag[:, 0])
    torch.testing.assert_close(dm.hess, dm.hess.transpose(1, 2))


@pytest.mark.parametrize("f,additive,multiplicative", [
    (lambda x: x[:, 0] ** 2 + torch.sin(x[:, 1]), True, False),
    (lambda x: x[:, 0] * torch.exp(x[:, 1]), False, True),
    (lambda x: torch.sin(x[:, 0] * x[:, 1]), False, False),
    (lambda x: (x[:, 0] + x[:, 1]) ** 2, False, False),
])
def test_separability_scores_tell_structure_from_no_structure(f, additive, multiplicative):
    d = function_derivatives(f, _x(d=2))
    add = additive_score(d, [0], [1])
    mult, shift = multiplicative_score(d, [0], [1], shift=False)
    assert (add < 1e-8) == additive and (add > 0.05 or additive), add
    assert (mult < 1e-8) == multiplicative and (mult > 0.05 or multiplicative), mult
    assert shift == 0.0


def test_shifted_product_and_output_transforms():
    x = _x(d=2)
    d = function_derivatives(lambda x: 1 + x[:, 0] * torch.sin(x[:, 1]), x)
    assert multiplicative_score(d, [0], [1], shift=False)[0] > 0.05
    score, shift = multiplicative_score(d, [0], [1])
    assert score < 1e-8 and shift == pytest.approx(1.0)
    d = function_derivatives(lambda x: torch.sqrt(1 + x[:, 0] ** 2 + x[:, 1] ** 2), x)
    assert additive_score(d, [0], [1]) > 0.05 and additive_score(d, [0], [1], transform="square") < 1e-8
    d = function_derivatives(lambda x: -x[:, 0] / x[:, 1], x)
    assert additive_score(d, [0], [1], transform="log") < 1e-8  # log|f|: a product of any sign
    assert math.isinf(additive_score(d, [0], [1], transform="sqrt"))  # sqrt of a negative f: not tried


@pytest.mark.parametrize("kind,f", [
    ("minus", lambda x: torch.exp(-(x[:, 0] - x[:, 1]) ** 2) * x[:, 2]),
    ("plus", lambda x: torch.sin(x[:, 0] + x[:, 1]) + x[:, 2]),
    ("divide", lambda x: torch.atan(x[:, 0] / x[:, 1]) * x[:, 2]),
    ("times", lambda x: 1 / (1 + x[:, 0] * x[:, 1]) + x[:, 2]),
])
def test_symmetries_found_only_where_they_hold(kind, f):
    x = _x()
    d = function_derivatives(f, x)
    assert symmetry_score(d, x, 0, 1, kind) < 1e-10
    others = [k for k in ("minus", "plus", "divide", "times") if k != kind]
    assert all(symmetry_score(d, x, 0, 1, k) > 0.05 for k in others)
    assert all(symmetry_score(d, x, 0, 2, k) > 0.05 for k in ("minus", "plus", "divide", "times"))


def test_variable_importance_spots_an_unused_input():
    x = _x()
    imp = variable_importance(function_derivatives(lambda x: x[:, 0] * x[:, 2], x), x)
    assert imp[1] == 0 and imp[0] > 0.1 and imp[2] > 0.1


def test_tree_of_an_exact_function_prints_plots_and_round_trips(tmp_path):
    x = _x(d=4)
    f = lambda x: x[:, 0] * torch.sqrt(x[:, 1] ** 2 + (x[:, 2] - x[:, 3]) ** 2)  # noqa: E731
    tree = structure_tree(f, x, ["m", "a", "b", "c"])
    text = str(tree)
    leaves = {leaf.variables for leaf in tree.leaves()}
    assert ("m",) in leaves and ("a",) in leaves and ("b - c",) in leaves, text
    assert "square(f) = sum" in text and "via b - c" in text
    kinds, todo = [], [tree.to_dict()]
    while todo:
        node = todo.pop()
        kinds.append(node["kind"])
        todo += node.get("children", [])
    assert "product" in kinds and "sum" in kinds and kinds.count("leaf") == 3, kinds
    pytest.importorskip("matplotlib")
    fig = tree.plot()
    fig.savefig(tmp_path / "tree.png")
    assert (tmp_path / "tree.png").stat().st_size > 1000


def test_tree_drops_an_unused_variable_and_keeps_a_non_separable_leaf():
    x = _x(d=3)
    tree = structure_tree(lambda x: (x[:, 0] + x[:, 2]) / (1 + x[:, 0] * x[:, 2]), x, ["u", "junk", "v"])
    assert tree.dropped == ("junk",) and tree.kind == "leaf" and tree.variables == ("u", "v"), str(tree)


def test_tree_from_a_trained_kan_finds_the_product():
    # a KAN fit to 2e-4 relative error: swap tests on its values still separate a (1/b - 1)
    data = kanlab.datasets.feynman_dataset("I.13.12", n_train=300, n_test=100)
    model = kanlab.KAN([2, 5, 1], grid_size=5, seed=0, dtype=torch.float64)
    model.fit(data, steps=30, progress=False)
    tree = structure_tree(model, data.train_input, ["a", "b"])
    assert tree.kind == "product" and [c.variables for c in tree.children] == [("a",), ("b",)], str(tree)
    hessian = structure_tree(model, data.train_input, ["a", "b"], method="hessian", threshold=0.5)
    assert hessian.kind == "product", str(hessian)


def test_bad_arguments_are_named():
    x = _x(d=2)
    d = function_derivatives(lambda x: x[:, 0] * x[:, 1], x)
    with pytest.raises(ValueError, match="groups"):
        additive_score(d, [0], [0])
    with pytest.raises(ValueError, match="transform"):
        additive_score(d, [0], [1], transform="cube")
    with pytest.raises(ValueError, match="kind"):
        symmetry_score(d, x, 0, 1, "modulo")
    with pytest.raises(ValueError, match="names"):
        structure_tree(lambda x: x[:, 0], x, ["a"])
    with pytest.raises(ValueError, match="method"):
        structure_tree(lambda x: x[:, 0], x, method="guess")
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, 1\)"):
        function_derivatives(lambda x: x, x)
