"""``avsync-bench train-reference``: train the AVSyncD reference model (docs/protocol.md §4).

Single process on CPU/one GPU, or ``accelerate launch -m avsync_bench.cli train-reference ...``
on many GPUs. The model, data and optimiser options live in a YAML config
(``reference_model/configs/{avsync15,tiny-cpu}.yaml``; every key is documented there).
"""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error


def train_reference_command(
    dataset: str | None = typer.Option(
        None, help="avsync15 | landscapes | thegreatesthits (default: the config's, avsync15)."
    ),
    data_root: Path | None = typer.Option(
        None, help="Dataset root (default: the config's, else datasets/<Name>)."
    ),
    split: str | None = typer.Option(
        None, help="List file <split>.txt to train on (default: the config's, 'train')."
    ),
    config: str = typer.Option(
        "avsync15",
        help="YAML config file, or a bundled one by name: avsync15 (paper recipe), tiny-cpu.",
    ),
    max_steps: int | None = typer.Option(
        None, help="Stop after this many optimizer steps (default: the config's max_train_steps)."
    ),
    resume: bool = typer.Option(
        False, help="Continue from the latest checkpoint-N in the output folder."
    ),
    output_dir: Path | None = typer.Option(
        None, help="Checkpoints and train_log.jsonl (default: the config's output_dir)."
    ),
) -> None:
    """Train AVSyncD: random 2 s clips, frozen SD-1.5 VAE/ImageBind, AdamW on _temp/_audio."""
    with exit_on_error():
        from reference_model.training import load_config, train

        cfg = load_config(
            config,
            dataset=dataset,
            data_root=str(data_root) if data_root is not None else None,
            split=split,
            output_dir=str(output_dir) if output_dir is not None else None,
        )
        summary = train(cfg, resume=resume, max_steps=max_steps, log=print)
        console.print(
            f"trained to step {summary['step']} ({summary['s_per_step']:.3f} s/step); "
            f"checkpoints in {summary['output_dir']}",
            highlight=False,
        )
