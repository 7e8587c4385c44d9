"""The Python API without traps: numpy or tensors, (x, y) tuples, dtype casts and checks,
case-insensitive options, pykan's spellings."""
import numpy as np
import pytest
import torch

import kanlab
from kanlab import KAN
from kanlab.compat import translate


def _xy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, (X[:, 0] * X[:, 1] + np.sin(X[:, 1]))[:, None]


def _fit(data, **kw):
    model = KAN([2, 3, 1], grid_size=3, seed=0)
    return model, model.fit(data, **dict(dict(steps=2, progress=False), **kw))


def test_fit_takes_tuples_of_arrays_and_casts_to_the_model_dtype():
    X, y = _xy()
    Xt, yt = _xy(32, seed=1)
    ref_model, ref = _fit(kanlab.Dataset(*(torch.tensor(a, dtype=torch.float32) for a in (X, y, Xt, yt))))
    model, hist = _fit((X, y, Xt, yt))  # numpy float64 into a float32 model: cast, same numbers
    assert hist.train_rmse == ref.train_rmse and hist.test_rmse == ref.test_rmse
    assert next(model.parameters()).dtype == torch.float32
    _, pair = _fit((torch.tensor(X), torch.tensor(y[:, 0])))  # tensors, float64, (N,) labels for one output
    assert pair.train_rmse == ref.train_rmse and pair.test_rmse == ref.train_rmse  # no test data: the train set
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y)),
                                         batch_size=16)
    _, batches = _fit(loader, test_data=(Xt, yt))
    assert len(batches.train_loss) == 2 and np.isfinite(batches.test_rmse).all()


def test_model_takes_arrays_and_names_dtype_mismatches():
    model = KAN([2, 3, 1], seed=0)
    X, _ = _xy(8)
    expect = model(torch.tensor(X, dtype=torch.float32))
    assert torch.equal(model(X), expect) and torch.equal(model(X.tolist()), expect)
    with pytest.raises(TypeError, match=r"torch\.float64.*torch\.float32"):
        model(torch.tensor(X))
    with pytest.raises(TypeError, match="floating"):
        model(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        model(np.zeros((3, 5)))


def test_option_strings_are_case_insensitive():
    X, y = _xy()
    _, ref = _fit((X, y), optimizer="lbfgs", loss="mse")
    _, upper = _fit((X, y), optimizer="LBFGS", loss="MSE")
    assert upper.train_loss == ref.train_loss
    with pytest.raises(ValueError, match="optimizer must be one of"):
        _fit((X, y), optimizer="sgd")


def test_pykan_spellings_work_or_name_kanlabs():
    X, y = _xy()
    _, ref = _fit((X, y), optimizer="lbfgs")
    _, pykan = _fit((X, y), opt="LBFGS", batch=-1)
    assert pykan.train_loss == ref.train_loss
    with pytest.raises(TypeError, match="callbacks"):
        _fit((X, y), img_folder="./video")
    with pytest.raises(TypeError, match="give optimizer= only"):
        _fit((X, y), opt="Adam", optimizer="adam")
    assert translate("prune", {"node_th": 0.1, "edge_th": 0.2}) == {"node_threshold": 0.1, "edge_threshold": 0.2}
    model = KAN([2, 3, 1], seed=0)
    with pytest.raises(TypeError, match=r"needs the data x.*auto_symbolic\(x"):
        model.auto_symbolic(lib=["x", "sin"])
    with pytest.raises(TypeError, match="needs the data x"):
        model.prune(node_th=0.1)
    pytest.importorskip("sympy")
    choices = model.auto_symbolic(torch.tensor(X, dtype=torch.float32), lib=["x", "x^2"])
    assert {c.name for c in choices} <= {"x", "x^2", "0"}  # lib= reached the library argument
