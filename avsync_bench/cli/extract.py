"""``avsync-bench extract`` and ``avsync-bench evaluate``: the two stages of ``score``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from avsync_bench.cli import score_options as opt
from avsync_bench.cli.common import console, exit_on_error, progress_bars
from avsync_bench.cli.score_options import checked_options
from avsync_bench.distributed import Distributed
from avsync_bench.errors import OptionError
from avsync_bench.options import check_protocol
from avsync_bench.preflight import preflight
from avsync_bench.results import FEATURES_FILE, print_results, write_results


def extract_command(
    preds: Path = opt.PREDS,
    dataset: str = opt.DATASET,
    data_root: Path | None = opt.DATA_ROOT,
    metrics: str = opt.METRICS,
    protocol: str = opt.PROTOCOL,
    out: Path | None = typer.Option(
        None, help="Folder for features.npz (default: <preds>.scores/<protocol>)."
    ),
    weights_dir: Path | None = opt.WEIGHTS_DIR,
    cache_dir: Path | None = opt.CACHE_DIR,
    no_cache: bool = opt.NO_CACHE,
    batch_size: int = opt.BATCH_SIZE,
    workers: int = opt.WORKERS,
    device: str = opt.DEVICE,
    dtype: str = opt.DTYPE,
    allow_partial: bool = opt.ALLOW_PARTIAL,
    allow_padding: bool = opt.ALLOW_PADDING,
    verbose: bool = opt.VERBOSE,
    force: bool = typer.Option(False, help="Replace a features.npz / results already in --out."),
) -> None:
    """Extract both sides' per-clip features into features.npz (first stage of score).

    The file holds every feature the metrics need, the clip names, videos and classes, the
    extractor versions, weight sha256s, protocol and dataset; `avsync-bench evaluate` turns it
    into results.json without weights, videos or network. Several processes:
    `accelerate launch --num_processes N -m avsync_bench.cli extract ...`.
    """
    options = checked_options(
        preds=preds,
        dataset=dataset,
        data_root=data_root,
        metrics=metrics,
        protocol=protocol,
        weights_dir=weights_dir,
        cache_dir=cache_dir,
        no_cache=no_cache,
        batch_size=batch_size,
        workers=workers,
        device=device,
        dtype=dtype,
        allow_partial=allow_partial,
        allow_padding=allow_padding,
        verbose=verbose,
    )
    mode = options.mode
    from avsync_bench.extract import extract
    from avsync_bench.featurefile import save_features

    dist = Distributed.from_environment()
    target = out or Path(f"{str(preds).rstrip('/')}.scores") / mode.value
    with exit_on_error(verbose):
        if dist.is_main:
            preflight({"--out": target}, results_dir=target, force=force)
        with progress_bars() as progress:
            ff = extract(options, progress=progress if dist.is_main else None, dist=dist)
        if ff is None:
            return
        path = save_features(Path(target) / FEATURES_FILE, ff)
    console.print(f"wrote {path} ({len(ff.rows)} clips, extractors: {', '.join(ff.features.gt)})")


def evaluate_command(
    features: Path = typer.Argument(..., help="A features.npz from `avsync-bench extract`."),
    out: Path | None = typer.Option(
        None, help="Where results.json and per_clip.csv go (default: the features file's folder)."
    ),
    protocol: str | None = typer.Option(
        None, help="Refuse the file unless it was extracted with this protocol."
    ),
    dataset: str | None = typer.Option(
        None, help="Refuse the file unless it was extracted for this dataset."
    ),
    like: Path | None = typer.Option(
        None,
        help="Another features.npz (or its folder): refuse the file unless protocol, dataset, "
        "extractor versions and weight sha256s match it.",
    ),
    force: bool = typer.Option(False, help="Replace results.json / per_clip.csv already there."),
) -> None:
    """Compute every metric from features.npz and write results.json and per_clip.csv.

    Needs no weights, no videos and no network. Refuses a file of another format version, or
    (with --protocol, --dataset, --like) another protocol, dataset or weight set, naming the field.
    """
    from avsync_bench.evaluate import evaluate
    from avsync_bench.featurefile import load_features

    with exit_on_error():
        expect = {}
        if like is not None:
            expect = load_features(like).identity()
        if protocol is not None:
            expect["protocol"] = check_protocol(protocol).value
        if dataset is not None:
            expect["dataset"] = dataset
        ff = load_features(features, expect)
        source = features if features.is_dir() else features.parent
        target = Path(out or source)
        earlier = [n for n in ("results.json", "per_clip.csv") if (target / n).exists()]
        if earlier and not force:
            raise OptionError(
                f"--out: {target} already holds {', '.join(earlier)}; refusing to overwrite "
                "them: pass --force to replace them, or --out to write elsewhere"
            )
        preflight({"--out": target})
        run = evaluate(ff)
        json_path, csv_path = write_results(run.results, run.per_clip, target, ff)
    print_results(run.results, Console())
    console.print(f"wrote {json_path} and {csv_path}")
