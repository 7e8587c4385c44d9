"""load() checks the whole header against a schema in milliseconds before it builds anything; the
checksum covers header and tensors; stale temporaries of interrupted saves are removed safely."""
import json
import os
import struct
import time

import pytest
import torch

import kanlab
from kanlab import KAN
from kanlab.io import load, remove_stale_temporaries, save


def _split(path):
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def _write(path, header, data):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _edit_config(header, **changes):
    cfg = json.loads(header["__metadata__"]["config"])
    cfg.update(changes)
    header["__metadata__"]["config"] = json.dumps(cfg)


@pytest.fixture()
def small(tmp_path):
    model = KAN([2, 3, 1], seed=0)
    model.fix_symbolic(0, 0, 0, "sin", params=(1.0, 0.0, 1.0, 0.0))
    path = tmp_path / "m.kan"
    save(model, path)
    assert path.stat().st_size < 4000
    return path


EDITS = {
    "grid_size 3000": lambda h: _edit_config(h, grid_size=3000),
    "huge width": lambda h: _edit_config(h, width=[[2, 0], [10**8, 0], [1, 0]]),
    "seed float": lambda h: _edit_config(h, seed=1.5),
    "seed string": lambda h: _edit_config(h, seed="x"),
    "input_names count": lambda h: _edit_config(h, input_names=["a"]),
    "grid_range null": lambda h: _edit_config(h, grid_range=None),
    "unknown key": lambda h: _edit_config(h, foo=1),
    "config not JSON": lambda h: h["__metadata__"].update(config="{"),
    "config NaN": lambda h: h["__metadata__"].update(config=h["__metadata__"]["config"].replace("0.1", "NaN")),
    "dtype int64": lambda h: h["__metadata__"].update(dtype="int64"),
    "dtype complex": lambda h: h["__metadata__"].update(dtype="complex64"),
    "format_version -1": lambda h: h["__metadata__"].update(format_version="-1"),
    "no checksum": lambda h: h["__metadata__"].pop("sha256"),
    "metadata not strings": lambda h: h["__metadata__"].update(extra=3),
    "symbolic out 1e8": lambda h: h["__metadata__"].update(symbolic=json.dumps(
        {"0": {"type": "SymbolicEdges", "config": {"in_features": 2, "out_features": 10**8, "names": []}}})),
    "symbolic bad layer": lambda h: h["__metadata__"].update(symbolic=json.dumps({"7": {}})),
    "symbolic list": lambda h: h["__metadata__"].update(symbolic="[1, 2]"),
    "symbolic unknown function": lambda h: h["__metadata__"].update(
        symbolic=h["__metadata__"]["symbolic"].replace('"sin"', '"os.system"')),
    "offsets string": lambda h: h["layers.0.grid"].update(data_offsets="x"),
    "offsets past the end": lambda h: h["layers.0.grid"].update(data_offsets=[0, 10**9]),
    "entry not a dict": lambda h: h.update({"layers.0.grid": 3}),
    "tensor dtype": lambda h: h["layers.0.grid"].update(dtype="I64"),
    "header emptied": lambda h: h.clear(),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_edited_header_is_rejected_in_milliseconds(small, tmp_path, name):
    header, data = _split(small)
    EDITS[name](header)
    bad = tmp_path / "bad.kan"
    _write(bad, header, data)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="bad.kan"):
        load(bad)
    assert time.perf_counter() - start < 1.0


def test_checksum_covers_the_header(small, tmp_path):
    header, data = _split(small)
    _edit_config(header, grid_eps=0.5)  # a valid config, but not the one that was saved
    _write(tmp_path / "e.kan", header, data)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load(tmp_path / "e.kan")
    header, data = _split(small)
    _write(tmp_path / "same.kan", header, data)  # re-serialised JSON: same content, still loads
    assert load(tmp_path / "same.kan").config == load(small).config


def test_grids_with_nan_or_decreasing_knots_are_rejected(tmp_path):
    for value, match in ((float("nan"), "NaN or inf"), (5.0, "non-decreasing")):
        model = KAN([2, 3, 1], seed=0)
        with torch.no_grad():
            model.layers[0].grid[0, 3] = value
        save(model, tmp_path / "g.kan")  # save writes what it is given
        with pytest.raises(ValueError, match=match):
            load(tmp_path / "g.kan")


def test_format_1_files_still_load(tmp_path):
    """A file as format version 1 wrote it (checksum of the tensor bytes only) loads bitwise."""
    import hashlib

    from safetensors.torch import save as st_save

    model = KAN([2, 3, 1], seed=4, dtype=torch.float64)
    meta = {"format": "kanlab", "format_version": "1", "kanlab_version": "0.1.0",
            "config": json.dumps(model.config.to_dict()), "dtype": "float64", "symbolic": "{}"}
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    blob = st_save(tensors, metadata=meta)
    (n,) = struct.unpack("<Q", blob[:8])
    meta["sha256"] = hashlib.sha256(blob[8 + n:]).hexdigest()
    (tmp_path / "v1.kan").write_bytes(st_save(tensors, metadata=meta))
    back = load(tmp_path / "v1.kan")
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_load_skips_the_random_initialisation(tmp_path, monkeypatch):
    """A large but valid file costs no O(G^3) initialisation fit on load."""
    model = KAN([2, 2, 1], grid_size=600, seed=0)
    save(model, tmp_path / "big.kan")
    devices = []
    monkeypatch.setattr(kanlab.layer.KANLayer, "reset_parameters",
                        lambda self, g=None: devices.append(self.coef.device.type))
    back = load(tmp_path / "big.kan")
    assert torch.equal(back.layers[0].coef, model.layers[0].coef)
    assert devices and set(devices) == {"meta"}  # built on the meta device: nothing real was computed


def test_load_to_an_unavailable_device_is_a_clear_error(small):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        load(small, device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        load(small, device="not-a-device")


def test_stale_temporaries_are_removed_safely(tmp_path):
    target = tmp_path / "m.kan"
    old = time.time() - 2 * 3600
    stale = tmp_path / ".m.kan.abcd_123.tmp"  # what an interrupted save leaves
    fresh = tmp_path / ".m.kan.zzzz9999.tmp"  # a save running right now in another process
    other = tmp_path / ".other.kan.abcd1234.tmp"  # another file's temporary
    lookalike = tmp_path / ".m.kan.abcd1234.tmp.keep"  # not our pattern
    for p in (stale, fresh, other, lookalike):
        p.write_bytes(b"partial")
    for p in (stale, other, lookalike):
        os.utime(p, (old, old))
    save(KAN([2, 3, 1]), target)
    assert not stale.exists()
    assert fresh.exists() and other.exists() and lookalike.exists()
    assert remove_stale_temporaries(target) == []
    load(target)
