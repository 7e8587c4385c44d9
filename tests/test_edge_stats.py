"""Edge statistics without (N, n_out, n_in) tensors: against the direct computation."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from kanlab import KAN
from kanlab.datasets import from_function
from kanlab.edge_stats import edge_moments, numeric_edge_std
from kanlab.kernels.common import pack_weights
from kanlab.regularization import edge_scales, layer_edge_scales


def uniform(n, d, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def scrambled(width, seed=0, **kw):
    """A KAN whose splines are far from zero (as after training), float64."""
    model = KAN(width, seed=seed, dtype=torch.float64, **kw)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in model.layers:
            layer.coef.copy_(torch.randn(layer.coef.shape, generator=gen, dtype=torch.float64))
            layer.scale_spline.uniform_(0.5, 1.5, generator=gen)
    return model


@pytest.mark.parametrize("adapted", [False, True])
def test_numeric_edge_std_equals_the_direct_std_with_gradients(adapted):
    model = scrambled([3, 4, 2], grid_eps=0.02)  # quantile-leaning grid updates
    x = uniform(300, 3) * 1.3  # partly outside the grids
    if adapted:
        model.update_grid(x)
        assert not model.layers[0]._uniform
    layer = model.layers[0]
    with torch.no_grad():
        layer.mask[1, 2] = 0.0
    h = x.clone().requires_grad_(True)
    direct = edge_scales(h, layer.edges(h))
    ours = layer_edge_scales(layer, h)
    assert torch.allclose(ours, direct, rtol=1e-11, atol=1e-14)
    g_direct = torch.autograd.grad(direct.square().sum(), [h, layer.coef, layer.scale_base])
    g_ours = torch.autograd.grad(ours.square().sum(), [h, layer.coef, layer.scale_base])
    for a, b in zip(g_ours, g_direct):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_covariance_in_chunks_equals_one_pass():
    model = scrambled([2, 3, 1])
    layer, x = model.layers[0], uniform(1000, 2)
    weight = pack_weights(layer.coef, layer.scale_base, layer.scale_spline)
    one = numeric_edge_std(layer, x.clone().requires_grad_(True), weight)
    from kanlab import edge_stats
    chunked = edge_stats.feature_covariance(layer, x, chunk_elements=64)  # 64 / (2 * 9) -> 3 samples a chunk
    var = torch.einsum("oia,iab,oib->oi", weight, chunked, weight)
    assert torch.allclose(edge_stats.smooth_std(var), one, rtol=1e-10)


def test_edge_moments_merge_chunks_exactly():
    model = scrambled([2, 3, 2])
    x = uniform(257, 2)
    _, acts = model.forward_with_activations(x)
    for a in acts:
        mean, std = edge_moments(a._edge_fn, a.inputs, 1, chunk_elements=10)  # 10 samples a chunk
        assert torch.allclose(mean, a.edges.mean(dim=0), rtol=1e-12, atol=1e-14)
        assert torch.allclose(std, a.edges.std(dim=0), rtol=1e-10, atol=1e-14)


def test_layer_activations_are_lazy_snapshots():
    model = scrambled([2, 3, 1])
    x = uniform(50, 2)
    acts = model.activations(x)
    expected = model.layers[0].edges(x)
    with torch.no_grad():
        model.layers[0].coef.mul_(3.0)  # the model changes afterwards...
    assert torch.allclose(acts[0].edges, expected, rtol=1e-13)  # ...the activations do not
    assert torch.allclose(acts[0].edge(2, 1), expected[:, 2, 1], rtol=1e-13)
    inputs, edges, outputs = acts[0]
    assert torch.allclose(edges.sum(dim=-1), outputs, rtol=1e-12)


class EdgeTensorProbe(TorchDispatchMode):
    """Records the most samples any aten op returned as a ``(samples, n_out, n_in)`` tensor."""

    def __init__(self, n_out, n_in):
        super().__init__()
        self.edges_shape, self.most = (n_out, n_in), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.dim() >= 3 and tuple(t.shape[-2:]) == self.edges_shape:
                self.most = max(self.most, t.shape[:-2].numel())
        return out


def test_no_operation_builds_a_samples_by_edges_tensor(monkeypatch):
    """fit with lamb > 0, update_grid, refine(x), activations, attribution and pruning never
    hold the first layer's edges for more than one chunk of samples."""
    from kanlab import edge_stats

    monkeypatch.setattr(edge_stats, "CHUNK_ELEMENTS", 24 * 32 * 100)  # 100 samples a chunk
    data = from_function(lambda x: torch.sin(x[:, :1]) + x[:, 1:2] ** 2, n_var=32, n_train=2048, n_test=64,
                         seed=0, dtype=torch.float64)
    model = KAN([32, 24, 1], grid_size=3, seed=0, dtype=torch.float64)
    x = data.train_input
    with EdgeTensorProbe(24, 32) as probe:
        model.fit(data, steps=2, lamb=1e-3, progress=False, max_iter=2)
        model.update_grid(x)
        model.refine(5, x)
        acts = model.activations(x)
        acts[0].edge_moments()
        model.attribute(x)
        model.prune(x)
    assert 0 < probe.most <= 100  # the chunks were seen, and nothing larger


def test_chunked_covariance_has_the_one_pass_value_and_gradient():
    """feature_covariance in chunks (checkpointed when h requires grad) against the direct
    float64 covariance of the features and its gradient."""
    from kanlab.edge_stats import _features, feature_covariance

    layer = scrambled([3, 2]).layers[0]
    h = (uniform(257, 3) * 1.2).requires_grad_(True)
    f = _features(layer, h)
    fc = f - f.mean(dim=0)
    direct = torch.einsum("nia,nib->iab", fc, fc) / (h.shape[0] - 1)
    weight = torch.randn(direct.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (g_direct,) = torch.autograd.grad((direct * weight).sum(), h)
    chunked = feature_covariance(layer, h, chunk_elements=3 * (layer.n_basis + 1) * 40)  # 7 chunks
    (g_chunked,) = torch.autograd.grad((chunked * weight).sum(), h)
    torch.testing.assert_close(chunked, direct, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_chunked, g_direct, rtol=1e-9, atol=1e-12)


def test_penalty_keeps_no_per_sample_features_for_backward(monkeypatch):
    """The regulariser's backward recomputes each chunk's features: what autograd keeps is
    far below one (N, n_in, nb + 1) feature tensor (before: the whole tensor and the basis
    recursion's intermediates, 3.3 GB extra at MNIST size)."""
    monkeypatch.setattr("kanlab.edge_stats.CHUNK_ELEMENTS", 2 ** 12)
    layer = scrambled([16, 4]).layers[0]
    h = (uniform(4096, 16) * 1.1).requires_grad_(True)
    weight = torch.randn(4, 16, layer.n_basis + 1, dtype=torch.float64, requires_grad=True)
    saved = []

    def pack(t):
        same = t.untyped_storage().data_ptr() == h.untyped_storage().data_ptr()
        saved.append(0 if same else t.numel())  # h and its chunks are the caller's
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        std = numeric_edge_std(layer, h, weight)
    std.sum().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all()
    assert sum(saved) < 0.1 * h.numel() * (layer.n_basis + 1), sum(saved)
