"""Weights registry and store: missing-file errors, verification, pins, stand-ins."""

from __future__ import annotations

import pytest

from avsync_bench.weights.registry import REGISTRY
from avsync_bench.weights.rule import rule_tensor
from avsync_bench.weights.standins import make_standins
from avsync_bench.weights.store import MissingWeightsError, WeightsError, WeightStore


def test_registry_entries_are_complete():
    for spec in REGISTRY.values():
        assert spec.url.startswith("https://") and spec.licence and spec.filename
    assert REGISTRY["imagebind_huge"].licence.startswith("CC BY-NC-SA 4.0")
    assert REGISTRY["fid_inception"].sha256_prefix == "6726825d"


def test_missing_weights_are_all_named_with_url_and_import_command(tmp_path):
    store = WeightStore(tmp_path)
    with pytest.raises(MissingWeightsError) as info:
        store.resolve_all(["fid_inception", "i3d_torchscript"])
    text = str(info.value)
    assert info.value.names == ["fid_inception", "i3d_torchscript"]
    for name in ("fid_inception", "i3d_torchscript"):
        spec = REGISTRY[name]
        assert str(tmp_path / spec.filename) in text and spec.url in text
        assert f"avsync-bench weights import {name}" in text


def test_import_verifies_published_prefix(tmp_path):
    fake = tmp_path / "fake.pth"
    fake.write_bytes(b"not the inception weights")
    with pytest.raises(WeightsError, match="6726825d"):
        WeightStore(tmp_path / "w").import_("fid_inception", fake)


def _torchscript(path, features=2):
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Linear(features, 2)), str(path))
    return path


def test_unpublished_checksum_is_pinned_at_import_and_enforced(tmp_path):
    store = WeightStore(tmp_path / "w")
    first = _torchscript(tmp_path / "i3d.pt")
    resolved = store.import_("i3d_torchscript", first)
    assert not resolved.standin and resolved.sha256 == store._json("pins.json")["i3d_torchscript"]
    store.path("i3d_torchscript").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="pinned"):
        store.resolve("i3d_torchscript")


def test_standins_are_marked_and_replaced_by_an_import(tmp_path):
    (resolved,) = make_standins(tmp_path / "w", ["i3d_torchscript"])
    assert resolved.standin
    real = _torchscript(tmp_path / "real.pt", features=3)
    imported = WeightStore(tmp_path / "w").import_("i3d_torchscript", real)
    assert not imported.standin


def test_a_changed_standin_is_refused_and_never_pinned_as_real(tmp_path):
    (standin,) = make_standins(tmp_path / "w", ["i3d_torchscript"])
    store = WeightStore(tmp_path / "w")
    _torchscript(store.path("i3d_torchscript"), features=3)  # overwritten by hand
    with pytest.raises(WeightsError, match="stand-in's") as info:
        store.resolve("i3d_torchscript")
    assert str(store.path("i3d_torchscript")) in str(info.value)
    assert "weights remove i3d_torchscript" in str(info.value)
    assert "i3d_torchscript" not in store._json("pins.json")
    assert store.check("i3d_torchscript")[0] == "checksum mismatch"


def test_rule_probe_values_from_the_golden_readme():
    import torch

    weight = rule_tensor("conv1.0.weight", torch.zeros(64, 1, 7, 7)).flatten()[:4]
    torch.testing.assert_close(
        weight, torch.tensor([-0.1343976, -0.0417135, -0.0394963, 0.0978763]), atol=1e-7, rtol=0
    )
    var = rule_tensor("conv1.1.running_var", torch.zeros(64))[:2]
    torch.testing.assert_close(var, torch.tensor([1.0762612, 1.6725603]), atol=1e-7, rtol=0)
