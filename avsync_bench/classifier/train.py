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
import math
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
        OptionError: missing file, unknown section, key or override.
    """
    from avsync_bench.training_loop import load_sectioned_config

    return load_sectioned_config(path, ClassifierTrainConfig, CONFIG_DIR, SECTIONS, overrides)


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

    from avsync_bench.classifier.data import list_videos
    from avsync_bench.training_loop import (
        StepLog,
        TrainState,
        make_optimizer,
        optimizer_step,
        resumable_loader,
        resume_latest,
        save_checkpoint,
    )

    max_steps = cfg.max_train_steps if max_steps is None else max_steps
    output_dir = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=str(output_dir)),
    )
    set_seed(cfg.seed)
    model = SyncContrastiveModel(build_classifier(cfg))
    optimizer, lr_scheduler = make_optimizer(
        model.parameters(), cfg, accelerator.num_processes, max_steps
    )
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    state = TrainState(torch.Generator())
    accelerator.register_for_checkpointing(state)
    if resume:
        resume_latest(accelerator, output_dir, state, log)

    if videos is None:
        videos = list_videos(cfg.dataset, cfg.data_root, cfg.split)
    dataset = TrainClipsDataset(
        videos, cfg.data_spec, cfg.seed, cfg.random_flip, cache_videos=cfg.cache_videos
    )
    loader = resumable_loader(dataset, cfg, accelerator, state, collate_clips)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    clips_per_step = (
        cfg.batch_size * cfg.num_clips * accelerator.num_processes * cfg.gradient_accumulation_steps
    )
    steps = StepLog(output_dir / "train_log.jsonl", clips_per_step, "clips_per_s", digits=6)
    excluded: dict[str, str] = {}

    def exclude(rel: str, reason: str) -> None:
        if rel not in excluded:
            excluded[rel] = reason
            log(f"excluded {rel}: {reason}")
            steps.write({"excluded": rel, "reason": reason}, accelerator.is_main_process)

    for index, reason in dataset.scan().items():
        exclude(videos[index].rel, reason)
    log(
        f"{len(videos) - len(excluded)} of {len(videos)} listed videos usable; "
        f"{len(excluded)} unusable (listed above, replaced by the next usable one)"
    )

    def save_modules(checkpoint: Path) -> None:  # the official layout
        accelerator.unwrap_model(model).classifier.save_pretrained(checkpoint / "modules")

    batches = iter(loader)
    model.train()
    steps.pause()
    while state.step < max_steps:
        batch = next(batches)
        for rel, reason in batch["substituted"]:  # found only by decoding
            exclude(rel, reason)
        with accelerator.accumulate(model):
            phi = model(
                batch["mels"].to(accelerator.device), batch["frames"].to(accelerator.device)
            )
            out = contrastive_loss(phi, cfg.tau)
            optimizer_step(
                accelerator,
                out["loss"],
                model.parameters(),
                optimizer,
                lr_scheduler,
                cfg.max_grad_norm,
            )
        steps.add_micro(out)
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        record = steps.end_step(accelerator, state.step, lr_scheduler.get_last_lr()[0])
        if accelerator.is_main_process and (
            state.step % cfg.log_every == 0 or state.step in (1, max_steps)
        ):
            log(
                f"step {state.step}/{max_steps} loss {record['loss']:.4f} "
                f"(a→v {record['av_loss']:.4f}, v→a {record['va_loss']:.4f}) "
                f"acc {record['av_acc']:.3f}/{record['va_acc']:.3f} lr {record['lr']:.2e} "
                f"{record['s_per_step']:.2f} s/step {record['clips_per_s']:.1f} clips/s"
            )
        if state.step % cfg.checkpointing_steps == 0 or state.step == max_steps:
            save_checkpoint(
                accelerator, output_dir, state.step, save_modules, cfg.checkpoints_total_limit
            )
            steps.pause()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    s_per_step = steps.s_per_step
    return {
        "step": state.step,
        "records": steps.records,
        "s_per_step": s_per_step,
        "clips_per_s": clips_per_step / s_per_step if steps.step_times else math.nan,
        "excluded": excluded,
        "n_listed": len(videos),
        "output_dir": str(output_dir),
        "classifier": accelerator.unwrap_model(model).classifier,
    }
