import importlib.util
import os

import pytest
import torch

# Two cores here: more threads than cores makes OpenMP spin and everything slower.
torch.set_num_threads(min(2, int(os.environ.get("OMP_NUM_THREADS", "2"))))

# KANLAB_TEST_DEVICE=cuda runs the suite on CUDA tensors: every test runs under that default
# device (tensors made without a device land there), tests that take the `device` fixture put
# their data there, and the tests in CPU_ONLY skip with their reason. Default: cpu.
TEST_DEVICE = torch.device(os.environ.get("KANLAB_TEST_DEVICE", "cpu"))
if TEST_DEVICE.type == "cpu":
    # the Triton kernels (path="triton") run in Triton's interpreter on CPU tensors; read when
    # kanlab first loads them, so set before any test runs
    os.environ.setdefault("TRITON_INTERPRET", "1")

# test file (or file::test name prefix) -> why it cannot run on a CUDA default device
CPU_ONLY = {
    "test_kernels_cpp.py": "the fused C++ kernels are CPU-only",
    "test_distributed.py": "trains with gloo on CPU processes",
}


def _cpu_only_reason(nodeid: str):
    name = nodeid.split("/")[-1]
    return next((why for key, why in CPU_ONLY.items() if name.startswith(key)), None)


@pytest.fixture
def device() -> torch.device:
    """The device the suite runs on (KANLAB_TEST_DEVICE, default cpu)."""
    return TEST_DEVICE


@pytest.fixture(autouse=True)
def _test_device(request):
    if TEST_DEVICE.type == "cpu":
        yield
        return
    reason = _cpu_only_reason(request.node.nodeid)
    if reason is not None:
        pytest.skip(f"{reason} (KANLAB_TEST_DEVICE={TEST_DEVICE})")
    with TEST_DEVICE:
        yield


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


def uniform_rows(n: int, ranges, seed: int = 0) -> torch.Tensor:
    """``n`` float64 rows drawn uniformly in ``ranges`` (one ``(lo, hi)`` per column) from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([r[0] for r in ranges], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in ranges], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, len(ranges), generator=g, dtype=torch.float64)
