"""``train-classifier``, ``eval-classifier`` and ``sync-sensitivity``: the AV-sync classifier
(docs/protocol.md §3) trained, evaluated, and its metric validity measured. See docs/classifier.md."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error, progress_bars


def train_classifier_command(
    config: str = typer.Option(
        "vggss", help="YAML config file, or a bundled one: vggss (paper recipe), tiny-cpu."
    ),
    data_root: Path | None = typer.Option(None, help="Dataset root (default: the config's)."),
    dataset: str | None = typer.Option(
        None, help="vggss | avsync15 | landscapes | thegreatesthits (default: the config's)."
    ),
    split: str | None = typer.Option(None, help="List file <split>.txt (default: 'train')."),
    max_steps: int | None = typer.Option(
        None, help="Stop after this many optimizer steps (default: the config's max_train_steps)."
    ),
    output_dir: Path | None = typer.Option(
        None, help="checkpoint-N/ folders and train_log.jsonl (default: the config's)."
    ),
    resume: bool = typer.Option(False, help="Continue from the latest checkpoint-N there."),
) -> None:
    """Train the AV-sync classifier: 21 clips 0.2 s apart per video, all 21x21 pairs, CE/τ.

    Writes checkpoint-N/modules/{audio_encoder,video_encoder,head}/ (the official layout, usable
    as `avsync_classifier` weights by score and by the official loader). Multi-GPU:
    `accelerate launch -m avsync_bench.cli train-classifier ...`.
    """
    with exit_on_error():
        from avsync_bench.classifier.train import load_config, train

        cfg = load_config(
            config,
            dataset=dataset,
            data_root=str(data_root) if data_root is not None else None,
            split=split,
            output_dir=str(output_dir) if output_dir is not None else None,
        )
        summary = train(cfg, resume=resume, max_steps=max_steps, log=print)
        excluded = summary["excluded"]
        console.print(
            f"trained to step {summary['step']} ({summary['s_per_step']:.2f} s/step, "
            f"{summary['clips_per_s']:.1f} clips/s); {len(excluded)} of {summary['n_listed']} "
            f"listed video(s) unusable (each replaced by the next usable one, listed in "
            f"train_log.jsonl); checkpoints in {summary['output_dir']}",
            highlight=False,
        )


def eval_classifier_command(
    checkpoint: Path = typer.Option(
        ..., help="Classifier folder: checkpoint-N, its modules/, or a weights folder."
    ),
    dataset: str = typer.Option("vggss", help="vggss | avsync15 | landscapes | thegreatesthits."),
    data_root: Path | None = typer.Option(None, help="Dataset root in release layout."),
    split: str = typer.Option("test", help="List file <split>.txt."),
    protocol: str = typer.Option(
        "corrected",
        help="corrected: accuracy over all listed videos (unusable = miss); official: the "
        "official denominator, valid examples only.",
    ),
    image_size: int | None = typer.Option(
        None, help="Frame side (default: 224, or the checkpoint's train_config.yaml)."
    ),
    out: Path | None = typer.Option(
        None, help="JSON output (default classifier_eval/<dataset>_<split>_<protocol>.json)."
    ),
) -> None:
    """Offset accuracy: 31 centred clips 0.04 s apart, A2V and V2A, hit when |argmax − 15| ≤ 5."""
    with exit_on_error():
        import dataclasses

        from avsync_bench.classifier.data import list_videos
        from avsync_bench.classifier.eval import (
            EVAL_SPEC,
            format_table,
            load_eval_items,
            score_items,
            summarise,
        )
        from avsync_bench.models.sync_classifier import AVSyncClassifier

        model = AVSyncClassifier.from_official_checkpoint(checkpoint)
        size = image_size or _trained_image_size(checkpoint) or EVAL_SPEC.image_size
        spec = dataclasses.replace(EVAL_SPEC, image_size=size)
        videos = list_videos(dataset, data_root, split)
        with progress_bars() as progress:
            items = load_eval_items(videos, spec, progress("decoding", len(videos)))
        result = summarise(items, score_items(model, items), protocol=protocol)
        result.update(
            {
                "checkpoint": str(checkpoint),
                "standin": _is_standin(checkpoint),
                "dataset": dataset,
                "split": split,
                "image_size": size,
            }
        )
        out = out or Path("classifier_eval") / f"{dataset}_{split}_{protocol}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        label = " · STAND-IN WEIGHTS" if result["standin"] else ""
        print(f"eval-classifier · {dataset}/{split}{label} · accuracy in %, [95% CI]")
        print(format_table(result))
        print(f"wrote {out}")


def sync_sensitivity_command(
    dataset: str = typer.Option(
        "avsync15", help="avsync15 | landscapes | thegreatesthits | vggss."
    ),
    data_root: Path | None = typer.Option(None, help="Dataset root in release layout."),
    split: str = typer.Option("test", help="List file <split>.txt."),
    weights_dir: Path | None = typer.Option(
        None, help="Weights folder holding avsync_classifier (default: $AVSYNC_BENCH_HOME)."
    ),
    checkpoint: Path | None = typer.Option(
        None, help="A classifier folder to test instead of the weights store's avsync_classifier."
    ),
    protocol: str = typer.Option("official", help="Clip protocol: official | corrected."),
    out: Path = typer.Option(Path("sync_sensitivity"), help="Folder for result.json and table.md."),
) -> None:
    """What RelSync can see: φ for true vs shifted (±0.2/±0.5/±1.0 s) and same-class swapped audio."""
    with exit_on_error():
        from avsync_bench.classifier.data import list_videos
        from avsync_bench.classifier.sensitivity import clip_scores, format_markdown, summarise
        from avsync_bench.models.sync_classifier import AVSyncClassifier
        from avsync_bench.protocol import ProtocolMode
        from avsync_bench.weights.store import WeightStore

        standin = False
        if checkpoint is None:
            weight = WeightStore(weights_dir).resolve("avsync_classifier")
            checkpoint, standin = weight.path, weight.standin
        model = AVSyncClassifier.from_official_checkpoint(checkpoint)
        videos = list_videos(dataset, data_root, split)
        with progress_bars() as progress:
            rows, failed = clip_scores(
                model, videos, dataset, ProtocolMode(protocol), progress("clips", len(videos))
            )
        result = summarise(rows, failed)
        result.update(
            {
                "checkpoint": str(checkpoint),
                "standin": standin,
                "dataset": dataset,
                "split": split,
                "protocol": protocol,
            }
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        table = format_markdown(result)
        label = " · STAND-IN WEIGHTS" if standin else ""
        (out / "table.md").write_text(f"# sync-sensitivity · {dataset}/{split}{label}\n\n{table}\n")
        print(f"sync-sensitivity · {dataset}/{split} · {protocol}{label}")
        print(table)
        print(f"wrote {out / 'result.json'} and {out / 'table.md'}")


def _trained_image_size(checkpoint: Path) -> int | None:
    """``data.image_size`` of the run that wrote ``checkpoint`` (its train_config.yaml), if any."""
    import yaml

    for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
        path = folder / "train_config.yaml"
        if path.is_file():
            return int((yaml.safe_load(path.read_text()) or {}).get("image_size", 224))
    return None


def _is_standin(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` is registered as a stand-in in its weights folder."""
    for folder in (checkpoint, checkpoint.parent):
        record = folder.parent / "standins.json"
        if record.is_file():
            try:
                return folder.name in json.loads(record.read_text())
            except (OSError, json.JSONDecodeError):
                return False
    return False
