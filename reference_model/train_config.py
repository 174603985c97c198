"""AVSyncD training options (PROTOCOL.md §4 "Training"): :class:`TrainConfig` and the YAML
loader; ``configs/avsync15.yaml`` (the paper recipe) documents every key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.protocol import ClipSpec
from avsync_bench.training_loop import load_sectioned_config

__all__ = ["CONFIG_DIR", "SECTIONS", "TrainConfig", "load_config"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = ("model", "data", "train", "optim", "noise", "output")


@dataclass
class TrainConfig:
    """Every training option; the YAML files in :data:`CONFIG_DIR` document each key.

    The YAML groups keys in sections (``model``, ``data``, ``train``, ``optim``, ``noise``,
    ``output``); :func:`load_config` flattens them into these fields.
    """

    # model
    model_kind: str = "sd15"  # "sd15" (SD-1.5 + ImageBind-huge) or "tiny" (rule weights)
    pretrained_sd: str | None = None
    imagebind_checkpoint: str | None = None
    weights_dir: str | None = None
    unet_config: dict | None = None
    vae_config: dict | None = None
    audio_encoder_config: dict | str | None = None
    text_encoder: str = "precomputed"  # "precomputed" | "clip" | "random"
    text_embeddings: str | None = None
    audio_encoder_train_mode: bool = True
    # data
    dataset: str = "avsync15"
    data_root: str | None = None
    split: str = "train"
    height: int = 256
    width: int = 256
    num_frames: int = 12
    fps: int = 6
    clip_mode: str = "official"
    random_flip: bool = True
    num_workers: int = 4
    # train
    seed: int = 123
    batch_size: int = 4
    gradient_accumulation_steps: int = 2
    max_train_steps: int = 37000
    mixed_precision: str = "fp16"
    gradient_checkpointing: bool = True
    audio_dropout: float = 0.2
    text_dropout: float = 0.0
    loss_on_first_frame: bool = False
    # optim
    learning_rate: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    # noise
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    prediction_type: str = "epsilon"
    # output
    output_dir: str = "exps/avsyncd"
    checkpointing_steps: int = 1000
    checkpoints_total_limit: int | None = None
    log_every: int = 10
    extra: dict = field(default_factory=dict)

    @property
    def clip_spec(self) -> ClipSpec:
        """The clip size and length (``height``×``width`` px, ``num_frames`` at ``fps``)."""
        return ClipSpec(
            height=self.height, width=self.width, num_frames=self.num_frames, fps=self.fps
        )


def load_config(path: str | Path, **overrides) -> TrainConfig:
    """Read a YAML training config (sections flattened) and apply non-None ``overrides``.

    A bare name (``tiny-cpu``, ``avsync15``) is looked up in :data:`CONFIG_DIR`.

    Raises:
        OptionError: unknown keys, sections or overrides, or a missing file.
    """
    return load_sectioned_config(path, TrainConfig, CONFIG_DIR, SECTIONS, overrides)
