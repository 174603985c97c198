"""The accelerate training loop shared by ``train-classifier`` and ``train-reference``.

Both trainers (:mod:`avsync_bench.classifier.train`, :mod:`reference_model.training`) follow the
official scripts' loop: AdamW + a diffusers LR schedule, ``accelerator.accumulate`` micro-batches,
gradient-norm clipping, one JSONL record per optimizer step, ``checkpoint-N/`` folders holding
``accelerator.save_state`` plus the trained modules in the official layout. What they share lives
here once: the resumable data order (:class:`TrainSampleSampler`), the checkpointed loop state
(:class:`TrainState`), resuming, checkpoint saving and pruning, the optimizer step and the
per-step record.

Exact resume: data are a pure function of ``(seed, global sample index)``, the sampler restarts
at ``step × gradient_accumulation_steps`` micro-batches, and the LR schedule's horizon is the
config's ``max_train_steps`` (not where a run stops), so a run stopped and resumed reproduces an
uninterrupted one bit for bit.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from avsync_bench.errors import InputError, OptionError

__all__ = [
    "TrainSampleSampler",
    "TrainState",
    "StepLog",
    "epoch_permutation",
    "latest_checkpoint",
    "load_sectioned_config",
    "prune_checkpoints",
    "make_optimizer",
    "optimizer_step",
    "resume_latest",
    "resumable_loader",
    "save_checkpoint",
]


def load_sectioned_config(
    path: str | Path, config_cls, config_dir: Path, sections: tuple[str, ...], overrides: dict
):
    """A training config dataclass from a sectioned YAML file (``model:``, ``data:``, ...; the
    sections are flattened) with the non-None ``overrides`` applied.

    ``path`` is a YAML file, or the bare name of one in ``config_dir`` (``tiny-cpu``).

    Raises:
        OptionError: the file is missing (the bundled names are listed), a section or key is
            unknown (the file and ``section.key`` are named), or an override is unknown.
    """
    import dataclasses

    import yaml

    path = Path(path)
    if not path.is_file():
        candidate = config_dir / (path.name if path.suffix else f"{path.name}.yaml")
        if not candidate.is_file():
            bundled = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
            raise OptionError(f"config {path} not found (bundled configs: {bundled})")
        path = candidate
    raw = yaml.safe_load(path.read_text()) or {}
    names = {f.name for f in dataclasses.fields(config_cls)}
    flat: dict = {}
    for section, values in raw.items():
        if section not in sections or not isinstance(values, dict):
            raise OptionError(f"{path}: unknown section {section!r}; expected one of {sections}")
        for key, value in values.items():
            if key not in names:
                raise OptionError(f"{path}: unknown key {section}.{key}")
            flat[key] = value
    flat.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(flat) - names)
    if unknown:
        raise OptionError(f"unknown config overrides {unknown}")
    return config_cls(**flat)


def epoch_permutation(num_videos: int, seed: int, epoch: int) -> torch.Tensor:
    """The video order of one epoch: a permutation of ``range(num_videos)`` (int64), drawn from a
    CPU generator seeded with ``seed · 1_000_003 + epoch``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_videos, generator=generator)


class TrainSampleSampler(Sampler):
    """Infinite, resumable sampler of ``(video_index, sample_index)`` keys for one process.

    The global sample stream visits the videos epoch by epoch in :func:`epoch_permutation` order.
    Micro-batch ``m`` of the whole run holds samples ``m·W·B … (m+1)·W·B − 1`` (``W`` processes,
    ``B`` per-process batch); process ``r`` takes the ``r``-th slice of ``B``. Iteration starts at
    micro-batch ``start_micro_batch`` (``optimizer step × gradient accumulation`` on resume).

    Raises:
        InputError: ``num_videos`` < 1 (an empty split).
    """

    def __init__(
        self,
        num_videos: int,
        batch_size: int,
        seed: int = 0,
        process_index: int = 0,
        num_processes: int = 1,
        start_micro_batch: int = 0,
    ) -> None:
        if num_videos < 1:
            raise InputError("the split lists no videos")
        self.num_videos, self.batch_size, self.seed = num_videos, batch_size, seed
        self.process_index, self.num_processes = process_index, num_processes
        self.start_micro_batch = start_micro_batch
        self._perms: dict[int, torch.Tensor] = {}

    def _video(self, sample_index: int) -> int:
        epoch, position = divmod(sample_index, self.num_videos)
        if epoch not in self._perms:
            self._perms = {epoch: epoch_permutation(self.num_videos, self.seed, epoch)}
        return int(self._perms[epoch][position])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        micro = self.start_micro_batch
        while True:
            base = (micro * self.num_processes + self.process_index) * self.batch_size
            for sample_index in range(base, base + self.batch_size):
                yield self._video(sample_index), sample_index
            micro += 1


class TrainState:
    """Checkpointed loop state (``accelerator.register_for_checkpointing``): the optimizer
    ``step`` and the process' ``generator`` state (noise, dropout, timesteps; unused by the
    classifier)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.step = 0
        self.generator = generator

    def state_dict(self) -> dict:
        return {"step": self.step, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.generator.set_state(state["generator"].cpu())


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The ``checkpoint-N`` folder with the largest N that has finished saving (its
    ``train_state.json`` is written last), or None."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and (path / "train_state.json").is_file():
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def prune_checkpoints(output_dir: Path, limit: int | None) -> None:
    """Delete all but the newest ``limit`` ``checkpoint-N`` folders (nothing when ``limit`` is
    None or 0)."""
    if not limit:
        return
    done = sorted(
        (int(p.name.split("-")[1]), p)
        for p in output_dir.glob("checkpoint-*")
        if re.fullmatch(r"checkpoint-\d+", p.name)
    )
    for _, path in done[: max(len(done) - limit, 0)]:
        shutil.rmtree(path, ignore_errors=True)


def make_optimizer(params, cfg, num_processes: int, max_steps: int):
    """AdamW and the diffusers LR schedule of a training config.

    ``cfg`` has ``learning_rate``, ``adam_beta1``, ``adam_beta2``, ``adam_weight_decay``,
    ``adam_epsilon``, ``lr_scheduler`` (a ``diffusers.optimization.get_scheduler`` name),
    ``lr_warmup_steps`` and ``max_train_steps``. The schedule's horizon is
    ``max(cfg.max_train_steps, max_steps)`` optimizer steps; accelerate steps a prepared
    scheduler once per process, hence the ``num_processes`` factor (as the official scripts).

    Returns:
        ``(optimizer, lr_scheduler)``.
    """
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(
        params,
        lr=cfg.learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        weight_decay=cfg.adam_weight_decay,
        eps=cfg.adam_epsilon,
    )
    lr_scheduler = get_scheduler(
        cfg.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * num_processes,
        num_training_steps=max(cfg.max_train_steps, max_steps, 1) * num_processes,
    )
    return optimizer, lr_scheduler


def resume_latest(accelerator, output_dir: Path, state: TrainState, log: Callable) -> None:
    """Load the latest finished ``checkpoint-N`` of ``output_dir`` (model, optimizer, LR
    schedule, RNG states, ``state``), or say that there is none and start from step 0."""
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        log(f"no checkpoint in {output_dir}; starting from step 0")
        return
    accelerator.load_state(str(checkpoint))
    log(f"resumed from {checkpoint} at step {state.step}")


def resumable_loader(dataset, cfg, accelerator, state: TrainState, collate_fn) -> DataLoader:
    """The DataLoader of one process: ``cfg.batch_size`` samples per micro-batch in
    :class:`TrainSampleSampler` order from the micro-batch after ``state.step`` optimizer steps;
    ``cfg.num_workers`` workers; its own generator, so the global RNG is untouched."""
    sampler = TrainSampleSampler(
        len(dataset),
        cfg.batch_size,
        cfg.seed,
        accelerator.process_index,
        accelerator.num_processes,
        start_micro_batch=state.step * cfg.gradient_accumulation_steps,
    )
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=cfg.num_workers,
        generator=torch.Generator(),
        persistent_workers=False,
    )


def optimizer_step(accelerator, loss, params, optimizer, lr_scheduler, max_grad_norm) -> None:
    """Backward of one micro-batch, then (accelerate decides whether this micro-batch ends an
    accumulation) the gradient-norm clip to ``max_grad_norm`` (none when 0/None), the optimizer
    and LR-schedule steps and ``zero_grad``. Call inside ``accelerator.accumulate(model)``."""
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm:
        accelerator.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)


class StepLog:
    """Per-step records of a run: the micro-batch values averaged over accumulation and
    processes, the LR, the step time (s) and throughput; appended to ``<output_dir>/
    train_log.jsonl`` by the main process.

    Args:
        path: the JSONL file.
        items_per_step: what one optimizer step consumes over all processes (samples or clips).
        rate_key: the throughput field's name (``samples_per_s``, ``clips_per_s``).
        digits: round the averaged values to this many digits (None: keep them).
    """

    def __init__(self, path: Path, items_per_step: int, rate_key: str, digits: int | None = None):
        self.path, self.items_per_step = path, items_per_step
        self.rate_key, self.digits = rate_key, digits
        self.records: list[dict] = []
        self.step_times: list[float] = []
        self._micro: list[dict[str, torch.Tensor]] = []
        self._tick = time.perf_counter()

    def add_micro(self, values: dict[str, torch.Tensor]) -> None:
        """Keep one micro-batch's 0-d tensors (detached)."""
        self._micro.append({k: v.detach() for k, v in values.items()})

    def pause(self) -> None:
        """Restart the step clock (checkpoint time is not step time)."""
        self._tick = time.perf_counter()

    def write(self, record: dict, main_process: bool) -> None:
        """Append any record (an exclusion, say) to the JSONL file on the main process."""
        if main_process:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    def end_step(self, accelerator, step: int, lr: float) -> dict:
        """Close optimizer step ``step``: average the kept micro-batch values over accumulation
        and processes (``accelerator.reduce``), time the step, write and return the record."""
        means = {
            k: accelerator.reduce(
                torch.stack([m[k] for m in self._micro]).mean(), reduction="mean"
            ).item()
            for k in self._micro[0]
        }
        self._micro = []
        now = time.perf_counter()
        step_time, self._tick = now - self._tick, now
        self.step_times.append(step_time)
        if self.digits is not None:
            means = {k: round(v, self.digits) for k, v in means.items()}
        record = {
            "step": step,
            **means,
            "lr": lr,
            "s_per_step": round(step_time, 4),
            self.rate_key: round(self.items_per_step / step_time, 3),
        }
        self.records.append(record)
        self.write(record, accelerator.is_main_process)
        return record

    @property
    def s_per_step(self) -> float:
        """Mean step time in seconds, the first step excluded when there are several (NaN when
        no step ran)."""
        timed = self.step_times[1:] or self.step_times
        return sum(timed) / len(timed) if timed else math.nan


def save_checkpoint(
    accelerator,
    output_dir: Path,
    step: int,
    save_modules: Callable[[Path], None],
    limit: int | None = None,
) -> Path:
    """``checkpoint-<step>/``: ``accelerator.save_state`` (every process), then on the main
    process ``save_modules(checkpoint)`` (the official layout), ``train_state.json`` last (what
    :func:`latest_checkpoint` looks for) and pruning to the newest ``limit``."""
    path = output_dir / f"checkpoint-{step}"
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        save_modules(path)
        (path / "train_state.json").write_text(json.dumps({"step": step}))  # written last
        prune_checkpoints(output_dir, limit)
    accelerator.wait_for_everyone()
    return path
