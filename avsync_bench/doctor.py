"""``avsync-bench doctor``: is this machine ready to score? One line per item.

Checks, in order: Python and avsync-bench versions; the imports the metrics need (torch,
torchvision, torchaudio, ImageBind, pytorch-fid, PyAV with an H.264 encoder) and whether the
CPU-torch compatibility layer is active and installed at interpreter start; CUDA; the
cache folder; every registry weight (missing / stand-in / verified / pinned / checksum
mismatch); the dataset root with its lists and videos.

Each check gives a status: ``ok``; ``info`` (nothing wrong, e.g. no CUDA or an optional weight
absent); ``warn`` (works, but results are marked or limited, e.g. stand-in weights, fewer test
videos than the release); ``FAIL`` (a problem: ``doctor`` then exits with code 1).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Check", "run_checks", "SCORE_WEIGHTS"]

SCORE_WEIGHTS = ("fid_inception", "i3d_torchscript", "imagebind_huge", "avsync_classifier")
"""Weights the default ``score --metrics all`` needs; missing ones are problems."""


def weights_for(metrics: str) -> tuple[str, ...]:
    """Registry names of the weights ``score --metrics METRICS`` needs (``all``: SCORE_WEIGHTS).

    Raises:
        ValueError: an unknown metric name.
    """
    from avsync_bench.features import get_extractor
    from avsync_bench.metrics import resolve_metrics

    if metrics.strip().lower() == "all":
        return SCORE_WEIGHTS
    names = [e for m in resolve_metrics(metrics) for e in m.extractors]
    return tuple(dict.fromkeys(w for e in names for w in get_extractor(e).weight_names))


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` (ok | info | warn | FAIL), ``item``, ``detail``."""

    status: str
    item: str
    detail: str

    @property
    def problem(self) -> bool:
        return self.status == "FAIL"


def _import_check(module: str, label: str | None = None) -> Check:
    label = label or module
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(module)
    except Exception as exc:  # any import failure is the finding
        return Check("FAIL", f"import {label}", f"{type(exc).__name__}: {exc}".splitlines()[0])
    version = getattr(mod, "__version__", None)
    return Check("ok", f"import {label}", str(version) if version else "imported")


def _environment() -> list[Check]:
    import avsync_bench
    from avsync_bench import _compat

    checks = [
        Check("ok", "python", f"{sys.version.split()[0]} ({sys.executable})"),
        Check("ok", "avsync-bench", avsync_bench.__version__),
    ]
    for module in ("torch", "torchvision", "torchaudio"):
        checks.append(_import_check(module))
    active = [name for name, on in _compat.ACTIVE.items() if on]
    checks.append(
        Check(
            "info" if active else "ok",
            "compat layer",
            f"active for {', '.join(active)} (CUDA-built wheels under CPU torch; their compiled "
            "ops are unavailable, avsync-bench does not use them)"
            if active
            else "inactive (the compiled torchvision/torchaudio ops load)",
        )
    )
    started = "_avsync_bench_startup" in sys.modules
    checks.append(
        Check(
            "ok" if started or not active else "warn",
            "compat at interpreter start",
            "installed (avsync_bench_startup.pth): `import torchvision` works in any order"
            if started
            else "not active (a source tree on PYTHONPATH, or an install without "
            "avsync_bench_startup.pth): import avsync_bench before torchvision/torchaudio",
        )
    )
    checks.append(_import_check("imagebind.models.imagebind_model", "imagebind"))
    checks.append(_import_check("pytorch_fid.inception", "pytorch_fid"))
    checks.append(_video_codec())
    return checks


def _video_codec() -> Check:
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception as exc:
        return Check("FAIL", "PyAV H.264 encoder", f"libx264 unavailable ({exc})")
    return Check("ok", "PyAV H.264 encoder", f"av {av.__version__}, libx264")


def _cuda() -> Check:
    import torch

    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return Check(
            "ok", "CUDA", f"{torch.cuda.device_count()} device(s): {', '.join(names)} "
            f"(torch CUDA {torch.version.cuda})"
        )  # fmt: skip
    build = torch.version.cuda or "none (CPU build)"
    return Check(
        "info",
        "CUDA",
        f"not available (torch {torch.__version__}, CUDA build: {build}); scoring runs on CPU "
        "(ImageBind ≈ 25 s per generated clip on 2 cores)",
    )


def _cache() -> Check:
    from avsync_bench.weights.store import default_home

    home = default_home()
    probe = home
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if os.access(probe, os.W_OK):
        return Check("ok", "cache folder", f"{home} (writable)")
    return Check("FAIL", "cache folder", f"{home}: not writable (set AVSYNC_BENCH_HOME)")


def _weights(weights_dir: str | Path | None, required: tuple[str, ...]) -> list[Check]:
    from avsync_bench.weights.registry import REGISTRY
    from avsync_bench.weights.store import WeightsError, WeightStore

    store = WeightStore(weights_dir)
    pins = store._json("pins.json")
    checks = []
    for name, spec in REGISTRY.items():
        item = f"weight {name}"
        if not store.path(name).exists():
            if name in required:
                fix = (
                    f"avsync-bench weights fetch {name}"
                    if spec.direct
                    else f"download from {spec.url}, then avsync-bench weights import {name} PATH"
                )
                checks.append(Check("FAIL", item, f"missing ({spec.used_by}); {fix}"))
            else:
                why = "not needed by these metrics" if name in SCORE_WEIGHTS else "optional"
                checks.append(Check("info", item, f"absent ({why}; used by {spec.used_by})"))
            continue
        try:
            resolved = store.resolve(name)
        except WeightsError as exc:
            checks.append(Check("FAIL", item, f"checksum mismatch: {exc}"))
            continue
        if resolved.standin:
            checks.append(
                Check("warn", item, "stand-in (deterministic weights; results marked standin)")
            )
        elif spec.sha256 or spec.sha256_prefix:
            checks.append(
                Check("ok", item, f"verified against the published sha256 ({resolved.path})")
            )
        else:
            state = "pinned" if name in pins else "present"
            checks.append(
                Check("ok", item, f"{state}, sha256 {resolved.sha256[:12]}… ({resolved.path})")
            )
    return checks


def _dataset(dataset: str, data_root: str | Path | None) -> list[Check]:
    from avsync_bench.datasets import DATASETS, DatasetError, load_split, resolve_root

    info = DATASETS[dataset]
    try:
        root = resolve_root(dataset, data_root)
    except DatasetError as exc:
        return [Check("FAIL", f"dataset {info.folder}", str(exc))]
    checks = [Check("ok", f"dataset {info.folder}", f"root {root.resolve()}")]
    for split in ("test", "train"):
        if not (root / f"{split}.txt").is_file():
            status = "FAIL" if split == "test" else "info"
            checks.append(Check(status, f"{info.folder} {split}.txt", "missing"))
    try:
        videos = load_split(dataset, root, "test")
    except DatasetError as exc:
        checks.append(Check("FAIL", f"{info.folder} test split", str(exc)))
        return checks
    classes = len({v.class_folder for v in videos})
    detail = f"{len(videos)} videos ({3 * len(videos)} clips), {classes} class(es), all present"
    if len(videos) < info.test_videos:
        checks.append(
            Check(
                "warn",
                f"{info.folder} test split",
                f"{detail}; the release has {info.test_videos}: the leaderboard refuses "
                "runs on a subset",
            )
        )
    else:
        checks.append(Check("ok", f"{info.folder} test split", detail))
    return checks


def run_checks(
    dataset: str = "avsync15",
    data_root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    metrics: str = "all",
) -> list[Check]:
    """Every check of the module docstring, in order (never raises for a failed check).

    A weight that ``score --metrics METRICS`` needs is a problem when missing; other missing
    weights are listed as optional.

    Raises:
        ValueError: an unknown metric name in ``metrics``.
    """
    required = weights_for(metrics)
    checks = _environment()
    checks.append(_cuda())
    checks.append(_cache())
    checks += _weights(weights_dir, required)
    checks += _dataset(dataset, data_root)
    return checks
