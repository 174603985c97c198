"""Scoring speed, stage by stage, against the networks' pure-forward limit and the official order.

Usage::

    python benchmarks/score_speed.py --data-root ../shared/data/avsync15-gallery \
        [--clips 450] [--metrics fid,fvd,relsync] [--device cpu|cuda] [--batch-size 16] \
        [--workers 0] [--weights-dir DIR] [--skip-official] [--json out.json]

The input is the AVSync15 shape: ``--clips`` generated + ``--clips`` GT clips (default 450, the
full test set), built from the gallery's videos repeated under new names (symlinks) and the
Static baseline's files for them. Without ``--weights-dir``, full-size stand-in weights are
written (the real architectures: FID Inception, I3D = Inception-v1 inflated, the AV-sync
classifier, ImageBind-huge), so every figure is the real networks' cost.

Printed, with the hardware:

1. ``score`` cold (empty GT cache) and warm (GT cache filled): total time; per stage: decoding
   (clips/s, in the DataLoader; with ``--workers`` > 0 it overlaps extraction and is not timed
   separately), each extractor (clips/s and frames/s, both sides), Fréchet + metrics (evaluate).
2. The pure-forward limit: each network on random tensors of the same shapes and batch as the
   pipeline's calls, as many calls as the pipeline made; the ratio pipeline / limit.
3. The official sequential order (``scripts/animation_eval.py``): one video at a time, batch 1,
   fp32, no cache, scipy ``sqrtm`` Fréchet; the speed-up of ``score`` over it on the same
   inputs and device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import avsync_bench
from avsync_bench import extract as extract_module
from avsync_bench.clips import load_clips, load_generated_clip
from avsync_bench.datasets import DATASETS, load_split
from avsync_bench.evaluate import evaluate
from avsync_bench.features import get_extractor
from avsync_bench.io.media import probe
from avsync_bench.metrics import checks_for, resolve_metrics
from avsync_bench.protocol import ProtocolMode, eval_clip_starts
from avsync_bench.scoring import ScoreOptions
from avsync_bench.weights.standins import make_standins
from avsync_bench.weights.store import WeightStore

FRAMES = {"fid_inception": 11, "i3d": 12, "imagebind": 12, "avsync": 12, "mel": 0, "av_align": 12}


def hardware() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"avsync-bench {avsync_bench.__version__} · torch {torch.__version__} · "
        f"{platform.processor() or platform.machine()} · {os.cpu_count()} CPU threads · "
        f"torch threads {torch.get_num_threads()} · load average {os.getloadavg()[0]:.1f} · "
        f"GPU: {gpu}"
    )


def build_inputs(gallery: Path, n_clips: int, work: Path) -> tuple[Path, Path]:
    """A dataset root of ceil(n/3) videos (gallery videos repeated) and the Static baseline's
    predictions for them, both as symlinks; ``n_clips`` clips are present (the rest absent)."""
    from baselines.runner import run_adapter
    from baselines.static import StaticAdapter

    lines = (gallery / "test.txt").read_text().split()[: -(-n_clips // 3)]
    subset, static = work / "gallery", work / "static"  # the Static baseline of the videos used
    subset.mkdir(parents=True)
    (subset / "videos").symlink_to((gallery / "videos").resolve(), target_is_directory=True)
    shutil.copy(gallery / "class_mapping.json", subset)
    (subset / "test.txt").write_text("\n".join(lines) + "\n")
    run_adapter(StaticAdapter(), static, data_root=subset)
    root, preds = work / "data", work / "preds"
    listing = []
    for k in range(-(-n_clips // 3)):
        rel = lines[k % len(lines)]
        new = rel.replace(".mp4", f"_r{k // len(lines):03d}.mp4")
        target = root / "videos" / new
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((gallery / "videos" / rel).resolve())
        listing.append(new)
        for i in range(3):
            if 3 * k + i >= n_clips:
                break
            src = static / rel.replace(".mp4", f"_clip-{i:02d}.mp4")
            dst = preds / new.replace(".mp4", f"_clip-{i:02d}.mp4")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src.resolve())
    (root / "test.txt").write_text("\n".join(listing) + "\n")
    shutil.copy(gallery / "class_mapping.json", root)
    return root, preds


class Timers:
    """Wraps each extractor's ``extract`` and the decoding jobs to time them."""

    def __init__(self):
        self.seconds, self.clips, self.calls = defaultdict(float), defaultdict(int), []

    def install(self, monkey: list):
        original_extract = {}
        for name in ("fid_inception", "i3d", "imagebind", "avsync", "mel", "av_align"):
            cls = get_extractor(name)
            original_extract[cls] = cls.extract

            def timed(self_, clips, side="gen", _orig=cls.extract, _name=name):
                start = time.perf_counter()
                out = _orig(self_, clips, side)
                self.seconds[_name] += time.perf_counter() - start
                self.clips[_name] += len(clips)
                return out

            cls.extract = timed
            monkey.append((cls, "extract", original_extract[cls]))
        jobs = extract_module._Jobs
        original = jobs.__getitem__

        def timed_job(self_, k):
            start = time.perf_counter()
            out = original(self_, k)
            self.seconds["decode"] += time.perf_counter() - start
            self.clips["decode"] += sum(1 + (p["gt"] is not None) for p in out)
            return out

        jobs.__getitem__ = timed_job
        monkey.append((jobs, "__getitem__", original))


def run_score(options: ScoreOptions) -> dict:
    monkey: list = []
    timers = Timers()
    timers.install(monkey)
    try:
        start = time.perf_counter()
        ff = extract_module.extract(options)
        middle = time.perf_counter()
        run = evaluate(ff)
        end = time.perf_counter()
    finally:
        for owner, name, value in monkey:
            setattr(owner, name, value)
    return {
        "total_s": end - start,
        "extract_s": middle - start,
        "evaluate_s": end - middle,
        "stages": {k: {"s": v, "clips": timers.clips[k]} for k, v in timers.seconds.items()},
        "values": {k: v["value"] for k, v in run.results["metrics"].items()},
    }


def pure_forward(names: list[str], clips: int, device: str, weights) -> dict:
    """Each network on random inputs of the pipeline's call shapes, for ``clips`` clips a side."""
    out = {}
    for name in names:
        if name in ("mel", "av_align"):
            continue
        extractor = get_extractor(name)(device)
        extractor.load(weights)
        model, batch = extractor.model, extractor.batch_size
        shapes = {
            "fid_inception": [((batch, 3, 229, 229), 11 * 2 * clips)],
            "i3d": [((batch, 3, 12, 224, 224), 2 * clips)],
            "avsync": [(((batch, 1, 128, 204), (batch, 3, 12, 224, 224)), 2 * clips)],
            "imagebind": [((batch, 3, 224, 224), 12 * clips), ((batch, 1, 128, 204), 2 * clips)],
        }[name]
        seconds = 0.0
        for shape, items in shapes:
            calls = -(-items // batch)
            with torch.no_grad():
                call = _caller(name, model, shape, device)
                call()  # warm-up
                _sync(device)
                start = time.perf_counter()
                for _ in range(calls):
                    call()
                _sync(device)
                seconds += time.perf_counter() - start
        out[name] = seconds
        extractor.release()
    return out


def _caller(name: str, model, shape, device: str):
    """A no-argument call of ``model`` on random inputs of ``shape`` (the pipeline's call)."""
    if name == "avsync":
        inputs = [torch.randn(s, device=device) for s in shape]
        return lambda: model(*inputs)
    inputs = torch.randn(shape, device=device)
    if name == "imagebind":
        key = "vision" if shape[1] == 3 else "audio"
        return lambda: model({key: inputs})
    if name == "i3d":
        return lambda: model(inputs, rescale=False, resize=False, return_features=True)
    return lambda: model(inputs)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def official_order(options: ScoreOptions, weights) -> dict:
    """The official evaluation order: per video, decode its GT and generated clips, run every
    network with batch 1 on one clip at a time; then scipy's sqrtm Fréchet distance."""
    import scipy.linalg

    mode = ProtocolMode(options.mode)
    spec = DATASETS[options.dataset].spec
    videos = load_split(options.dataset, options.data_root, "test")
    metric_defs = resolve_metrics(options.metrics)
    names = list(
        dict.fromkeys(e for d in [*metric_defs, *checks_for(metric_defs)] for e in d.extractors)
    )
    extractors = {n: get_extractor(n)(options.device, batch_size=1) for n in names}
    for e in extractors.values():
        e.load(weights)
    feats: dict = defaultdict(list)
    start = time.perf_counter()
    for video in videos:
        present = [i for i in range(3) if (options.preds / video.clip_name(i)).is_file()]
        if not present:
            continue
        starts = eval_clip_starts(probe(video.path).av_duration, spec, mode)
        gts = load_clips(video.path, starts, spec, mode)
        for i in present:
            gen = load_generated_clip(options.preds / video.clip_name(i), spec, mode)
            for n, e in extractors.items():
                feats[(n, "gt")].append(e.extract([gts[i]], "gt")[0])
                feats[(n, "gen")].append(e.extract([gen], "gen")[0])
    extracted = time.perf_counter()
    for extractor in ("fid_inception", "i3d"):
        if extractor in names:
            x1 = np.stack(feats[(extractor, "gt")]).reshape(-1, FRAMES_DIM[extractor])
            x2 = np.stack(feats[(extractor, "gen")]).reshape(-1, FRAMES_DIM[extractor])
            s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
            scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    end = time.perf_counter()
    return {"total_s": end - start, "extract_s": extracted - start, "frechet_s": end - extracted}


FRAMES_DIM = {"fid_inception": 2048, "i3d": 400}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="the AVSync15 gallery")
    parser.add_argument("--clips", type=int, default=450)
    parser.add_argument("--metrics", default="fid,fvd,relsync")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--weights-dir", type=Path)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(hardware(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="avsync-bench-speed-"))
    root, preds = build_inputs(args.data_root, args.clips, work)
    metric_defs = resolve_metrics(args.metrics)
    names = list(
        dict.fromkeys(e for d in [*metric_defs, *checks_for(metric_defs)] for e in d.extractors)
    )
    weights_dir = args.weights_dir
    if weights_dir is None:
        weights_dir = work / "weights"
        wanted = {get_extractor(n).weight_names for n in names}
        make_standins(weights_dir, sorted({w for ws in wanted for w in ws}))
    store = WeightStore(weights_dir)
    weights = store.resolve_all([w for n in names for w in get_extractor(n).weight_names])
    options = ScoreOptions(preds=preds, data_root=root, metrics=args.metrics, weights_dir=weights_dir,
                           cache_dir=work / "cache", batch_size=args.batch_size,
                           workers=args.workers, device=args.device,
                           allow_partial=args.clips % 3 != 0)  # fmt: skip
    report = {"hardware": hardware(), "clips": args.clips, "metrics": args.metrics}
    for label in ("cold", "warm"):
        result = run_score(options)
        report[label] = result
        print(f"score {label}: {result['total_s']:.1f} s for {args.clips} + {args.clips} clips "
              f"(extract {result['extract_s']:.1f} s, evaluate incl. Fréchet "
              f"{result['evaluate_s']:.2f} s)", flush=True)  # fmt: skip
        for name, stage in sorted(result["stages"].items()):
            rate = stage["clips"] / stage["s"] if stage["s"] else float("inf")
            frames = f", {rate * FRAMES.get(name, 12):.1f} frames/s" if name != "decode" else ""
            print(f"  {name:14s} {stage['clips']:5d} clips in {stage['s']:8.2f} s = "
                  f"{rate:8.2f} clips/s{frames}")  # fmt: skip
    limit = pure_forward(names, args.clips, args.device, weights)
    report["pure_forward_s"] = limit
    limit_total = sum(limit.values())
    cold = report["cold"]
    print(f"pure forward on random tensors (same shapes, batch, count): {limit_total:.1f} s "
          + ", ".join(f"{k} {v:.1f} s" for k, v in limit.items()))  # fmt: skip
    if limit_total:
        print(f"ratio score cold / pure-forward limit: {cold['total_s'] / limit_total:.2f}")
        for name, seconds in limit.items():
            stage = cold["stages"].get(name)
            if stage and seconds:
                print(f"  {name}: pipeline {stage['s']:.1f} s / forward {seconds:.1f} s = "
                      f"{stage['s'] / seconds:.2f}")  # fmt: skip
    if not args.skip_official:
        off = official_order(options, weights)
        report["official_order"] = off
        print(f"official order (one video at a time, batch 1, fp32): {off['total_s']:.1f} s "
              f"(extract {off['extract_s']:.1f} s, sqrtm Fréchet {off['frechet_s']:.1f} s)")  # fmt: skip
        print(f"speed-up of score (cold) over the official order: "
              f"{off['total_s'] / cold['total_s']:.2f}x; warm: "
              f"{off['total_s'] / report['warm']['total_s']:.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
