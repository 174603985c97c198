"""Load a weights file through the loader that will use it, before it is pinned or installed.

A checksum pinned at first import or download only proves that later copies equal the first
one; these probes make sure the first one is the right kind of file. Each probe runs the real
loader (or, for multi-GB files, the loader's first stage: a memory-mapped ``torch.load`` and a
key check; safetensors headers) and raises :class:`WeightsError` naming the file.

``ROOT_MARKERS`` say how a downloaded folder is recognised (a Drive folder may hold the release
one or two levels down): the folder whose relative path ``marker`` exists becomes the root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from avsync_bench.errors import AVSyncBenchError

__all__ = ["probe", "find_root", "ROOT_MARKERS", "ProbeError"]


class ProbeError(AVSyncBenchError, ValueError):
    """The file does not load with the loader of its registry entry (message names the file)."""


#: Relative path that marks the root of a folder entry.
ROOT_MARKERS: dict[str, str] = {
    "avsync_classifier": "modules/audio_encoder",
    "stable_diffusion_v1_5": "unet/config.json",
    "avsyncd_avsync15": "modules/unet/config.json",
    "avsyncd_landscapes": "modules/unet/config.json",
    "avsyncd_thegreatesthits": "modules/unet/config.json",
}


def find_root(name: str, folder: Path) -> Path | None:
    """The folder under ``folder`` (itself included) holding ``ROOT_MARKERS[name]``; None if none."""
    marker = ROOT_MARKERS.get(name)
    if marker is None or (folder / marker).exists():
        return folder
    hits = sorted(p for p in folder.rglob(Path(marker).name) if p.as_posix().endswith(marker))
    if not hits:
        return None
    root = hits[0]
    for _ in Path(marker).parts:
        root = root.parent
    return root


def _torch_state(path: Path, expected_prefixes: tuple[str, ...]) -> None:
    import torch

    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (non-zip) files cannot be memory-mapped
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ProbeError(f"{path}: not a torch checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise ProbeError(f"{path}: expected a state dict (name → tensor), found {type(state)}")
    for prefix in expected_prefixes:
        if not any(str(key).startswith(prefix) for key in state):
            raise ProbeError(
                f"{path}: no '{prefix}*' keys; not the expected checkpoint "
                f"({len(state)} keys, first: {list(state)[:3]})"
            )


def _fid_inception(path: Path) -> None:
    from avsync_bench.features.inception import FIDInceptionPool3

    try:
        FIDInceptionPool3.from_file(path)
    except Exception as exc:
        raise ProbeError(f"{path}: not the FID Inception state dict ({exc})") from exc


def _i3d(path: Path) -> None:
    import torch

    try:
        torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ProbeError(f"{path}: not a TorchScript I3D detector ({exc})") from exc


def _imagebind(path: Path) -> None:
    _torch_state(path, ("modality_trunks.vision", "modality_trunks.audio", "modality_trunks.text"))


def _avid_cma(path: Path) -> None:
    _torch_state(path, ("module.audio_model.", "module.video_model."))


def _classifier(path: Path) -> None:
    from avsync_bench.models.sync_classifier import AVSyncClassifier

    try:
        AVSyncClassifier.from_official_checkpoint(path)
    except Exception as exc:
        raise ProbeError(f"{path}: not the official AV-sync classifier folder ({exc})") from exc


def _safetensors_folder(root: Path, required: tuple[str, ...]) -> None:
    from safetensors import safe_open

    for rel in required:
        file = root / rel
        if not file.is_file():
            raise ProbeError(f"{file}: missing ({root} lacks {rel})")
        try:
            if file.suffix == ".json":
                json.loads(file.read_text())
            elif file.suffix == ".safetensors":
                with safe_open(str(file), framework="pt") as handle:
                    if not list(handle.keys()):
                        raise ValueError("no tensors")
        except Exception as exc:
            raise ProbeError(f"{file}: unreadable ({exc})") from exc


def _sd15(path: Path) -> None:
    _safetensors_folder(
        path,
        (
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/vocab.json",
            "scheduler/scheduler_config.json",
        ),
    )


def _avsyncd(path: Path) -> None:
    # the places reference_model.pipeline.find_official_unet_folder accepts (not imported:
    # it pulls in diffusers, which takes seconds)
    found = [
        c for c in (path, path / "unet", path / "modules" / "unet") if (c / "config.json").is_file()
    ]
    if not found:
        raise ProbeError(
            f"{path}: no official UNet (expected checkpoint-N/modules/unet/config.json)"
        )
    unet = found[0]
    weights = [unet / "diffusion_pytorch_model.safetensors", unet / "diffusion_pytorch_model.bin"]
    present = [w for w in weights if w.is_file()]
    if not present:
        raise ProbeError(f"{unet}: no diffusion_pytorch_model.safetensors or .bin")
    if present[0].suffix == ".safetensors":
        _safetensors_folder(unet, ("config.json", present[0].name))
    else:
        _safetensors_folder(unet, ("config.json",))
        _torch_state(present[0], ("conv_in.",))


PROBES: dict[str, Callable[[Path], None]] = {
    "fid_inception": _fid_inception,
    "i3d_torchscript": _i3d,
    "imagebind_huge": _imagebind,
    "avid_cma_audioset": _avid_cma,
    "avsync_classifier": _classifier,
    "stable_diffusion_v1_5": _sd15,
    "avsyncd_avsync15": _avsyncd,
    "avsyncd_landscapes": _avsyncd,
    "avsyncd_thegreatesthits": _avsyncd,
}


def probe(name: str, path: str | Path) -> None:
    """Load ``path`` as weights ``name`` with its real loader.

    Raises:
        ProbeError: it does not load (the message names the file and the problem).
    """
    check = PROBES.get(name)
    if check is not None:
        check(Path(path))
