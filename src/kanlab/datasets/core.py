"""The Dataset container and synthetic data from a function."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..validation import as_float_tensor, check_finite

__all__ = ["Dataset", "as_dataset", "is_array_tuple", "from_function"]

_KEYS = ("train_input", "train_label", "test_input", "test_label")


@dataclass
class Dataset:
    """Train and test tensors. Inputs ``(N, n_in)``; labels ``(N, n_out)`` (or ``(N,)`` class
    indices for classification). Indexable like pykan's dict: ``data["train_input"]``."""

    train_input: Tensor
    train_label: Tensor
    test_input: Tensor
    test_label: Tensor

    def __getitem__(self, key: str) -> Tensor:
        if key not in _KEYS:
            raise KeyError(f"Dataset has keys {_KEYS}, not {key!r}")
        return getattr(self, key)

    def keys(self):
        """The four names, as pykan's dict has them (``"train_input"``, ..., ``"test_label"``)."""
        return _KEYS

    def to_dict(self) -> dict[str, Tensor]:
        """A pykan-style dict of the four tensors (not copied)."""
        return {k: getattr(self, k) for k in _KEYS}

    def to(self, *args, **kwargs) -> Dataset:
        """A Dataset with every tensor moved / cast by ``Tensor.to(*args, **kwargs)``."""
        return Dataset(*(getattr(self, k).to(*args, **kwargs) for k in _KEYS))


def is_array_tuple(data) -> bool:
    """True for ``(x, y)`` or ``(x, y, x_test, y_test)``: a tuple or list of 2 or 4 arrays or
    tensors (not a list of ``(x, y)`` batches, whose items are pairs themselves)."""
    return (isinstance(data, (tuple, list)) and len(data) in (2, 4)
            and all(isinstance(a, Tensor) or hasattr(a, "__array__") for a in data)
            and not any(isinstance(a, (tuple, list)) for a in data))


def as_dataset(data, name: str = "data", dtype=None, device=None) -> Dataset:
    """A validated :class:`Dataset` (shapes, NaN, empty) from what ``fit`` takes.

    Args:
        data: a :class:`Dataset`, a pykan-style dict, or a tuple ``(x, y)`` /
            ``(x, y, x_test, y_test)``; tensors, numpy arrays or nested lists. Without test
            data the training data doubles as test data.
        dtype: floating dtype the float tensors are cast to (the model's); integer labels
            (class indices) keep theirs. None keeps the dtypes.
        device: where the tensors go (None: where they are).

    Example:
        >>> import numpy as np
        >>> ds = as_dataset((np.zeros((4, 2)), np.ones((4, 1))), dtype=torch.float32)
        >>> ds.train_input.dtype, ds.test_label.shape
        (torch.float32, torch.Size([4, 1]))
    """
    tensors = _named_tensors(data, name)
    out = {}
    for key in _KEYS:
        t = tensors[key]
        if not isinstance(t, Tensor):
            t = as_float_tensor(t, f"{name}[{key!r}]")
        if t.dim() == 0 or t.shape[0] == 0:
            raise ValueError(f"{name}[{key!r}] is empty (shape {tuple(t.shape)}); at least one sample is needed")
        if dtype is not None and t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype)
        check_finite(t, f"{name}[{key!r}]")
        out[key] = t if device is None else t.to(device)
    for split in ("train", "test"):
        n_x, n_y = out[f"{split}_input"].shape[0], out[f"{split}_label"].shape[0]
        if n_x != n_y:
            raise ValueError(f"{name}: {split}_input has {n_x} samples but {split}_label has {n_y}")
        if out[f"{split}_input"].dim() != 2:
            raise ValueError(f"{name}[{split + '_input'!r}] must have shape (N, n_features), "
                             f"got {tuple(out[split + '_input'].shape)}")
    return Dataset(**out)


def _named_tensors(data, name: str) -> dict:
    """The four entries of ``data`` by key (test = train when absent)."""
    if isinstance(data, Dataset):
        return data.to_dict()
    if is_array_tuple(data):
        tensors = dict(zip(_KEYS, data))
    elif isinstance(data, Mapping):
        missing = [k for k in ("train_input", "train_label") if k not in data]
        if missing:
            raise ValueError(f"{name} must have keys {_KEYS}; missing {missing}")
        tensors = dict(data)
    else:
        raise TypeError(f"{name} must be a kanlab.Dataset, a dict with keys {_KEYS} or a tuple (x, y) / "
                        f"(x, y, x_test, y_test), got {type(data).__name__}")
    tensors.setdefault("test_input", tensors["train_input"])
    tensors.setdefault("test_label", tensors["train_label"])
    return tensors


def from_function(f: Callable[[Tensor], Tensor], n_var: int, ranges=(-1.0, 1.0), n_train: int = 1000,
                  n_test: int = 1000, seed: int = 0, normalize_input: bool = False,
                  normalize_label: bool = False, dtype=None, device=None) -> Dataset:
    """Sample inputs uniformly in ``ranges`` and label them with ``f``.

    Args:
        f: maps ``(N, n_var)`` to ``(N,)`` or ``(N, n_out)``.
        ranges: one ``(lo, hi)`` for every variable, or one pair per variable.
        normalize_input / normalize_label: standardise with the training set's mean and std.

    Example:
        >>> data = from_function(lambda x: x[:, 0] * x[:, 1], n_var=2, n_train=10, n_test=5)
        >>> data.train_input.shape, data.train_label.shape
        (torch.Size([10, 2]), torch.Size([10, 1]))
    """
    if not isinstance(n_var, int) or n_var < 1:
        raise ValueError(f"n_var must be an integer >= 1, got {n_var!r}")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    dtype = dtype or torch.get_default_dtype()
    r = torch.as_tensor(ranges, dtype=dtype)
    if r.shape == (2,):
        r = r.expand(n_var, 2)
    if r.shape != (n_var, 2):
        raise ValueError(f"ranges must be (lo, hi) or {n_var} such pairs, got shape {tuple(r.shape)}")
    gen = torch.Generator().manual_seed(seed)

    def sample(n: int) -> Tensor:
        u = torch.rand(n, n_var, generator=gen, dtype=dtype)
        return r[:, 0] + (r[:, 1] - r[:, 0]) * u

    x_train, x_test = sample(n_train), sample(n_test)
    y_train, y_test = (_labels(f, x) for x in (x_train, x_test))
    if normalize_input:
        mu, sd = x_train.mean(0), x_train.std(0)
        x_train, x_test = (x_train - mu) / sd, (x_test - mu) / sd
    if normalize_label:
        mu, sd = y_train.mean(0), y_train.std(0)
        y_train, y_test = (y_train - mu) / sd, (y_test - mu) / sd
    data = Dataset(x_train, y_train, x_test, y_test)
    return data.to(device) if device is not None else data


def _labels(f, x: Tensor) -> Tensor:
    y = torch.as_tensor(f(x))
    if y.dim() == 1:
        y = y[:, None]
    if y.dim() != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"f must map (N, n_var) to (N,) or (N, n_out); it returned shape {tuple(y.shape)}")
    return y
