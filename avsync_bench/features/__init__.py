"""The one registry of feature extractors shared by all metrics.

Each extractor is one small module; metrics (:mod:`avsync_bench.metrics`) name the extractors
they need and are pure functions of the features.
"""

from __future__ import annotations

from avsync_bench.features.base import FeatureExtractor

__all__ = ["FeatureExtractor", "EXTRACTORS", "get_extractor"]


def _registry() -> dict[str, type[FeatureExtractor]]:
    from avsync_bench.features.av_align import AVAlignFeatures
    from avsync_bench.features.i3d import I3DFeatures
    from avsync_bench.features.imagebind import ImageBindFeatures
    from avsync_bench.features.inception import InceptionFeatures
    from avsync_bench.features.mel import MelFeatures
    from avsync_bench.features.sync import SyncFeatures

    classes = (
        InceptionFeatures,
        I3DFeatures,
        ImageBindFeatures,
        SyncFeatures,
        AVAlignFeatures,
        MelFeatures,
    )
    return {cls.name: cls for cls in classes}


EXTRACTORS = _registry()


def get_extractor(name: str) -> type[FeatureExtractor]:
    """The extractor class registered as ``name``.

    Raises:
        KeyError: unknown name.
    """
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise KeyError(f"unknown feature extractor {name!r}; known: {sorted(EXTRACTORS)}") from None
