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

Every module works in float32 and is meant to be used in ``eval()`` mode (BatchNorm running
statistics, dropout 0). All constructors in this module return models in eval mode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

import avsync_bench  # noqa: F401  (_compat; already run, as this module is in the package)

__all__ = [
    "AudioConv2DNet",
    "VideoR2Plus1DNet",
    "FCHead",
    "AVSyncClassifier",
    "MODULE_NAMES",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
]

#: The sub-module names, also the sub-folder names of the official checkpoint's ``modules/``.
MODULE_NAMES = ("audio_encoder", "video_encoder", "head")
#: File names written by :meth:`AVSyncClassifier.save_pretrained`.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_FORMAT = "avsync_bench.AVSyncClassifier"
_FORMAT_VERSION = 1
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
# Audio encoder
# --------------------------------------------------------------------------------------------


class Basic2DBlock(nn.Module):
    """Two 3×3 conv + BatchNorm + ReLU layers, **no residual** (PROTOCOL.md §3, audio encoder).

    The first conv carries the block's stride; both convs have padding 1 and no bias.
    Keys: ``conv1.weight``, ``bn1.*``, ``conv2.weight``, ``bn2.*``.

    Args:
        in_planes: input channels.
        out_planes: output channels.
        stride: stride of the first conv, ``(freq, time)``.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_planes, F, T) float32 → (B, out_planes, ⌈F/s⌉, ⌈T/s⌉) float32, ≥ 0."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class AudioConv2DNet(nn.Module):
    """AVID-CMA audio network: log-mel → 512-d clip feature (PROTOCOL.md §3, audio encoder).

    Layout (official ``avsync/models/audio.py``, 54 ``state_dict`` entries):

    - ``conv1``: ``Sequential(Conv2d(1, 64, 7, stride 2, pad 3, no bias), BatchNorm2d(64), ReLU)``;
    - ``block1``..``block4``: :class:`Basic2DBlock` 64/s2, 128/s2, 256/s2, 512/s1;
    - mean over the frequency and time axes.

    Input: the normalised log-mel of PROTOCOL.md §1, (B, 1, 128, 204) float32,
    (fbank + 4.268) / 9.138 with frames 198..203 from the padding, values typically within
    [-2, 2]. The feature map before pooling is (B, 512, 8, 13). Other mel sizes also run (the
    net is fully convolutional).

    Output: (B, 512) float32, non-negative (mean of ReLU outputs).
    """

    out_dim = 512

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.block1 = Basic2DBlock(64, 64, stride=(2, 2))
        self.block2 = Basic2DBlock(64, 128, stride=(2, 2))
        self.block3 = Basic2DBlock(128, 256, stride=(2, 2))
        self.block4 = Basic2DBlock(256, 512)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, 204) float32 normalised mel → (B, 512) float32 feature."""
        if mel.ndim != 4 or mel.shape[1] != 1:
            raise ValueError(
                f"AudioConv2DNet expects a mel of shape (B, 1, 128, 204), got {tuple(mel.shape)}"
            )
        x = self.conv1(mel)
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return x.mean(dim=(2, 3))


# --------------------------------------------------------------------------------------------
# Video encoder
# --------------------------------------------------------------------------------------------


class BasicR2P1DBlock(nn.Module):
    """One R(2+1)D residual block (PROTOCOL.md §3, video encoder).

    Main path: spatial 1×3×3 conv → BN → ReLU → temporal 3×1×1 conv → BN → ReLU → spatial
    1×3×3 conv → BN → ReLU → temporal 3×1×1 conv. The sum with the shortcut then goes through
    ``out_bn`` and a ReLU (BatchNorm **after** the addition, as in the official code). No
    intermediate channel expansion: every conv outputs ``out_planes`` channels. The shortcut is
    a 1×1×1 conv ``res_conv`` with the block's stride when channels or stride change, else the
    identity. The spatial stride sits on ``spt_conv1``, the temporal one on ``tmp_conv1``.

    Args:
        in_planes: input channels.
        out_planes: output channels.
        stride: ``(time, height, width)`` stride of the block.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        spatial_stride = (1, stride[1], stride[2])
        temporal_stride = (stride[0], 1, 1)
        self.spt_conv1 = nn.Conv3d(
            in_planes, out_planes, (1, 3, 3), stride=spatial_stride, padding=(0, 1, 1), bias=False
        )
        self.spt_bn1 = nn.BatchNorm3d(out_planes)
        self.tmp_conv1 = nn.Conv3d(
            out_planes, out_planes, (3, 1, 1), stride=temporal_stride, padding=(1, 0, 0), bias=False
        )
        self.tmp_bn1 = nn.BatchNorm3d(out_planes)
        self.spt_conv2 = nn.Conv3d(out_planes, out_planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.spt_bn2 = nn.BatchNorm3d(out_planes)
        self.tmp_conv2 = nn.Conv3d(out_planes, out_planes, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.out_bn = nn.BatchNorm3d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.res = in_planes != out_planes or any(s != 1 for s in stride)
        if self.res:
            self.res_conv = nn.Conv3d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_planes, T, H, W) float32 → (B, out_planes, T', H', W') float32, ≥ 0."""
        y = self.relu(self.spt_bn1(self.spt_conv1(x)))
        y = self.relu(self.tmp_bn1(self.tmp_conv1(y)))
        y = self.relu(self.spt_bn2(self.spt_conv2(y)))
        y = self.tmp_conv2(y)
        shortcut = self.res_conv(x) if self.res else x
        return self.relu(self.out_bn(y + shortcut))


class VideoR2Plus1DNet(nn.Module):
    """AVID-CMA R(2+1)D-18 video network: frames → 512-d clip feature (PROTOCOL.md §3).

    Layout (official ``avsync/models/video.py``, 201 ``state_dict`` entries):

    - ``conv1``: ``Sequential(Conv3d(3, 64, (3,7,7), stride (1,2,2), pad (1,3,3), no bias),
      BatchNorm3d(64), ReLU, MaxPool3d((1,3,3), stride (1,2,2), pad (0,1,1)))``;
    - ``conv2x``..``conv5x``: two :class:`BasicR2P1DBlock` each, 64, 128/s2, 256/s2, 512/s2
      (stride 2 in time, height and width on the first block of stages 3-5);
    - mean over time, height and width.

    Input: (B, 3, 12, 224, 224) float32 RGB frames after the classifier preprocessing
    (:func:`avsync_bench.models.sync_preprocess.classifier_eval_frames`: bicubic 224×224, CLIP
    mean/std normalisation, values roughly in [-1.8, 2.2]). The map before pooling is
    (B, 512, 2, 7, 7).

    Output: (B, 512) float32, non-negative.
    """

    out_dim = 512

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.conv2x = nn.Sequential(BasicR2P1DBlock(64, 64), BasicR2P1DBlock(64, 64))
        self.conv3x = nn.Sequential(
            BasicR2P1DBlock(64, 128, stride=(2, 2, 2)), BasicR2P1DBlock(128, 128)
        )
        self.conv4x = nn.Sequential(
            BasicR2P1DBlock(128, 256, stride=(2, 2, 2)), BasicR2P1DBlock(256, 256)
        )
        self.conv5x = nn.Sequential(
            BasicR2P1DBlock(256, 512, stride=(2, 2, 2)), BasicR2P1DBlock(512, 512)
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, 12, 224, 224) float32 normalised frames → (B, 512) float32 feature."""
        if frames.ndim != 5 or frames.shape[1] != 3:
            raise ValueError(
                "VideoR2Plus1DNet expects frames of shape (B, 3, 12, 224, 224) (channels before "
                f"time), got {tuple(frames.shape)}"
            )
        x = self.conv1(frames)
        x = self.conv5x(self.conv4x(self.conv3x(self.conv2x(x))))
        return x.mean(dim=(2, 3, 4))


# --------------------------------------------------------------------------------------------
# Head
# --------------------------------------------------------------------------------------------


class FCHead(nn.Module):
    """MLP scoring one (audio, video) feature pair (PROTOCOL.md §3, head).

    ``fc`` = ``Sequential(Linear(2·dim, dim), Dropout, ReLU, Linear(dim, dim/2), Dropout, ReLU,
    Linear(dim/2, out_dim))``, so the keys are ``fc.{0,3,6}.{weight,bias}`` (official
    ``avsync/models/head.py``, 6 entries). The released classifier uses the defaults.

    Args:
        dim: feature width of each encoder (512).
        out_dim: number of outputs (1; only output 0 is used as φ).
        dropout: dropout probability (0.0 in the official config).
    """

    def __init__(self, dim: int = 512, out_dim: int = 1, dropout: float = 0.0):
        super().__init__()
        self.dim, self.out_dim, self.dropout = int(dim), int(out_dim), float(dropout)
        self.fc = nn.Sequential(
            nn.Linear(dim * 2, dim),
            nn.Dropout(dropout),
            nn.ReLU(inplace=True),
            nn.Linear(dim, dim // 2),
            nn.Dropout(dropout),
            nn.ReLU(inplace=True),
            nn.Linear(dim // 2, out_dim),
        )

    def forward(self, audio_features: torch.Tensor, video_features: torch.Tensor) -> torch.Tensor:
        """(B, dim) audio and (B, dim) video float32 features → (B, out_dim) float32 logits.

        The features are concatenated as ``[audio, video]`` (audio first).
        """
        return self.fc(torch.cat([audio_features, video_features], dim=1))

    def config(self) -> dict:
        """The constructor arguments, as stored in the official ``head/config.json``."""
        return {"dim": self.dim, "out_dim": self.out_dim, "dropout": self.dropout}


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
            if name == "head":
                module: nn.Module = _head_from_config(config, sub / CONFIG_NAME)
            elif name == "audio_encoder":
                module = AudioConv2DNet()
            else:
                module = VideoR2Plus1DNet()
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
        """Write ``model.safetensors`` (full ``state_dict``) and ``config.json`` to ``directory``.

        The directory is created if needed. Reload with :meth:`from_pretrained`; φ is then
        bit-identical. Returns the directory.
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        config = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "source": "docs/protocol.md §3 (lzhangbj/ASVA avsync/models)",
            "modules": dict(_OFFICIAL_CLASS_NAMES),
            "head": self.head.config(),
        }
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> AVSyncClassifier:
        """Load a classifier written by :meth:`save_pretrained` (eval mode, float32).

        Raises:
            FileNotFoundError: ``config.json`` or ``model.safetensors`` is missing.
            ValueError: the config is not ours or the weights do not match (message names
                the file).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        config = _read_json(config_path)
        if config.get("format") != _FORMAT:
            raise ValueError(
                f"{config_path}: format is {config.get('format')!r}, expected {_FORMAT!r} "
                "(for the official checkpoint folder use from_official_checkpoint)"
            )
        if config.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{config_path}: unsupported format_version {config.get('format_version')!r}"
            )
        model = cls(head=_head_from_config(config.get("head", {}), config_path))
        weights_path = directory / WEIGHTS_NAME
        if not weights_path.is_file():
            raise FileNotFoundError(f"{weights_path}: classifier weights not found")
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{weights_path}: cannot read safetensors file: {error}") from error
        _load_checked(model, state, weights_path, "AVSyncClassifier")
        return model.eval()


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


def _head_from_config(config: Mapping, source: Path) -> FCHead:
    try:
        return FCHead(
            dim=int(config.get("dim", 512)),
            out_dim=int(config.get("out_dim", 1)),
            dropout=float(config.get("dropout", 0.0)),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: invalid head config {dict(config)}: {error}") from error


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
