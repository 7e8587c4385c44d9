"""Export of a trained KAN: ONNX (run by onnxruntime), torch.export, TorchScript, torch.compile."""
import numpy as np
import pytest
import torch
from torch import nn

import kanlab
from kanlab import KAN
from kanlab.export import compile_model, example_input, to_exported_program, to_onnx, to_torchscript
from conftest import has_module


class _SinEdges(nn.Module):
    """A stand-in for symbolic edges: a * sin(b x + c), active on some edges. (N, n_in) -> (N, n_out)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.abc = nn.Parameter(torch.randn(3, n_out, n_in, generator=g))
        self.register_buffer("active", (torch.rand(n_out, n_in, generator=g) > 0.5).float())

    def edges(self, x):
        a, b, c = self.abc
        return self.active * a * torch.sin(b * x[:, None, :] + c)

    def forward(self, x):
        return self.edges(x).sum(-1)


@pytest.fixture(scope="module")
def trained():
    """A trained float32 model with multiplication nodes, adapted grids and symbolic edges."""
    data = kanlab.datasets.from_function(lambda x: torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 2])], 1), n_var=3,
                                         n_train=200, n_test=50, seed=0)
    model = KAN(width=[3, [2, 1], 2], grid_size=5, seed=0)
    model.fit(data, steps=2, progress=False)
    model.symbolic["1"] = _SinEdges(3, 2)
    return model


def _inputs(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g) * 2.6 - 1.3  # partly outside the grids


def test_onnx_matches_pytorch(tmp_path, trained):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = to_onnx(trained, example_input(trained), tmp_path / "model.onnx")  # torch.onnx.export's order
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    for n in (1, 37):
        x = _inputs(n, n)
        (y,) = session.run(None, {"x": x.numpy()})
        expect = trained(x).detach().numpy()
        assert y.shape == expect.shape == (n, 2)
        np.testing.assert_allclose(y, expect, rtol=0, atol=1e-5)


def test_torch_export_and_torchscript(tmp_path, trained):
    program = to_exported_program(trained)
    ts = to_torchscript(trained)
    ts.save(str(tmp_path / "model.pt"))
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    for n in (2, 53):
        x = _inputs(n, n)
        expect = trained(x)
        torch.testing.assert_close(program.module()(x), expect, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(loaded(x), expect, rtol=1e-6, atol=1e-6)


def test_torch_compile_fullgraph(trained):
    torch._dynamo.reset()
    fast = compile_model(trained, backend="eager", fullgraph=True)  # graph capture without breaks
    for n in (5, 41):
        x = _inputs(n, n)
        torch.testing.assert_close(fast(x), trained(x), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_torch_compile_inductor(trained):
    torch._dynamo.reset()
    fast = compile_model(trained)
    x = _inputs(64, 0)
    torch.testing.assert_close(fast(x), trained(x), rtol=1e-5, atol=1e-5)


def test_example_input_and_errors(trained, tmp_path):
    x = example_input(trained, batch=4)
    assert x.shape == (4, 3) and x.dtype == torch.float32
    grid = trained.layers[0].grid
    assert bool((x >= grid[:, 3]).all() and (x <= grid[:, -4]).all())
    with pytest.raises(TypeError, match="kanlab.KAN"):
        to_onnx(nn.Linear(2, 2), f=tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="does not exist"):
        to_onnx(trained, x, tmp_path / "missing" / "m.onnx")
    # the old order (model, path, example) still finds the path, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="torch.onnx.export's order"), \
            pytest.raises(ValueError, match="missing"):
        to_onnx(trained, tmp_path / "missing" / "m.onnx", x)
    with pytest.raises(TypeError, match="output file"):
        to_onnx(trained, x)
    with pytest.raises(TypeError, match="example input tensor"):
        to_onnx(trained, [1.0, 2.0], tmp_path / "m.onnx")



@pytest.mark.skipif(not has_module("kanlab.symbolic.edges"), reason="kanlab.symbolic not present")
def test_export_with_real_symbolic_edges():
    model = KAN(width=[2, [2, 1], 1], seed=0)
    x = _inputs(64, 3)[:, :2]
    model.fix_symbolic(0, 0, 1, "sin", x)
    model.fix_symbolic(1, 2, 0, "x^2", x)
    program = to_exported_program(model)
    x = _inputs(9, 4)[:, :2]
    torch.testing.assert_close(program.module()(x), model(x), rtol=1e-6, atol=1e-6)
