"""The I3D architecture of the FVD detector (Inception-v1 inflated to 3D, Carreira & Zisserman 2017).

Layer for layer the network inside StyleGAN-V's ``i3d_torchscript.pt`` (the Kinetics-400
``InceptionI3d`` of pytorch-i3d, exported with a ``forward(x, rescale, resize,
return_features)`` wrapper): Unit3D blocks (Conv3d without bias, BatchNorm3d eps 1e-3, ReLU,
TensorFlow "same" padding), max pools with "same" padding, nine Inception modules (Mixed_3b …
Mixed_5c), a (2, 7, 7) average pool, a 1×1×1 logits convolution and the mean over time.

It exists so that stand-in weights (:mod:`avsync_bench.weights.standins`) cost what the real
detector costs (benchmarks) and exercise the same TorchScript loading path; the benchmark's
numbers are computed with the file the user imports, whatever this module says.

Input (B, 3, T, 224, 224) float32 in [-1, 1] (``rescale=True``: in [0, 1]); output (B, 400)
float32 logits (``return_features=True``) or class probabilities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InceptionI3d"]


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    if size % stride == 0:
        pad = max(kernel - stride, 0)
    else:
        pad = max(kernel - (size % stride), 0)
    return pad // 2, pad - pad // 2


class Unit3D(nn.Module):
    """Conv3d (+ BatchNorm3d + ReLU) with TensorFlow "same" padding."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), bn: bool = True,
                 relu: bool = True, bias: bool = False):  # fmt: skip
        super().__init__()
        self.kernel, self.stride, self.use_bn, self.use_relu = kernel, stride, bn, relu
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = x.shape[2], x.shape[3], x.shape[4]
        pt = _same_pad(t, self.kernel[0], self.stride[0])
        ph = _same_pad(h, self.kernel[1], self.stride[1])
        pw = _same_pad(w, self.kernel[2], self.stride[2])
        x = self.bn(self.conv3d(F.pad(x, [pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]])))
        return F.relu(x) if self.use_relu else x


class MaxPoolSame(nn.Module):
    """MaxPool3d with TensorFlow "same" padding (zeros, as pytorch-i3d pads)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.pool = nn.MaxPool3d(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = x.shape[2], x.shape[3], x.shape[4]
        pt = _same_pad(t, self.kernel[0], self.stride[0])
        ph = _same_pad(h, self.kernel[1], self.stride[1])
        pw = _same_pad(w, self.kernel[2], self.stride[2])
        return self.pool(F.pad(x, [pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]]))


class InceptionModule(nn.Module):
    """Four branches: 1×1; 1×1→3×3; 1×1→3×3; 3×3 max pool→1×1; concatenated on channels."""

    def __init__(self, cin: int, c: list[int]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


class InceptionI3d(nn.Module):
    """Kinetics-400 I3D with the StyleGAN-V detector's call signature (module docstring)."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(192, [64, 96, 128, 16, 32, 32])
        self.Mixed_3c = InceptionModule(256, [128, 128, 192, 32, 96, 64])
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(480, [192, 96, 208, 16, 48, 64])
        self.Mixed_4c = InceptionModule(512, [160, 112, 224, 24, 64, 64])
        self.Mixed_4d = InceptionModule(512, [128, 128, 256, 24, 64, 64])
        self.Mixed_4e = InceptionModule(512, [112, 144, 288, 32, 64, 64])
        self.Mixed_4f = InceptionModule(528, [256, 160, 320, 32, 128, 128])
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(832, [256, 160, 320, 32, 128, 128])
        self.Mixed_5c = InceptionModule(832, [384, 192, 384, 48, 128, 128])
        self.logits = Unit3D(1024, num_classes, bn=False, relu=False, bias=True)

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        if rescale:
            x = x * 2.0 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        x = self.MaxPool3d_2a_3x3(self.Conv3d_1a_7x7(x))
        x = self.MaxPool3d_3a_3x3(self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x)))
        x = self.MaxPool3d_4a_3x3(self.Mixed_3c(self.Mixed_3b(x)))
        x = self.Mixed_4f(self.Mixed_4e(self.Mixed_4d(self.Mixed_4c(self.Mixed_4b(x)))))
        x = self.Mixed_5c(self.Mixed_5b(self.MaxPool3d_5a_2x2(x)))
        x = F.avg_pool3d(x, (min(2, x.shape[2]), 7, 7), stride=1)
        logits = self.logits(x).mean(dim=(3, 4)).mean(dim=2)
        return logits if return_features else torch.softmax(logits, dim=1)
