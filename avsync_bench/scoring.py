"""``avsync-bench score`` = ``extract`` (:mod:`avsync_bench.extract`: dataset → clips → features,
cached on the GT side, optionally over several processes) + ``evaluate``
(:mod:`avsync_bench.evaluate`: features → metrics → results). The options and the run's outputs
are defined here; the two stages exchange a :class:`~avsync_bench.featurefile.FeatureFile`
(``features.npz``), so ``extract`` then ``evaluate`` gives exactly what ``score`` gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from avsync_bench.metrics import FeatureSet
from avsync_bench.protocol import DEFAULT_MODE, ProtocolMode
from avsync_bench.weights.store import default_home

if TYPE_CHECKING:
    from avsync_bench.distributed import Distributed
    from avsync_bench.featurefile import FeatureFile
    from avsync_bench.features import FeatureExtractor

__all__ = ["ScoreOptions", "ScoreRun", "score"]

Progress = Callable[[str, int], Callable[[int], None]]


@dataclass
class ScoreOptions:
    """Inputs of one scoring run (CLI flags of ``avsync-bench score``).

    Attributes:
        preds: predictions folder. dataset / data_root: see :mod:`avsync_bench.datasets`.
        metrics: metric keys (``"fid,fvd"``, ``"all"`` = FID, FVD, IA, IT, RelSync, AlignSync,
            AV-Align). mode: protocol mode (§8).
        weights_dir: weights folder (default ``$AVSYNC_BENCH_HOME/weights``).
        cache_dir: GT feature cache (default ``$AVSYNC_BENCH_HOME/features``; None disables).
        batch_size: clip pairs per extraction step (results do not depend on it).
        workers: DataLoader worker processes for decoding (results do not depend on it).
        device: torch device for the extractors. allow_partial: score an incomplete set.
        dtype: ImageBind's precision, ``fp32`` (default), or ``bf16``/``fp16`` on a GPU.
        allow_padding: score clips whose window needs more padding than the protocol's limits.
    """

    preds: Path
    dataset: str = "avsync15"
    data_root: Path | None = None
    metrics: str | list[str] = "all"
    mode: ProtocolMode = DEFAULT_MODE
    weights_dir: Path | None = None
    cache_dir: Path | None = field(default_factory=lambda: default_home() / "features")
    batch_size: int = 16
    workers: int = 0
    device: str = "cpu"
    allow_partial: bool = False
    dtype: str = "fp32"
    allow_padding: bool = False


@dataclass
class ScoreRun:
    """What a scoring run produced: the results dict (``results.json``), per-clip rows, and the
    features of the scored clips in ``per_clip`` order (``features.npz``, for bootstrap CIs)."""

    results: dict
    per_clip: list[dict]
    features: FeatureSet | None = None
    feature_file: FeatureFile | None = None


def score(
    options: ScoreOptions,
    extractors: dict[str, FeatureExtractor] | None = None,
    progress: Progress | None = None,
    dist: Distributed | None = None,
) -> ScoreRun | None:
    """Score a predictions folder: :func:`avsync_bench.extract.extract` then
    :func:`avsync_bench.evaluate.evaluate`.

    Args:
        options: what to score and how.
        extractors: optional ready extractor instances by name (tests inject tiny networks);
            others are built from the weights folder.
        progress: ``progress(label, total)`` returns a ``tick(n)`` callback (rich bars in the CLI).
        dist: the process group (default: single process, or the ``accelerate launch`` group).

    Returns:
        The run on rank 0 (``feature_file`` set, for ``features.npz``); None on other ranks.

    Raises:
        DatasetError: bad dataset root or list. PredictionError: problems in the predictions
        folder (all listed) without ``allow_partial``. MissingWeightsError: absent weights (all
        named). MediaError: a file that cannot be decoded.
    """
    from avsync_bench.evaluate import evaluate
    from avsync_bench.extract import extract

    ff = extract(options, extractors, progress, dist)
    if ff is None:
        return None
    run = evaluate(ff)
    run.feature_file = ff
    return run
