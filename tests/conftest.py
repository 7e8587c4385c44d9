import importlib.util
import os

import pytest
import torch

# Two cores here: more threads than cores makes OpenMP spin and everything slower.
torch.set_num_threads(min(2, int(os.environ.get("OMP_NUM_THREADS", "2"))))


@pytest.fixture
def f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(old)


def has_module(name: str) -> bool:
    """True when ``name`` can be imported (optional extras: plotting, symbolic, ...)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False
