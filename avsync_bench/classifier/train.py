"""Training the AV-sync classifier with HF accelerate (PROTOCOL.md §3 "Training"; official
``scripts/avsync_train.py`` with ``configs/avsync/vggss_sync_contrast.yaml`` of lzhangbj/ASVA).

One optimisation step: B videos per process, each read as K = 21 clips 0.2 s apart at a random
offset with an independent horizontal flip per clip (:mod:`avsync_bench.classifier.data`); both
encoders over the B·K clips; the head over all K×K audio/video pairs of each video; the loss of
:func:`avsync_bench.classifier.metrics.contrastive_loss` (τ = 0.1); AdamW over every parameter,
gradient-norm clip, ``constant_with_warmup`` LR. Initialisation: the AVID-CMA AudioSet encoders
(``model.init: avid_cma``, read with ``weights_only=True``), PyTorch's default init (``random``)
or the golden weight rule (``rule``).

Checkpoints ``checkpoint-N/`` hold ``accelerator.save_state`` (model, optimizer, LR scheduler,
RNG states, the step) plus the classifier in the official layout ``checkpoint-N/modules/
{audio_encoder,video_encoder,head}/`` (:meth:`AVSyncClassifier.save_pretrained`), loadable by
``score`` as ``avsync_classifier`` and by the official loader. Resuming continues exactly: the
clips of sample i are a pure function of ``(seed, i)``. Unusable videos (too short, < 12 fps,
unreadable) are replaced by the next listed video, as the official loader does, but each is
logged once (console and ``train_log.jsonl``) and counted in the summary.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch import nn

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.classifier.data import DataSpec, TrainClipsDataset, collate_clips
from avsync_bench.classifier.metrics import contrastive_loss, pairwise_scores
from avsync_bench.datasets import TestVideo
from avsync_bench.errors import OptionError

__all__ = [
    "CONFIG_DIR",
    "ClassifierTrainConfig",
    "SyncContrastiveModel",
    "load_config",
    "build_classifier",
    "train",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = ("model", "data", "train", "optim", "output")


@dataclass
class ClassifierTrainConfig:
    """Every training option; ``configs/vggss.yaml`` documents each key. :func:`load_config`
    flattens the YAML sections (``model``, ``data``, ``train``, ``optim``, ``output``)."""

    # model
    init: str = "avid_cma"  # avid_cma | random | rule
    avid_cma_checkpoint: str | None = None
    weights_dir: str | None = None
    audio_channels: list = field(default_factory=lambda: [64, 64, 128, 256, 512])
    video_channels: list = field(default_factory=lambda: [64, 64, 128, 256, 512])
    head_dropout: float = 0.0
    tau: float = 0.1
    # data
    dataset: str = "vggss"
    data_root: str | None = None
    split: str = "train"
    image_size: int = 224
    num_frames: int = 12
    fps: int = 6
    num_clips: int = 21
    shift: float = 0.2
    random_flip: bool = True
    num_workers: int = 4
    cache_videos: int = 0
    # train
    seed: int = 123
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_train_steps: int = 40000
    mixed_precision: str = "fp16"
    # optim
    learning_rate: float = 2e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant_with_warmup"
    lr_warmup_steps: int = 100
    # output
    output_dir: str = "exps/avsync/vggss_sync_contrast"
    checkpointing_steps: int = 2500
    checkpoints_total_limit: int | None = None
    log_every: int = 10

    @property
    def data_spec(self) -> DataSpec:
        """The training clip layout (``random-compact``, K clips ``shift`` s apart)."""
        return DataSpec(
            num_clips=self.num_clips,
            shift=self.shift,
            sampling="random-compact",
            image_size=self.image_size,
            num_frames=self.num_frames,
            fps=self.fps,
        )


def load_config(path: str | Path, **overrides) -> ClassifierTrainConfig:
    """Read a YAML config (sections flattened) and apply the non-None ``overrides``.

    A bare name (``vggss``, ``tiny-cpu``) is looked up in :data:`CONFIG_DIR`.

    Raises:
        ValueError: missing file, unknown section or key.
    """
    path = Path(path)
    if not path.is_file():
        candidate = CONFIG_DIR / (path.name if path.suffix else f"{path.name}.yaml")
        if not candidate.is_file():
            bundled = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise OptionError(f"config {path} not found (bundled configs: {', '.join(bundled)})")
        path = candidate
    raw = yaml.safe_load(path.read_text()) or {}
    names = {f.name for f in dataclasses.fields(ClassifierTrainConfig)}
    flat: dict = {}
    for section, values in raw.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise OptionError(f"{path}: unknown section {section!r}; expected one of {SECTIONS}")
        for key, value in values.items():
            if key not in names:
                raise OptionError(f"{path}: unknown key {section}.{key}")
            flat[key] = value
    flat.update({k: v for k, v in overrides.items() if v is not None})
    return ClassifierTrainConfig(**flat)


def build_classifier(cfg: ClassifierTrainConfig):
    """The classifier to train (train mode), initialised as ``cfg.init`` says.

    ``avid_cma``: both encoders from the AVID-CMA AudioSet checkpoint (``avid_cma_checkpoint``, else
    the weights store's ``avid_cma_audioset``), official widths required; the head keeps PyTorch's
    default init. ``random``: PyTorch's default init (seeded by ``cfg.seed``). ``rule``: the golden
    weight rule on every part (a deterministic stand-in).
    """
    from avsync_bench.models.sync_classifier import (
        OFFICIAL_CHANNELS,
        AudioConv2DNet,
        AVSyncClassifier,
        FCHead,
        VideoR2Plus1DNet,
    )

    if int(cfg.audio_channels[-1]) != int(cfg.video_channels[-1]):
        raise OptionError(
            "model.audio_channels and model.video_channels must end in the same width"
        )
    torch.manual_seed(cfg.seed)
    if cfg.init == "avid_cma":
        if list(cfg.audio_channels) != list(OFFICIAL_CHANNELS) or list(cfg.video_channels) != list(
            OFFICIAL_CHANNELS
        ):
            raise OptionError("model.init avid_cma needs the official channels (64,64,128,256,512)")
        path = cfg.avid_cma_checkpoint
        if path is None:
            from avsync_bench.weights.store import WeightStore

            path = WeightStore(cfg.weights_dir).resolve("avid_cma_audioset").path
        model = AVSyncClassifier.from_avid_cma(path)
        model.head = FCHead(dim=OFFICIAL_CHANNELS[-1], dropout=cfg.head_dropout)
    elif cfg.init in ("random", "rule"):
        model = AVSyncClassifier(
            AudioConv2DNet(channels=cfg.audio_channels),
            VideoR2Plus1DNet(channels=cfg.video_channels),
            FCHead(dim=int(cfg.audio_channels[-1]), dropout=cfg.head_dropout),
        )
        if cfg.init == "rule":
            from avsync_bench.weights.rule import apply_rule

            for part in (model.audio_encoder, model.video_encoder, model.head):
                apply_rule(part)
    else:
        raise OptionError(f"unknown model.init {cfg.init!r}: avid_cma | random | rule")
    return model.train()


class SyncContrastiveModel(nn.Module):
    """Wraps the classifier for training: (B, K, 1, 128, 204) mels and (B, K, 3, 12, S, S) frames
    → (B, K, K) φ (:func:`pairwise_scores`). One module, so accelerate's autocast covers it."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, mels: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        b, k = mels.shape[:2]
        audio = self.classifier.audio_encoder(mels.flatten(0, 1)).unflatten(0, (b, k))
        video = self.classifier.video_encoder(frames.flatten(0, 1)).unflatten(0, (b, k))
        return pairwise_scores(self.classifier.head, audio, video)


def train(
    cfg: ClassifierTrainConfig,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    videos: Sequence[TestVideo] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume from the latest ``checkpoint-N``) until ``max_steps`` optimizer steps.

    ``max_steps`` (default ``cfg.max_train_steps``) only says where this call stops; the LR
    schedule's horizon is ``max(cfg.max_train_steps, max_steps)``, so stopping and resuming
    reproduces an uninterrupted run exactly, whatever ``lr_scheduler`` is.

    Every listed video is probed first; the unusable ones (too short, < 12 fps, unreadable,
    missing) are each logged and written to ``train_log.jsonl`` before step 1, and counted.

    Returns ``{"step", "records" (one per step), "s_per_step", "clips_per_s", "excluded"
    ({list line: reason}), "n_listed", "output_dir", "classifier"}`` (the trained classifier, unwrapped). ``<output_dir>/train_log.jsonl`` gets one JSON object
    per step (``step``, ``loss``, ``av_loss``, ``va_loss``, ``av_acc``, ``va_acc``, ``lr``,
    ``s_per_step``, ``clips_per_s``) and one ``{"excluded": line, "reason": ...}`` per unusable
    video.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from torch.utils.data import DataLoader

    from avsync_bench.classifier.data import list_videos
    from reference_model.train_data import TrainSampleSampler
    from reference_model.training import TrainState, latest_checkpoint

    max_steps = cfg.max_train_steps if max_steps is None else max_steps
    output_dir = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=str(output_dir)),
    )
    set_seed(cfg.seed)
    model = SyncContrastiveModel(build_classifier(cfg))
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        weight_decay=cfg.adam_weight_decay,
        eps=cfg.adam_epsilon,
    )
    lr_scheduler = get_scheduler(
        cfg.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
        # the horizon of a decaying schedule is the config's, so a run stopped early by
        # ``max_steps`` and resumed later follows the same LR curve as an uninterrupted one
        num_training_steps=max(cfg.max_train_steps, max_steps, 1) * accelerator.num_processes,
    )
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    state = TrainState(torch.Generator())
    accelerator.register_for_checkpointing(state)
    if resume:
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            log(f"no checkpoint in {output_dir}; starting from step 0")
        else:
            accelerator.load_state(str(checkpoint))
            log(f"resumed from {checkpoint} at step {state.step}")

    if videos is None:
        videos = list_videos(cfg.dataset, cfg.data_root, cfg.split)
    dataset = TrainClipsDataset(
        videos, cfg.data_spec, cfg.seed, cfg.random_flip, cache_videos=cfg.cache_videos
    )
    sampler = TrainSampleSampler(
        len(dataset),
        cfg.batch_size,
        cfg.seed,
        accelerator.process_index,
        accelerator.num_processes,
        start_micro_batch=state.step * cfg.gradient_accumulation_steps,
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=collate_clips,
        num_workers=cfg.num_workers,
        generator=torch.Generator(),
    )
    log_path = output_dir / "train_log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    excluded: dict[str, str] = {}

    def exclude(rel: str, reason: str) -> None:
        if rel in excluded:
            return
        excluded[rel] = reason
        log(f"excluded {rel}: {reason}")
        if accelerator.is_main_process:
            with log_path.open("a") as handle:
                handle.write(json.dumps({"excluded": rel, "reason": reason}) + "\n")

    for index, reason in dataset.scan().items():
        exclude(videos[index].rel, reason)
    log(
        f"{len(videos) - len(excluded)} of {len(videos)} listed videos usable; "
        f"{len(excluded)} unusable (listed above, replaced by the next usable one)"
    )
    clips_per_step = (
        cfg.batch_size * cfg.num_clips * accelerator.num_processes * cfg.gradient_accumulation_steps
    )
    records: list[dict] = []
    micro: list[dict] = []
    step_times: list[float] = []
    tick = time.perf_counter()
    batches = iter(loader)
    model.train()
    while state.step < max_steps:
        batch = next(batches)
        for rel, reason in batch["substituted"]:  # found only by decoding
            exclude(rel, reason)
        with accelerator.accumulate(model):
            phi = model(
                batch["mels"].to(accelerator.device), batch["frames"].to(accelerator.device)
            )
            out = contrastive_loss(phi, cfg.tau)
            accelerator.backward(out["loss"])
            if accelerator.sync_gradients and cfg.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        micro.append({k: v.detach() for k, v in out.items()})
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        means = {
            k: accelerator.reduce(
                torch.stack([m[k] for m in micro]).mean(), reduction="mean"
            ).item()
            for k in micro[0]
        }
        micro = []
        now = time.perf_counter()
        step_time, tick = now - tick, now
        step_times.append(step_time)
        record = {
            "step": state.step,
            **{k: round(v, 6) for k, v in means.items()},
            "lr": lr_scheduler.get_last_lr()[0],
            "s_per_step": round(step_time, 4),
            "clips_per_s": round(clips_per_step / step_time, 3),
        }
        records.append(record)
        if accelerator.is_main_process:
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            if state.step % cfg.log_every == 0 or state.step in (1, max_steps):
                log(
                    f"step {state.step}/{max_steps} loss {record['loss']:.4f} "
                    f"(a→v {record['av_loss']:.4f}, v→a {record['va_loss']:.4f}) "
                    f"acc {record['av_acc']:.3f}/{record['va_acc']:.3f} lr {record['lr']:.2e} "
                    f"{record['s_per_step']:.2f} s/step {record['clips_per_s']:.1f} clips/s"
                )
        if state.step % cfg.checkpointing_steps == 0 or state.step == max_steps:
            _save_checkpoint(accelerator, model, state.step, output_dir, cfg)
            tick = time.perf_counter()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    timed = step_times[1:] or step_times
    s_per_step = sum(timed) / len(timed) if timed else math.nan
    return {
        "step": state.step,
        "records": records,
        "s_per_step": s_per_step,
        "clips_per_s": clips_per_step / s_per_step if timed else math.nan,
        "excluded": excluded,
        "n_listed": len(videos),
        "output_dir": str(output_dir),
        "classifier": accelerator.unwrap_model(model).classifier,
    }


def _save_checkpoint(accelerator, model, step: int, output_dir: Path, cfg) -> Path:
    """``checkpoint-<step>/``: accelerate state + ``modules/`` (official layout)."""
    import shutil

    path = output_dir / f"checkpoint-{step}"
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).classifier.save_pretrained(path / "modules")
        (path / "train_state.json").write_text(json.dumps({"step": step}))  # written last
        if cfg.checkpoints_total_limit:
            done = sorted(
                (int(p.name.split("-")[1]), p)
                for p in output_dir.glob("checkpoint-*")
                if p.name.split("-")[1].isdigit()
            )
            for _, old in done[: max(len(done) - cfg.checkpoints_total_limit, 0)]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path
