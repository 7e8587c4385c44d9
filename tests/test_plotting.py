import math
import sys

import pytest
import torch
from torch import nn

pytest.importorskip("matplotlib")
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kanlab import KAN  # noqa: E402
from kanlab.plotting import SYMBOLIC_COLOR, plot_edge, plot_network  # noqa: E402


def uniform(n, d, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def wiggly(width, seed=0, **kw):
    """A float64 KAN with visibly curved edges (random spline coefficients)."""
    model = KAN(width, seed=seed, dtype=torch.float64, **kw)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            layer.coef.copy_(torch.randn(layer.coef.shape, generator=gen, dtype=torch.float64))
    return model


def edge_lines(fig):
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if (ln.get_gid() or "").startswith("edge:")]
    return {tuple(int(v) for v in ln.get_gid().split(":")[1:]): ln for ln in lines}


def test_network_curves_are_the_model_functions_over_the_data_range():
    model = wiggly([3, 4, 2])
    x = uniform(400, 3)
    fig = plot_network(model, x)
    assert isinstance(fig, Figure)
    lines = edge_lines(fig)
    assert len(lines) == 3 * 4 + 4 * 2
    acts = model.activations(x)
    for (l, i, j), line in lines.items():
        xp = torch.as_tensor(line.get_xdata(), dtype=torch.float64)
        yp = torch.as_tensor(line.get_ydata(), dtype=torch.float64)
        h = acts[l].inputs[:, i]
        t = h.min() + (xp - xp.min()) / (xp.max() - xp.min()) * (h.max() - h.min())  # back to node values
        inp = torch.zeros(len(t), model.layers[l].in_features, dtype=torch.float64)
        inp[:, i] = t
        phi = model.layers[l].edges(inp)[:, j, i].detach()
        # the box shows phi up to a positive affine map: fit it and check the residual
        design = torch.stack([phi, torch.ones_like(phi)], dim=1)
        coef = torch.linalg.lstsq(design, yp.unsqueeze(1)).solution.flatten()
        assert coef[0] > 0, (l, i, j)
        assert (design @ coef - yp).abs().max() < 1e-9 * (yp.max() - yp.min()) + 1e-12, (l, i, j)
        assert xp.diff().min() > 0


def test_opacity_follows_scores_and_symbolic_edges_are_coloured():
    model = wiggly([2, 3, 1])
    x = uniform(300, 2)

    class Sym(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64))

        def edges(self, h):
            return self.mask * torch.sin(h).unsqueeze(1)

        def forward(self, h):
            return self.edges(h).sum(-1)

    with torch.no_grad():
        model.layers[0].mask[1, 1] = 0.0
    model.symbolic["0"] = Sym()
    scores = model.attribute(x)
    lines = edge_lines(model.plot(x, beta=2.0))
    for (l, i, j), line in lines.items():
        assert line.get_alpha() == pytest.approx(math.tanh(2.0 * float(scores.edges[l][j, i])), abs=1e-12)
        want = SYMBOLIC_COLOR if (l, i, j) == (0, 1, 1) else "black"
        assert to_rgb(line.get_color()) == to_rgb(want)
    # the symbolic edge's curve is sin over the range of x1
    line = lines[(0, 1, 1)]
    yp = torch.as_tensor(line.get_ydata(), dtype=torch.float64)
    xs = torch.linspace(float(x[:, 1].min()), float(x[:, 1].max()), len(yp), dtype=torch.float64)
    s = torch.sin(xs)
    assert torch.allclose((yp - yp.min()) / (yp.max() - yp.min()), (s - s.min()) / (s.max() - s.min()), atol=1e-9)


def test_names_title_and_multiplication_nodes():
    model = wiggly([2, [1, 1], 1], input_names=["mass", "speed"], output_names=["energy"])
    fig = plot_network(model, uniform(100, 2), title="my net")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert {"mass", "speed", "energy"} <= set(texts)
    assert fig._suptitle.get_text() == "my net"
    assert len(edge_lines(fig)) == 2 * 3 + 2 * 1
    assert "[2, [1, 1], 1]" in plot_network(model, uniform(100, 2))._suptitle.get_text()


def test_plot_edge_shows_edge_and_its_data():
    model = wiggly([2, 3, 1])
    x = uniform(250, 2)
    fig = model.plot_edge(0, 1, 2, x, n_points=64)
    (line,) = edge_lines(fig).values()
    xp = torch.as_tensor(line.get_xdata(), dtype=torch.float64)
    assert xp[0] == pytest.approx(float(x[:, 1].min())) and xp[-1] == pytest.approx(float(x[:, 1].max()))
    inp = torch.zeros(64, 2, dtype=torch.float64)
    inp[:, 1] = xp
    expected = model.layers[0].edges(inp)[:, 2, 1].detach()
    assert torch.allclose(torch.as_tensor(line.get_ydata(), dtype=torch.float64), expected, atol=1e-12)
    dots = torch.as_tensor(fig.axes[0].collections[0].get_offsets().data)
    assert dots.shape == (250, 2)
    assert torch.allclose(dots[:, 1], model.activations(x)[0].edges[:, 2, 1].detach(), atol=1e-12)


def test_no_pyplot_figures_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sys.modules["matplotlib.pyplot"].get_fignums() if "matplotlib.pyplot" in sys.modules else []
    model = wiggly([2, 2, 1])
    plot_network(model, uniform(50, 2))
    plot_edge(model, 1, 0, 0, uniform(50, 2))
    after = sys.modules["matplotlib.pyplot"].get_fignums() if "matplotlib.pyplot" in sys.modules else []
    assert after == before
    assert list(tmp_path.iterdir()) == []


def test_plot_errors():
    model = wiggly([2, 2, 1])
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        plot_network(model, uniform(10, 3))
    with pytest.raises(ValueError, match="beta"):
        plot_network(model, uniform(10, 2), beta=0)
    with pytest.raises(ValueError, match="n_points"):
        plot_network(model, uniform(10, 2), n_points=1)
    with pytest.raises(IndexError, match="j must"):
        plot_edge(model, 0, 0, 2, uniform(10, 2))
    with pytest.raises(IndexError, match="l must"):
        plot_edge(model, 2, 0, 0, uniform(10, 2))
    with pytest.raises(ValueError, match="input_names"):
        plot_network(model, uniform(10, 2), input_names=["a"])
