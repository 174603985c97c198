"""The three networks of the AV-sync classifier (PROTOCOL.md §3): the AVID-CMA audio and video
encoders and the MLP head, with the official parameter names (``lzhangbj/ASVA``,
``avsync/models/``). :mod:`avsync_bench.models.sync_classifier` assembles, loads and saves them.

Each is a diffusers ``ModelMixin``/``ConfigMixin`` model taking the official config arguments
plus ``channels`` (the encoder widths; :data:`OFFICIAL_CHANNELS` by default, only reduced test
configs change them). float32, meant for ``eval()`` mode when scoring.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

import avsync_bench  # noqa: F401  (_compat; already run, as this module is in the package)

__all__ = ["AudioConv2DNet", "VideoR2Plus1DNet", "FCHead", "OFFICIAL_CHANNELS"]

#: Encoder widths of the released classifier: stem, then the four blocks/stages.
OFFICIAL_CHANNELS = (64, 64, 128, 256, 512)


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


def _check_channels(channels) -> tuple[int, int, int, int, int]:
    values = tuple(int(c) for c in channels)
    if len(values) != 5 or min(values) < 1:
        raise ValueError(f"channels must be 5 positive widths (stem, 4 blocks), got {channels!r}")
    return values


class AudioConv2DNet(ModelMixin, ConfigMixin):
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

    Args (the diffusers config):
        pretrained: kept for the official config's key. The official code then reads the
            AVID-CMA file at construction; here it is **ignored** (use
            :meth:`AVSyncClassifier.from_avid_cma` for that initialisation), so loading a
            checkpoint never needs the AVID-CMA file (PROTOCOL.md §3 "Hidden dependency").
        channels: widths of the stem and the four blocks (official ``(64, 64, 128, 256, 512)``);
            the feature has ``channels[-1]`` dimensions.
    """

    @register_to_config
    def __init__(self, pretrained: bool = False, channels=OFFICIAL_CHANNELS):
        super().__init__()
        c = _check_channels(channels)
        self.out_dim = c[4]
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, c[0], kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(c[0]),
            nn.ReLU(inplace=True),
        )
        self.block1 = Basic2DBlock(c[0], c[1], stride=(2, 2))
        self.block2 = Basic2DBlock(c[1], c[2], stride=(2, 2))
        self.block3 = Basic2DBlock(c[2], c[3], stride=(2, 2))
        self.block4 = Basic2DBlock(c[3], c[4])

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


class VideoR2Plus1DNet(ModelMixin, ConfigMixin):
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

    Args (the diffusers config): ``pretrained`` (ignored, see :class:`AudioConv2DNet`) and
    ``channels``, the widths of the stem and of stages 2-5 (official ``(64, 64, 128, 256, 512)``).
    """

    @register_to_config
    def __init__(self, pretrained: bool = False, channels=OFFICIAL_CHANNELS):
        super().__init__()
        c = _check_channels(channels)
        self.out_dim = c[4]
        self.conv1 = nn.Sequential(
            nn.Conv3d(3, c[0], (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(c[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.conv2x = nn.Sequential(BasicR2P1DBlock(c[0], c[1]), BasicR2P1DBlock(c[1], c[1]))
        self.conv3x = nn.Sequential(
            BasicR2P1DBlock(c[1], c[2], stride=(2, 2, 2)), BasicR2P1DBlock(c[2], c[2])
        )
        self.conv4x = nn.Sequential(
            BasicR2P1DBlock(c[2], c[3], stride=(2, 2, 2)), BasicR2P1DBlock(c[3], c[3])
        )
        self.conv5x = nn.Sequential(
            BasicR2P1DBlock(c[3], c[4], stride=(2, 2, 2)), BasicR2P1DBlock(c[4], c[4])
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


class FCHead(ModelMixin, ConfigMixin):
    """MLP scoring one (audio, video) feature pair (PROTOCOL.md §3, head).

    ``fc`` = ``Sequential(Linear(2·dim, dim), Dropout, ReLU, Linear(dim, dim/2), Dropout, ReLU,
    Linear(dim/2, out_dim))``, so the keys are ``fc.{0,3,6}.{weight,bias}`` (official
    ``avsync/models/head.py``, 6 entries). The released classifier uses the defaults.

    Args:
        dim: feature width of each encoder (512).
        out_dim: number of outputs (1; only output 0 is used as φ).
        dropout: dropout probability (0.0 in the official config).
    """

    @register_to_config
    def __init__(self, dim: int = 512, out_dim: int = 1, dropout: float = 0.0):
        super().__init__()
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
