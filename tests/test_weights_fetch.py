"""weights fetch/verify/import/remove without network: a local HTTP server, Hub and Drive fakes."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.weights import registry
from avsync_bench.weights.download import git_blob_sha1
from avsync_bench.weights.fetch import FetchError, fetch_all
from avsync_bench.weights.store import WeightStore


@pytest.fixture(scope="module")
def i3d_bytes(tmp_path_factory) -> bytes:
    from avsync_bench.features.i3d import write_standin

    path = tmp_path_factory.mktemp("i3d") / "i3d.pt"
    write_standin(path)
    return path.read_bytes()


class _Server(http.server.ThreadingHTTPServer):
    payload = b""
    drop_first_at: int | None = None  # close the first response after this many bytes
    requests: list


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        server, data = self.server, self.server.payload
        server.requests.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if server.drop_first_at is not None and len(server.requests) == 1:
            self.wfile.write(data[start : server.drop_first_at])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the peer sees a truncated body
            return
        self.wfile.write(data[start:])


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def no_sleep(monkeypatch):
    from huggingface_hub import constants, file_download

    monkeypatch.setattr(file_download.time, "sleep", lambda seconds: None)
    # the downloader writes whole chunks: make them smaller than the test file
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)


def _serve(monkeypatch, server, name: str, **changes) -> registry.WeightSpec:
    url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
    spec = dataclasses.replace(registry.REGISTRY[name], url=url, **changes)
    monkeypatch.setitem(registry.REGISTRY, name, spec)
    return spec


def test_url_fetch_complete_is_probed_pinned_and_atomic(tmp_path, server, monkeypatch, i3d_bytes):
    server.payload = i3d_bytes
    _serve(monkeypatch, server, "i3d_torchscript")
    store = WeightStore(tmp_path)
    resolved = fetch_all(store, ["i3d_torchscript"], progress=False)["i3d_torchscript"]
    assert resolved.path.read_bytes() == i3d_bytes
    assert store._json("pins.json")["i3d_torchscript"] == hashlib.sha256(i3d_bytes).hexdigest()
    assert not list(tmp_path.glob("*.incomplete"))
    assert store.check("i3d_torchscript") == ("pinned", store.check("i3d_torchscript")[1])


def test_url_fetch_resumes_after_the_server_drops_mid_file(
    tmp_path, server, monkeypatch, i3d_bytes, no_sleep
):
    server.payload, server.drop_first_at = i3d_bytes, len(i3d_bytes) // 3
    _serve(monkeypatch, server, "i3d_torchscript")
    resolved = WeightStore(tmp_path).fetch("i3d_torchscript", progress=False)
    assert resolved.path.read_bytes() == i3d_bytes
    assert server.requests[0] is None and len(server.requests) == 2
    resumed_at = int(server.requests[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(i3d_bytes) // 3  # resumed from the bytes kept, not from 0


def test_url_fetch_resumes_a_kept_incomplete_file(tmp_path, server, monkeypatch, i3d_bytes):
    server.payload = i3d_bytes
    _serve(monkeypatch, server, "i3d_torchscript")
    (tmp_path / "i3d_torchscript.pt.incomplete").write_bytes(i3d_bytes[:1000])
    resolved = WeightStore(tmp_path).fetch("i3d_torchscript", progress=False)
    assert resolved.path.read_bytes() == i3d_bytes and server.requests == ["bytes=1000-"]


def test_url_checksum_mismatch_is_refused_by_name_and_nothing_pinned(
    tmp_path, server, monkeypatch, i3d_bytes
):
    server.payload = i3d_bytes
    _serve(monkeypatch, server, "i3d_torchscript", sha256="0" * 64)
    store = WeightStore(tmp_path)
    with pytest.raises(FetchError, match=r"i3d_torchscript\.pt.*does not match the published"):
        store.fetch("i3d_torchscript", progress=False)
    assert not store.path("i3d_torchscript").exists() and not list(tmp_path.glob("*.incomplete"))
    assert "i3d_torchscript" not in store._json("pins.json")


def test_garbage_download_is_refused_by_the_loader(tmp_path, server, monkeypatch):
    server.payload = b"<html>Dropbox says: log in</html>"
    _serve(monkeypatch, server, "i3d_torchscript")
    store = WeightStore(tmp_path)
    with pytest.raises(FetchError, match="not a TorchScript I3D detector"):
        store.fetch("i3d_torchscript", progress=False)
    assert not store.path("i3d_torchscript").exists() and store._json("pins.json") == {}


def test_offline_names_every_missing_entry_with_source_and_import(tmp_path, monkeypatch, server):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _serve(monkeypatch, server, "i3d_torchscript")
    with pytest.raises(FetchError) as info:
        fetch_all(WeightStore(tmp_path), None, progress=False)
    assert set(info.value.failures) == set(registry.REGISTRY) and server.requests == []
    text = str(info.value)
    for name in registry.REGISTRY:
        assert f"avsync-bench weights import {name} " in text
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5@451f4fe" in text


def test_no_route_keeps_going_and_never_pins(tmp_path, monkeypatch, no_sleep):
    spec = dataclasses.replace(registry.REGISTRY["i3d_torchscript"], url="http://127.0.0.1:9/x")
    monkeypatch.setitem(registry.REGISTRY, "i3d_torchscript", spec)
    store = WeightStore(tmp_path)
    with pytest.raises(FetchError, match="ConnectError") as info:
        fetch_all(store, ["i3d_torchscript"], progress=False)
    assert list(info.value.failures) == ["i3d_torchscript"]
    assert not store.path("i3d_torchscript").exists() and store._json("pins.json") == {}


# ---------------------------------------------------------------- Hub and Drive fakes


def _write_sd15(root: Path) -> None:
    from safetensors.torch import save_file

    for rel, data in {
        "model_index.json": {"_class_name": "StableDiffusionPipeline"},
        "scheduler/scheduler_config.json": {"_class_name": "PNDMScheduler"},
        "tokenizer/vocab.json": {"a": 0},
        "text_encoder/config.json": {"model_type": "clip_text_model"},
        "unet/config.json": {"_class_name": "UNet2DConditionModel"},
        "vae/config.json": {"_class_name": "AutoencoderKL"},
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(data))
    for rel in ("text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                "vae/diffusion_pytorch_model.safetensors"):  # fmt: skip
        save_file({"w": torch.arange(4.0) + len(rel)}, str(root / rel))


class FakeHub:
    """``list_repo_tree`` / ``snapshot_download`` / ``repo_info`` replacements recording calls."""

    def __init__(self, monkeypatch, writer, prefix="", lie_about=None, head="c0ffee" * 6 + "abcd"):
        self.calls, self.writer, self.prefix, self.lie_about, self.head = (
            [],
            writer,
            prefix,
            lie_about,
            head,
        )
        self.source = None
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", self.tree)
        monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", self.info)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot)

    def _files(self, tmp: Path) -> Path:
        if self.source is None:
            self.source = tmp
            self.writer(tmp / self.prefix if self.prefix else tmp)
        return self.source

    def info(self, repo_id, repo_type=None, **kwargs):
        self.calls.append(("repo_info", repo_id, repo_type))
        return SimpleNamespace(sha=self.head)

    def tree(self, repo_id, path_in_repo=None, **kwargs):
        self.calls.append(("list_repo_tree", repo_id, path_in_repo, kwargs))
        root = self._files(self.tmp)
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            sha = hashlib.sha256(file.read_bytes()).hexdigest()
            lfs = None
            if file.suffix == ".safetensors":
                lfs = SimpleNamespace(sha256="f" * 64 if rel == self.lie_about else sha)
            yield SimpleNamespace(
                path=rel, size=file.stat().st_size, blob_id=git_blob_sha1(file), lfs=lfs
            )

    def snapshot(self, repo_id, *, repo_type, revision, allow_patterns, local_dir, **kwargs):
        import fnmatch
        import shutil

        self.calls.append(("snapshot_download", repo_id, repo_type, revision, allow_patterns))
        root = self._files(self.tmp)
        for file in root.rglob("*"):
            rel = file.relative_to(root).as_posix()
            if file.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, Path(local_dir) / rel)
        return local_dir


def test_hub_fetch_pins_commit_patterns_and_published_sha256(tmp_path, monkeypatch):
    hub = FakeHub(monkeypatch, _write_sd15)
    hub.tmp = tmp_path / "remote"
    store = WeightStore(tmp_path / "w")
    resolved = store.fetch("stable_diffusion_v1_5", progress=False)
    snapshot = [c for c in hub.calls if c[0] == "snapshot_download"]
    assert snapshot == [
        ("snapshot_download", "stable-diffusion-v1-5/stable-diffusion-v1-5", "model",
         "451f4fe16113bff5a5d2269ed5ad43b0592e9a14", list(registry.SD15_PATTERNS)),
    ]  # fmt: skip
    tree = [c for c in hub.calls if c[0] == "list_repo_tree"][0]
    assert tree[3]["expand"] is True and tree[3]["revision"] == registry.SD15_REVISION
    assert (resolved.path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert store.check("stable_diffusion_v1_5")[0] == "verified"
    manifest = store._json("manifests.json")["stable_diffusion_v1_5"]
    assert manifest["revision"] == registry.SD15_REVISION and len(manifest["files"]) == 9


def test_hub_file_differing_from_published_lfs_sha256_is_refused(tmp_path, monkeypatch):
    bad = "unet/diffusion_pytorch_model.safetensors"
    hub = FakeHub(monkeypatch, _write_sd15, lie_about=bad)
    hub.tmp = tmp_path / "remote"
    store = WeightStore(tmp_path / "w")
    with pytest.raises(FetchError, match=f"{bad}: sha256 .* != published LFS sha256 f+"):
        store.fetch("stable_diffusion_v1_5", progress=False)
    assert not store.path("stable_diffusion_v1_5").exists() and store._json("pins.json") == {}


def _write_avsyncd_unet(root: Path) -> None:
    from safetensors.torch import save_file

    unet = root / "modules" / "unet"
    unet.mkdir(parents=True)
    (unet / "config.json").write_text(json.dumps({"_class_name": "UNet3DConditionModel"}))
    save_file({"conv_in.weight": torch.ones(2)}, str(unet / "diffusion_pytorch_model.safetensors"))


def test_space_checkpoint_pins_the_head_commit_and_strips_the_folder(tmp_path, monkeypatch):
    source = registry.REGISTRY["avsyncd_avsync15"].hub
    hub = FakeHub(monkeypatch, _write_avsyncd_unet, prefix=source.subfolder)
    hub.tmp = tmp_path / "remote"
    store = WeightStore(tmp_path / "w")
    resolved = store.fetch("avsyncd_avsync15", progress=False)
    assert ("repo_info", "Linz99/ASVA", "space") in hub.calls
    (snapshot,) = [c for c in hub.calls if c[0] == "snapshot_download"]
    assert snapshot[1:] == ("Linz99/ASVA", "space", hub.head, list(source.allow_patterns))
    assert source.allow_patterns == (
        "checkpoints/audio-cond_animation/avsync15_audio-cond_cfg/ckpts/checkpoint-37000/modules/unet/*",
    )
    assert (resolved.path / "modules" / "unet" / "config.json").is_file()
    assert store._json("revisions.json") == {"avsyncd_avsync15": hub.head}


@pytest.mark.parametrize("how", ["empty listing", "404"])
def test_space_without_the_files_falls_back_to_the_drive_folder(tmp_path, monkeypatch, how):
    import gdown
    from huggingface_hub.errors import EntryNotFoundError

    hub = FakeHub(monkeypatch, lambda root: root.mkdir(parents=True))
    hub.tmp = tmp_path / "remote"
    if how == "404":

        def missing_folder(*args, **kwargs):
            raise EntryNotFoundError("404: checkpoints/audio-cond_animation/… not found")

        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", missing_folder)
    seen = []

    def fake_download_folder(url, output, quiet, resume):
        seen.append((url, resume))
        _write_avsyncd_unet(Path(output) / "avsync15" / "checkpoint-37000")
        return [str(p) for p in Path(output).rglob("*") if p.is_file()]

    monkeypatch.setattr(gdown, "download_folder", fake_download_folder)
    store = WeightStore(tmp_path / "w")
    resolved = store.fetch("avsyncd_avsync15", progress=False)
    assert seen == [(registry.DRIVE_AVSYNC15, True)]
    assert (resolved.path / "modules" / "unet" / "config.json").is_file()  # nested root lifted
    assert store.check("avsyncd_avsync15")[0] == "pinned"


def test_drive_classifier_folder_is_probed_then_pinned(tmp_path, monkeypatch):
    import shutil

    import gdown

    from avsync_bench.features.sync import write_standin

    release = tmp_path / "release"
    write_standin(release)
    urls = []

    def fake_download_folder(url, output, quiet, resume):
        urls.append(url)
        shutil.copytree(release, Path(output) / "checkpoint-40000")
        return [str(p) for p in Path(output).rglob("*") if p.is_file()]

    monkeypatch.setattr(gdown, "download_folder", fake_download_folder)
    store = WeightStore(tmp_path / "w")
    resolved = store.fetch("avsync_classifier", progress=False)
    assert urls == [registry.REGISTRY["avsync_classifier"].url]
    assert (resolved.path / "modules" / "head" / "config.json").is_file()
    (resolved.path / "modules" / "head" / "config.json").write_text("{}")
    assert store.check("avsync_classifier", fresh=True)[0] == "checksum mismatch"


# ---------------------------------------------------------------- import, remove, verify (CLI)


def _cli(args, home: Path):
    return CliRunner().invoke(app, args, env={"AVSYNC_BENCH_HOME": str(home)})


@pytest.mark.parametrize("name", ["i3d_torchscript", "imagebind_huge"])
def test_import_of_junk_is_refused_naming_the_file_and_nothing_pinned(tmp_path, name):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not weights")
    result = _cli(["weights", "import", name, str(junk)], tmp_path / "home")
    assert result.exit_code == 1 and "junk.pt" in result.output and "refused" in result.output
    store = WeightStore(tmp_path / "home" / "weights")
    assert not store.path(name).exists() and store._json("pins.json") == {}


def test_remove_then_reimport_and_verify_flags_a_tampered_file(tmp_path, i3d_bytes):
    home = tmp_path / "home"
    first, second = tmp_path / "one.pt", tmp_path / "two.pt"
    first.write_bytes(i3d_bytes)
    assert _cli(["weights", "import", "i3d_torchscript", str(first)], home).exit_code == 0
    store = WeightStore(home / "weights")
    import torch as _torch

    _torch.jit.save(_torch.jit.script(_torch.nn.Linear(2, 2)), str(second))
    refused = _cli(["weights", "import", "i3d_torchscript", str(second)], home)
    assert refused.exit_code == 1 and "weights remove i3d_torchscript" in refused.output
    assert _cli(["weights", "verify"], home).exit_code == 0
    store.path("i3d_torchscript").write_bytes(i3d_bytes + b"x")
    verify = _cli(["weights", "verify"], home)
    assert (
        verify.exit_code == 1 and "i3d_torchscript" in verify.output and "mismatch" in verify.output
    )
    removed = _cli(["weights", "remove", "i3d_torchscript"], home)
    assert removed.exit_code == 0 and "pins.json entry" in removed.output
    assert "i3d_torchscript" not in store._json("pins.json")
    assert _cli(["weights", "import", "i3d_torchscript", str(second)], home).exit_code == 0
