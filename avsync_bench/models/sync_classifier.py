"""The ASVA audio-video synchronisation classifier (PROTOCOL.md §3), as plain torch modules.

The classifier scores how well a 2 s audio clip matches a 12-frame (6 fps) video clip with one
unbounded logit φ; RelSync and AlignSync (PROTOCOL.md §2) are built on φ. It has three parts:

- :class:`AudioConv2DNet`: the AVID-CMA audio network, mel (B, 1, 128, 204) → (B, 512);
- :class:`VideoR2Plus1DNet`: the AVID-CMA R(2+1)D-18 video network,
  frames (B, 3, 12, 224, 224) → (B, 512);
- :class:`FCHead`: an MLP on the concatenated features, (B, 1024) → (B, 1).

Parameter and buffer names equal the official ones (``lzhangbj/ASVA``, ``avsync/models/``), so
the released checkpoint folder ``modules/{audio_encoder,video_encoder,head}/`` loads with
``strict=True`` (:meth:`AVSyncClassifier.from_official_checkpoint`) and the deterministic weight
rule of ``golden/README.md`` §1 gives the same weights as in the official modules. Unlike the
official code, nothing here reads the AVID-CMA file when loading a trained checkpoint: the
saved ``pretrained: true`` flag is ignored, because every weight it would have loaded is
overwritten by the checkpoint anyway.

The three parts are diffusers ``ModelMixin``/``ConfigMixin`` models, as in the official code,
so one save/load path serves the released checkpoint, checkpoints written by
``avsync-bench train-classifier`` (:meth:`AVSyncClassifier.save_pretrained`) and the official
loader (``AudioConv2DNet.from_pretrained(<modules>/audio_encoder, use_safetensors=False)``).
Their configs take the official arguments plus ``channels`` (encoder widths; the official widths
by default), which only reduced test configs change.

Every module works in float32 and is meant to be used in ``eval()`` mode (BatchNorm running
statistics, dropout 0) for scoring; :meth:`AVSyncClassifier.from_official_checkpoint` returns
models in eval mode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

import avsync_bench  # noqa: F401  (_compat; already run, as this module is in the package)
from avsync_bench.models.sync_encoders import (
    OFFICIAL_CHANNELS,
    AudioConv2DNet,
    FCHead,
    VideoR2Plus1DNet,
)

__all__ = [
    "AudioConv2DNet",
    "VideoR2Plus1DNet",
    "FCHead",
    "AVSyncClassifier",
    "MODULE_NAMES",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "OFFICIAL_CHANNELS",
]

#: The sub-module names, also the sub-folder names of the official checkpoint's ``modules/``.
MODULE_NAMES = ("audio_encoder", "video_encoder", "head")
#: File names of each sub-folder (diffusers' names; the weights are a torch pickle, as released).
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.bin"
_OFFICIAL_CLASS_NAMES = {
    "audio_encoder": "AudioConv2DNet",
    "video_encoder": "VideoR2Plus1DNet",
    "head": "FCHead",
}
_AVID_CMA_PREFIXES = {
    "audio_encoder": "module.audio_model.",
    "video_encoder": "module.video_model.",
}
# BatchNorm fills a missing ``num_batches_tracked`` itself when loading a plain dict; old
# checkpoints (AVID-CMA, 2020) may lack it, and the official strict load accepts that.
_OPTIONAL_SUFFIX = "num_batches_tracked"


# --------------------------------------------------------------------------------------------
# Classifier
# --------------------------------------------------------------------------------------------


class AVSyncClassifier(nn.Module):
    """The AV-sync classifier: φ = head(audio_encoder(mel), video_encoder(frames))[:, 0].

    Source: PROTOCOL.md §3 (official ``avsync/models/avsync_classifier.py``). φ is an unbounded
    float32 logit (higher = better synchronised); RelSync compares two φ values with a softmax
    (PROTOCOL.md §2). ``state_dict`` keys are ``audio_encoder.*``, ``video_encoder.*`` and
    ``head.*``, each part keyed exactly as the official module.

    Args:
        audio_encoder: an :class:`AudioConv2DNet` (a fresh one when None).
        video_encoder: a :class:`VideoR2Plus1DNet` (a fresh one when None).
        head: an :class:`FCHead` (a fresh default one when None).
    """

    def __init__(
        self,
        audio_encoder: AudioConv2DNet | None = None,
        video_encoder: VideoR2Plus1DNet | None = None,
        head: FCHead | None = None,
    ):
        super().__init__()
        self.audio_encoder = audio_encoder if audio_encoder is not None else AudioConv2DNet()
        self.video_encoder = video_encoder if video_encoder is not None else VideoR2Plus1DNet()
        self.head = head if head is not None else FCHead()

    def forward(self, mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Raw sync logit φ for each (audio, video) pair of the batch.

        Args:
            mel: (B, 1, 128, 204) float32 normalised mel (PROTOCOL.md §1).
            frames: (B, 3, 12, 224, 224) float32 preprocessed frames
                (:func:`avsync_bench.models.sync_preprocess.classifier_eval_frames`).

        Returns:
            φ, (B,) float32, unbounded.
        """
        if mel.shape[0] != frames.shape[0]:
            raise ValueError(
                f"mel batch {mel.shape[0]} and frames batch {frames.shape[0]} differ "
                f"(mel {tuple(mel.shape)}, frames {tuple(frames.shape)})"
            )
        return self.head(self.audio_encoder(mel), self.video_encoder(frames))[:, 0]

    def pairwise(self, audio_feats: torch.Tensor, video_feats: torch.Tensor) -> torch.Tensor:
        """φ for every (audio i, video j) pair of precomputed features.

        Args:
            audio_feats: (A, 512) float32 outputs of :attr:`audio_encoder`.
            video_feats: (V, 512) float32 outputs of :attr:`video_encoder`.

        Returns:
            (A, V) float32 with ``out[i, j] = head(audio_feats[i], video_feats[j])[0]``, the
            score matrix of the contrastive training and of the sync-accuracy evaluation
            (PROTOCOL.md §3).
        """
        if audio_feats.ndim != 2 or video_feats.ndim != 2:
            raise ValueError(
                f"pairwise expects (A, D) and (V, D) features, got {tuple(audio_feats.shape)} "
                f"and {tuple(video_feats.shape)}"
            )
        n_audio, n_video = audio_feats.shape[0], video_feats.shape[0]
        audio = audio_feats[:, None, :].expand(n_audio, n_video, audio_feats.shape[1])
        video = video_feats[None, :, :].expand(n_audio, n_video, video_feats.shape[1])
        scores = self.head(
            audio.reshape(n_audio * n_video, -1), video.reshape(n_audio * n_video, -1)
        )
        return scores[:, 0].reshape(n_audio, n_video)

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_official_checkpoint(cls, folder: str | Path) -> AVSyncClassifier:
        """Load the released classifier checkpoint (PROTOCOL.md §3 "Checkpoint").

        Args:
            folder: the official ``checkpoint-40000/modules`` folder (or ``checkpoint-40000``,
                whose ``modules/`` is then used) holding ``audio_encoder/``, ``video_encoder/``
                and ``head/``. Each sub-folder has a diffusers ``config.json`` and exactly one
                ``*.bin`` torch pickle of that module's ``state_dict`` (normally
                ``diffusion_pytorch_model.bin``); a single ``*.safetensors`` is accepted when
                there is no ``.bin``. Pickles are read with ``weights_only=True``.

        Returns:
            The classifier in eval mode. The configs' ``pretrained: true`` flag is ignored, so
            the AVID-CMA file is not needed.

        Raises:
            FileNotFoundError: a sub-folder, ``config.json`` or weight file is missing.
            ValueError: a config names another class, or a ``state_dict`` does not match
                (missing, unexpected or mis-shaped keys); the message names the file.
        """
        root = Path(folder)
        if not (root / "audio_encoder").is_dir() and (root / "modules").is_dir():
            root = root / "modules"
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: official classifier checkpoint folder not found")
        modules: dict[str, nn.Module] = {}
        for name in MODULE_NAMES:
            sub = root / name
            if not sub.is_dir():
                raise FileNotFoundError(
                    f"{sub}: missing sub-folder {name!r} of the official classifier checkpoint "
                    f"(expected {', '.join(MODULE_NAMES)} under {root})"
                )
            config = _read_json(sub / CONFIG_NAME)
            expected_class = _OFFICIAL_CLASS_NAMES[name]
            found_class = config.get("_class_name", expected_class)
            if found_class != expected_class:
                raise ValueError(
                    f"{sub / CONFIG_NAME}: _class_name is {found_class!r}, expected "
                    f"{expected_class!r} for {name}"
                )
            module = _module_from_config(name, config, sub / CONFIG_NAME)
            weights_file = _single_weights_file(sub)
            _load_checked(module, _read_state_dict(weights_file), weights_file, name)
            modules[name] = module
        return cls(**modules).eval()

    @classmethod
    def from_avid_cma(cls, path: str | Path, *, weights_only: bool = True) -> AVSyncClassifier:
        """Initialise both encoders from the AVID-CMA AudioSet checkpoint (PROTOCOL.md §3).

        This is the official training initialisation (the ``pretrained=True`` branch of the
        official encoders): the checkpoint's ``["model"]`` entries starting with
        ``module.audio_model.`` / ``module.video_model.`` are loaded, prefix removed, into
        :attr:`audio_encoder` / :attr:`video_encoder` with a strict key check (a missing
        ``num_batches_tracked`` is tolerated, as BatchNorm fills it, exactly as in the official
        strict load). Other entries (e.g. projection heads) are ignored. The head keeps
        PyTorch's default random initialisation, as in official training.

        Args:
            path: ``AVID-CMA_Audioset_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar``.
            weights_only: passed to ``torch.load``. Keep True; set False only for a trusted
                file whose pickle holds non-tensor objects that ``weights_only`` refuses.

        Returns:
            The classifier in eval mode (call ``.train()`` to fine-tune).

        Raises:
            FileNotFoundError: no such file.
            ValueError: unreadable file, no ``"model"`` dict, or an encoder's keys are missing,
                unexpected or mis-shaped; the message names the file.
        """
        path = Path(path)
        checkpoint = _torch_load(path, weights_only=weights_only)
        if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("model"), Mapping):
            found = list(checkpoint)[:10] if isinstance(checkpoint, Mapping) else type(checkpoint)
            raise ValueError(
                f"{path}: not an AVID-CMA checkpoint: expected a dict with a 'model' state_dict, "
                f"found {found}"
            )
        state = checkpoint["model"]
        model = cls()
        for name, prefix in _AVID_CMA_PREFIXES.items():
            part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if not part:
                raise ValueError(
                    f"{path}: no '{prefix}*' keys in checkpoint['model'] (needed for {name}; "
                    f"{len(state)} keys, first: {list(state)[:5]})"
                )
            _load_checked(getattr(model, name), part, path, f"{name} (keys '{prefix}*')")
        return model.eval()

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the official checkpoint layout: ``directory/{audio_encoder,video_encoder,head}/``
        each with a diffusers ``config.json`` and ``diffusion_pytorch_model.bin``.

        Each part is saved by diffusers' ``ModelMixin.save_pretrained`` with
        ``safe_serialization=False`` (a torch pickle of the ``state_dict``), because the official
        loader reads ``.bin`` only (``use_safetensors=False``, PROTOCOL.md §5.4). The configs carry
        ``pretrained: false``, so the official loader does not look for the AVID-CMA file, and
        ``channels`` only when it differs from the official widths.
        ``directory`` is the ``modules`` folder of a ``checkpoint-N``. Reload with
        :meth:`from_pretrained` / :meth:`from_official_checkpoint` (φ bit-identical) or with the
        official ``<Class>.from_pretrained(directory / name, use_safetensors=False)``.

        Returns:
            ``directory`` as a Path.
        """
        directory = Path(directory)
        for name in MODULE_NAMES:
            module = getattr(self, name)
            if getattr(module.config, "pretrained", False):
                module.register_to_config(pretrained=False)
            module.save_pretrained(directory / name, safe_serialization=False)
            config_path = directory / name / CONFIG_NAME
            config = json.loads(config_path.read_text())
            if tuple(config.get("channels", OFFICIAL_CHANNELS)) == OFFICIAL_CHANNELS:
                # official widths: leave the key out, so the file equals the official config
                # (the official classes would warn about an unexpected key)
                config.pop("channels", None)
                config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> AVSyncClassifier:
        """Same as :meth:`from_official_checkpoint` (one layout for released and trained
        checkpoints)."""
        return cls.from_official_checkpoint(directory)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read JSON config: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


_MODULE_CLASSES = {
    "audio_encoder": AudioConv2DNet,
    "video_encoder": VideoR2Plus1DNet,
    "head": FCHead,
}


def _module_from_config(name: str, config: Mapping, source: Path) -> nn.Module:
    """The part ``name`` built from the arguments its diffusers config records.

    Keys the class does not take (``_class_name``, ``_diffusers_version``, ...) are ignored;
    ``pretrained`` is accepted and has no effect (see :class:`AudioConv2DNet`).
    """
    model_class = _MODULE_CLASSES[name]
    known = {"pretrained", "channels"} if name != "head" else {"dim", "out_dim", "dropout"}
    kwargs = {k: v for k, v in config.items() if k in known}
    try:
        return model_class(**kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: invalid {name} config {dict(config)}: {error}") from error


def _single_weights_file(folder: Path) -> Path:
    for pattern in ("*.bin", "*.safetensors"):
        found = sorted(folder.glob(pattern))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(
                f"{folder}: expected one {pattern} weight file, found {[p.name for p in found]}"
            )
    raise FileNotFoundError(f"{folder}: no *.bin (or *.safetensors) weight file")


def _torch_load(path: Path, weights_only: bool = True):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        hint = (
            " (weights_only=True refused an object in the pickle; load it only if you trust it)"
            if weights_only and "weights_only" in str(error)
            else ""
        )
        raise ValueError(f"{path}: cannot read torch checkpoint{hint}: {error}") from error


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{path}: cannot read safetensors file: {error}") from error
    state = _torch_load(path)
    if (
        isinstance(state, Mapping)
        and "state_dict" in state
        and isinstance(state["state_dict"], Mapping)
    ):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state_dict (dict of tensors), found {type(state)}")
    return state


def _load_checked(module: nn.Module, state: Mapping, source: Path, what: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with an error naming ``source``."""
    expected = module.state_dict()
    problems = []
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    not_tensor = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    shapes = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and isinstance(v, torch.Tensor) and v.shape != expected[k].shape
    ]
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("not tensors", not_tensor),
        ("shape mismatch", shapes),
    ):
        if keys:
            problems.append(f"{len(keys)} {label} (first: {', '.join(keys[:5])})")
    if problems:
        raise ValueError(
            f"{source}: {what} state_dict does not match the model: {'; '.join(problems)}"
        )
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as error:
        raise ValueError(f"{source}: cannot load {what} state_dict: {error}") from error
