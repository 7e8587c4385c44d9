"""save / load round trips (bitwise), clear errors for bad files; deepcopy / pickle / state_dict."""
import copy
import json
import pickle
import struct

import pytest
import torch

import kanlab
from kanlab import KAN
from kanlab.io import FORMAT_VERSION, load, save
from conftest import has_module


def _trained(width, dtype=torch.float64, seed=0):
    model = KAN(width=width, grid_size=4, seed=seed, dtype=dtype, input_names=None)
    x = torch.rand(64, model.n_inputs, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 2 - 1
    model.update_grid(x * 0.7 + 0.1)  # a non-uniform grid
    with torch.no_grad():
        for layer in model.layers:
            layer.coef.add_(torch.randn(layer.coef.shape, dtype=dtype, generator=torch.Generator().manual_seed(2)))
    return model, x


def _assert_same(a: KAN, b: KAN, x):
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    assert torch.equal(a(x), b(x))
    for la, lb in zip(a.layers, b.layers):
        assert la._uniform == lb._uniform


@pytest.mark.parametrize("width,dtype", [([2, 3, 1], torch.float64), ([2, [1, 2], 1], torch.float64),
                                         ([3, [2, 1], [1, 1], 2], torch.float32)])
def test_round_trip_bitwise(tmp_path, width, dtype):
    model, x = _trained(width, dtype)
    path = tmp_path / "m.kan"
    assert save(model, path) is True
    back = kanlab.load(path)
    _assert_same(model, back, x)
    assert next(back.parameters()).dtype == dtype
    assert not [p for p in tmp_path.iterdir() if p.name != "m.kan"]  # no temp files left


def test_round_trip_names_refined_masked(tmp_path):
    model = KAN(width=[2, 3, 1], grid_size=3, seed=4, dtype=torch.float64, input_names=["a", "b"],
                output_names=["y"]).refine(7)
    with torch.no_grad():  # what pruning leaves behind: masked edges
        model.layers[0].mask[1, 0] = 0.0
    model.save(tmp_path / "m.kan")  # the KAN.save delegation
    back = load(tmp_path / "m.kan")
    _assert_same(model, back, torch.rand(10, 2, dtype=torch.float64))
    assert back.config.input_names == ("a", "b") and back.config.grid_size == 7


@pytest.mark.skipif(not has_module("kanlab.pruning"), reason="kanlab.pruning not present")
def test_round_trip_pruned(tmp_path):
    model, x = _trained([2, 4, 1])
    pruned = model.prune(x, node_threshold=0.5, edge_threshold=0.5)
    pruned.save(tmp_path / "p.kan")
    _assert_same(pruned, load(tmp_path / "p.kan"), x)



@pytest.mark.skipif(not has_module("kanlab.symbolic.edges"), reason="kanlab.symbolic not present")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_round_trip_real_symbolic(tmp_path, dtype):
    model, x = _trained([2, [2, 1], 1], dtype)
    model.fix_symbolic(0, 0, 1, "sin", x)
    model.fix_symbolic(1, 2, 0, "x^2", x)
    assert set(model.symbolic.keys()) == {"0", "1"}
    model.save(tmp_path / "sym.kan")
    back = load(tmp_path / "sym.kan")
    _assert_same(model, back, x)
    assert back.symbolic["0"].config_dict() == model.symbolic["0"].config_dict()


def _raw(path):
    return bytearray(path.read_bytes())


def test_errors_name_path_and_problem(tmp_path):
    model, _ = _trained([2, 2, 1])
    good = tmp_path / "good.kan"
    save(model, good)
    blob = _raw(good)
    cases = {
        "missing.kan": None,
        "empty.kan": b"",
        "truncated.kan": bytes(blob[: len(blob) - 20]),
        "header_cut.kan": bytes(blob[:40]),
        "garbage.kan": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "text.kan": b"hello, this is not a model at all, just a text file",
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            load(path)


def _rewrite_meta(src, dst, **changes):
    blob = src.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header["__metadata__"].update(changes)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + blob[8 + n:])


def test_foreign_newer_and_mismatched_files(tmp_path):
    from safetensors.torch import save_file

    model, _ = _trained([2, 2, 1])
    good = tmp_path / "good.kan"
    save(model, good)
    save_file({"w": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a kanlab model"):
        load(tmp_path / "foreign.safetensors")
    _rewrite_meta(good, tmp_path / "newer.kan", format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="newer|upgrade"):
        load(tmp_path / "newer.kan")
    cfg = model.config.to_dict()
    cfg["width"] = [2, 3, 1]
    _rewrite_meta(good, tmp_path / "mismatch.kan", config=json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match"):
        load(tmp_path / "mismatch.kan")
    _rewrite_meta(good, tmp_path / "badsym.kan", symbolic=json.dumps({"0": {"type": "os.system", "config": {}}}))
    with pytest.raises(ValueError, match="unknown symbolic"):
        load(tmp_path / "badsym.kan")
    for where in (10, -5):  # one flipped bit in the header, one in the tensor data
        blob = _raw(good)
        blob[where] ^= 0x10
        (tmp_path / "flipped.kan").write_bytes(bytes(blob))
        with pytest.raises(ValueError, match="flipped.kan"):
            load(tmp_path / "flipped.kan")


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    model, x = _trained([2, 2, 1])
    path = tmp_path / "m.kan"
    save(model, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("kanlab.io.os.replace", boom)
    with pytest.raises(OSError):
        save(KAN(width=[2, 2, 1], seed=9, dtype=torch.float64), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.kan"]
    with pytest.raises(ValueError, match="does not exist"):
        save(model, tmp_path / "no_dir" / "m.kan")


@pytest.mark.parametrize("width", [[2, 3, 1], [2, [1, 2], 1]])
def test_deepcopy_pickle_state_dict(width):
    model, x = _trained(width)
    _assert_same(model, copy.deepcopy(model), x)
    _assert_same(model, pickle.loads(pickle.dumps(model)), x)
    fresh = KAN(config=model.config, dtype=torch.float64)
    fresh.load_state_dict(model.state_dict())
    _assert_same(model, fresh, x)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.layers[0].coef.add_(1.0)
    assert not torch.equal(clone(x), model(x))  # the copy is independent


@pytest.mark.skipif(not (has_module("kanlab.symbolic.edges") and has_module("kanlab.pruning")),
                    reason="kanlab.symbolic / kanlab.pruning not present")
def test_round_trip_symbolic_then_pruned(tmp_path):
    """Symbolic edges fixed before pruning are restricted with the pruned layers and saved."""
    model, x = _trained([2, 4, 1])
    model.fix_symbolic(0, 0, 1, "sin", x)
    model.fix_symbolic(1, 1, 0, "x^2", x)
    with torch.no_grad():  # hidden nodes 2, 3 barely reach the output
        model.layers[1].scale_base[:, 2:] *= 1e-6
        model.layers[1].scale_spline[:, 2:] *= 1e-6
    pruned = model.prune(x, edge_threshold=0.0)
    assert pruned.width == [2, 2, 1]
    assert pruned.symbolic["0"].names[1][0] == "sin" and pruned.symbolic["1"].names[0][1] == "x^2"
    pruned.save(tmp_path / "ps.kan")
    back = load(tmp_path / "ps.kan")
    _assert_same(pruned, back, x)
    assert back.symbolic["0"].config_dict() == pruned.symbolic["0"].config_dict()
