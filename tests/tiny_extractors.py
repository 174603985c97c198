"""Tiny deterministic-weight feature networks standing in for Inception and I3D in tests."""

from __future__ import annotations

import torch
from torch import nn

from avsync_bench.features.i3d import I3DFeatures
from avsync_bench.features.inception import InceptionFeatures
from avsync_bench.weights.rule import apply_rule


class TinyImageNet(nn.Module):
    """(N, 3, 229, 229) → (N, 16): conv, ReLU, global mean, linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.fc = nn.Linear(8, 16)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class TinyVideoNet(nn.Module):
    """(B, 3, T, 224, 224) → (B, 8), with the I3D detector's keyword arguments."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, (3, 8, 8), stride=(2, 8, 8))
        self.fc = nn.Linear(4, 8)

    def forward(self, x, rescale=False, resize=False, return_features=False):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


class TinyInception(InceptionFeatures):
    feature_shape = (11, 16)


class TinyI3D(I3DFeatures):
    feature_shape = (8,)


def tiny_extractors(batch_size: int = 4) -> dict:
    """Extractor instances with injected tiny networks (rule weights), keyed by registry name."""
    inception, i3d = TinyInception("cpu", batch_size), TinyI3D("cpu", batch_size)
    inception.model = apply_rule(TinyImageNet()).eval()
    i3d.model = apply_rule(TinyVideoNet()).eval()
    return {"fid_inception": inception, "i3d": i3d}
