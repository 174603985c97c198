"""``avsync-bench curate``: the AVSync-AC automatic curation pipeline (paper §3).

``avsync-bench curate calibrate --reference DATASET_ROOT --weights-dir DIR --out thresholds.json``
``avsync-bench curate VIDEOS_DIR --thresholds thresholds.json --weights-dir DIR --out OUT``
(``curate run VIDEOS_DIR ...`` is the same command spelled out).
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.weights.store import default_home


class _DefaultRun(TyperGroup):
    """``curate VIDEOS_DIR ...`` means ``curate run VIDEOS_DIR ...``."""

    def parse_args(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultRun,
    help="AVSync-AC automatic curation (paper §3): `curate calibrate` sets thresholds from a "
    "curated reference dataset, `curate VIDEOS_DIR` filters videos into a release-layout dataset.",
    no_args_is_help=True,
)

_BACKEND = typer.Option("local", help="local (in-process) or ray (Ray Data stages).")
_RAY = typer.Option(None, help="Existing Ray cluster address (default: start a local Ray).")
_CPUS = typer.Option(None, help="CPUs of the local Ray instance (default: all).")
_ACTORS = typer.Option(1, min=1, help="Ray actors per network stage (one GPU each on GPUs).")
_BLOCK = typer.Option(8, min=1, help="Videos per resumable block (one Parquet file each).")
_TINY = typer.Option(
    False, help="Tiny rule-weight networks instead of --weights-dir (tests, dry runs; standin)."
)
_DEVICE = typer.Option("cpu", help="Torch device of the networks for --backend local.")


def _spec(weights_dir: Path | None, tiny: bool, device: str):
    from avsync_bench.curation.networks import NetworkSpec

    if tiny:
        return NetworkSpec(None, True, device)
    return NetworkSpec(str((weights_dir or default_home() / "weights").resolve()), False, device)


@app.command("calibrate")
def calibrate_command(
    reference: Path = typer.Option(..., help="Curated reference dataset root (release layout)."),
    out: Path = typer.Option(..., help="Thresholds JSON file to write."),
    weights_dir: Path | None = typer.Option(
        None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights)."
    ),
    lower_percentile: float = typer.Option(5.0, help="Percentile of the lower bounds."),
    upper_percentile: float = typer.Option(95.0, help="Percentile of the upper bounds."),
    backend: str = _BACKEND,
    ray_address: str | None = _RAY,
    num_cpus: int | None = _CPUS,
    actors: int = _ACTORS,
    block_size: int = _BLOCK,
    tiny_networks: bool = _TINY,
    device: str = _DEVICE,
) -> None:
    """Measure every window of a curated reference set; thresholds at reference percentiles.

    Writes OUT (thresholds, the reference, the percentiles, settings, networks) and keeps the
    reference's measurements in OUT.calibration/ (windows.parquet, resumable block files).
    """
    from avsync_bench.curation.run import calibrate

    with exit_on_error():  # CurationError is a ValueError: message, exit code 1
        thresholds, info = calibrate(
            reference,
            _spec(weights_dir, tiny_networks, device),
            out,
            percentiles={"lower": lower_percentile, "upper": upper_percentile},
            backend=backend,
            ray_address=ray_address,
            num_cpus=num_cpus,
            actors=actors,
            block_size=block_size,
        )
    ref = thresholds.reference
    console.print(
        f"{ref['videos']} reference videos, {ref['windows']} windows, "
        f"{ref['decode_errors']} decode errors ({info['skipped']}/{info['blocks']} blocks resumed,"
        f" {info['timings']['total']:.1f} s)"
    )
    for name, bound in thresholds.bounds.items():
        console.print(f"  {name:14s} lower {bound['lower']}  upper {bound['upper']}")
    console.print(f"thresholds written to {out}")


@app.command("run")
def curate_command(
    videos_dir: Path = typer.Argument(
        ..., help="Folder of videos in class folders: <class>/<file>."
    ),
    thresholds: Path = typer.Option(..., help="Thresholds file from `curate calibrate`."),
    out: Path = typer.Option(..., help="Output dataset folder."),
    weights_dir: Path | None = typer.Option(
        None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights)."
    ),
    min_per_class: int = typer.Option(100, help="Drop classes with fewer examples (paper: 100)."),
    test_fraction: float = typer.Option(0.1, help="Share of each class's videos in test.txt."),
    class_mapping: Path | None = typer.Option(
        None, help="class_mapping.json for IT texts (default: found beside VIDEOS_DIR)."
    ),
    backend: str = _BACKEND,
    ray_address: str | None = _RAY,
    num_cpus: int | None = _CPUS,
    actors: int = _ACTORS,
    block_size: int = _BLOCK,
    tiny_networks: bool = _TINY,
    device: str = _DEVICE,
) -> None:
    """Curate VIDEOS_DIR into OUT: videos/<class>/..., train.txt, test.txt, class_mapping.json,
    windows.parquet (every window, its measurements, kept/dropped and why), summary.json and
    summary.html. Rerunning the same command resumes from the finished blocks."""
    from avsync_bench.curation.run import curate

    with exit_on_error():
        summary = curate(
            videos_dir,
            thresholds,
            _spec(weights_dir, tiny_networks, device),
            out,
            min_per_class=min_per_class,
            test_fraction=test_fraction,
            class_mapping=class_mapping,
            backend=backend,
            ray_address=ray_address,
            num_cpus=num_cpus,
            actors=actors,
            block_size=block_size,
        )
    c = summary["counts"]
    console.print(
        f"{c['videos']} videos ({c['decode_errors']} decode errors), {c['scenes']} scenes "
        f"({c['scenes_too_short']} shorter than a window), {c['windows']} windows: "
        f"{c['windows_kept']} kept, {c['windows_dropped']} dropped"
    )
    for reason, n in c["windows_failed_by"].items():
        console.print(f"  {reason}: {n}")
    console.print(
        f"{c['examples']} examples in {c['classes_kept']} classes "
        f"({len(c['classes_dropped'])} dropped below --min-per-class {min_per_class}); "
        f"train {c['train_examples']}, test {c['test_examples']}"
    )
    if summary["standin"]:
        console.print("[yellow]stand-in networks: measurements are not meaningful[/]")
    console.print(f"written to {out} ({summary['timings_s']['total']:.1f} s)")
