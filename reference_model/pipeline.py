"""AVSyncD inference: image + 2 s audio (+ class text) → 12 frames (PROTOCOL.md §4 "Inference").

:class:`AVSyncDPipeline` reimplements the official ``AudioCondAnimationPipeline`` (ASVA,
``avgen/pipelines/pipeline_audio_cond_animation.py``) on the components of this package:

- Frame 0 of the latent video is the clean VAE latent of the conditioning image (posterior
  *sample* × ``vae.config.scaling_factor``, 0.18215 for SD-1.5) and is never updated; frames
  1..F-1 start from N(0, 1) noise and are denoised by ``PNDMScheduler`` (SD-1.5 config, 50 steps).
- Audio classifier-free guidance ε = ε∅ + η(εa − ε∅) from ONE batched UNet call on
  [null audio, audio] (null audio = tokens of an all-zero normalised mel); when the text guidance
  s_t > 1, the 3-way guidance ε_u + s_t(ε_t − ε_u) + η(ε_ta − ε_t) on [null text + null audio,
  text + null audio, text + audio]; η ≤ 1 and s_t ≤ 1: one plain audio-conditioned call.
- Decoding: ``vae.decode(z / 0.18215)``, ``(x/2 + 0.5).clamp(0, 1)``; ``output_type="np"`` then
  **truncates** ``(x·255).byte()`` as the official ``generate_videos`` does (not rounding).

Deviation from the official code (documented, deliberate): the official VAE posterior sample
draws from the *unseeded global* torch RNG, so its frame-0 latent is not reproducible per clip.
Here it draws from ``posterior_generator`` when given, else from ``generator`` **after** the
frame noise, so the frame noise equals the official noise for the same seed (the official draws
only the noise from its reseeded generator) and the whole call is deterministic. Passing
``posterior_generator=torch.Generator().manual_seed(s)`` reproduces the official run made after
``torch.manual_seed(s)`` on CPU (this is how the golden test matches golden/README §5.2).

GPU options (not measurable on the CPU-only development machine, so the tolerances below are
expectations, not measurements): attention always goes through
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels are picked
by PyTorch on CUDA; same maths, expect ε within ~1e-5 of the math kernel in fp32);
:meth:`AVSyncDPipeline.compile_unet` wraps the UNet with ``torch.compile`` (expect ε within ~1e-5);
``torch_dtype=torch.float16`` (the official ``generate_videos_for_dataset`` default) changes ε by
~1e-3 and output frames by a few uint8 levels — not bit-compatible with fp32 runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, PNDMScheduler
from diffusers.utils.torch_utils import randn_tensor

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from reference_model.audio_encoder import (
    TINY_AUDIO_CONFIG,
    ImageBindSegmaskAudioEncoder,
    repeat_over_frames,
)
from reference_model.unet import AudioUNet3DConditionModel

__all__ = [
    "SD15_SCHEDULER_CONFIG",
    "TINY_UNET_CONFIG",
    "TINY_VAE_CONFIG",
    "AVSyncDPipeline",
    "find_official_unet_folder",
    "load_official_unet",
    "tiny_random_pipeline",
]

SD15_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}
"""SD-1.5 ``scheduler/scheduler_config.json`` (PNDM), as in golden ``scheduler_config``."""

TINY_UNET_CONFIG = {
    "sample_size": 16,
    "down_block_types": ["FFSpatioAudioTempCrossAttnDownBlock3D", "FFSpatioTempResDownBlock3D"],
    "mid_block_type": "FFSpatioAudioTempCrossAttnUNetMidBlock3D",
    "up_block_types": ["FFSpatioTempResUpBlock3D", "FFSpatioAudioTempCrossAttnUpBlock3D"],
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "audio_cross_attention_dim": 768,
}
"""The golden tiny UNet (golden/README §5; other keys at their SD-1.5-like defaults)."""

TINY_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 8, 16, 16],
    "layers_per_block": 1,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}
"""The golden tiny ``AutoencoderKL`` (golden ``vae_config``): 8× downsampling like SD-1.5."""


def find_official_unet_folder(checkpoint_folder: str | os.PathLike) -> Path:
    """The ``unet`` folder of an official checkpoint.

    Accepts ``checkpoint-N``, ``checkpoint-N/modules`` or ``checkpoint-N/modules/unet`` (official
    layout: ``checkpoints/audio-cond_animation/<ds>_audio-cond_cfg/ckpts/checkpoint-N/modules/unet``
    holding ``config.json`` and ``diffusion_pytorch_model.{safetensors,bin}``).

    Raises:
        FileNotFoundError: no ``config.json`` in any of those places.
    """
    root = Path(checkpoint_folder)
    for candidate in (root, root / "unet", root / "modules" / "unet"):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"{root}: no official UNet (expected checkpoint-N/modules/unet/config.json)"
    )


def load_official_unet(
    checkpoint_folder: str | os.PathLike, torch_dtype: torch.dtype = torch.float32
) -> AudioUNet3DConditionModel:
    """Load ``modules/unet`` of an official AVSyncD checkpoint, strictly, in eval mode.

    Weights come from ``diffusion_pytorch_model.safetensors`` or else ``.bin`` (read with
    ``torch.load(weights_only=True)``: no pickled code runs). Unknown config keys (diffusers
    bookkeeping such as ``_class_name``) are ignored.

    Raises:
        FileNotFoundError: no config or weights file.
        RuntimeError: keys or shapes that do not fit the config.
    """
    folder = find_official_unet_folder(checkpoint_folder)
    config = json.loads((folder / "config.json").read_text())
    unet = AudioUNet3DConditionModel.from_config(
        {k: v for k, v in config.items() if not k.startswith("_")}
    )
    safetensors_file = folder / "diffusion_pytorch_model.safetensors"
    bin_file = folder / "diffusion_pytorch_model.bin"
    if safetensors_file.is_file():
        from safetensors.torch import load_file

        state = load_file(str(safetensors_file))
    elif bin_file.is_file():
        state = torch.load(bin_file, map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{folder}: no diffusion_pytorch_model.safetensors or .bin")
    unet.load_state_dict(state, strict=True)
    return unet.to(dtype=torch_dtype).eval()


class AVSyncDPipeline(DiffusionPipeline):
    """AVSyncD image + audio → video (see the module docstring for the algorithm).

    Components: ``vae`` (``AutoencoderKL``), ``unet`` (:class:`AudioUNet3DConditionModel`),
    ``audio_encoder`` (:class:`ImageBindSegmaskAudioEncoder`, eval mode), ``scheduler``
    (``PNDMScheduler``, SD-1.5 config) and, optionally, ``text_encoder`` (``CLIPTextModel``) +
    ``tokenizer`` (``CLIPTokenizer``) to encode class texts; without them pass
    ``text_embeddings`` (1, 77, D) — e.g. an entry of the official
    ``class_clip_text_encodings_stable-diffusion-v1-5.pt`` (text → (1, 77, 768)).
    """

    model_cpu_offload_seq = "text_encoder->audio_encoder->unet->vae"
    _optional_components = ["text_encoder", "tokenizer"]

    def __init__(
        self,
        vae: AutoencoderKL,
        unet: AudioUNet3DConditionModel,
        audio_encoder: ImageBindSegmaskAudioEncoder,
        scheduler: PNDMScheduler,
        text_encoder=None,
        tokenizer=None,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            unet=unet,
            audio_encoder=audio_encoder,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
        )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_official_checkpoint(
        cls,
        sd15_folder: str | os.PathLike,
        checkpoint_folder: str | os.PathLike,
        imagebind_path: str | os.PathLike | ImageBindSegmaskAudioEncoder,
        *,
        audio_config: dict | None = None,
        load_text_encoder: bool = True,
        torch_dtype: torch.dtype = torch.float32,
    ) -> AVSyncDPipeline:
        """Assemble the released model (PROTOCOL.md §4 "Checkpoint").

        Args:
            sd15_folder: SD-1.5 diffusers folder; ``vae/`` is required, ``scheduler/`` is used
                when present (else :data:`SD15_SCHEDULER_CONFIG`), ``tokenizer/`` +
                ``text_encoder/`` are loaded when present and ``load_text_encoder``.
            checkpoint_folder: official ``checkpoint-N`` (or its ``modules`` / ``modules/unet``);
                only ``modules/unet`` is read, as the official scripts do.
            imagebind_path: ``imagebind_huge.pth`` (or an already built encoder).
            audio_config: encoder config for the checkpoint (default: ImageBind-huge).
            torch_dtype: float32 (the official ``animation_gen.py``) or float16 (GPU only).
        """
        sd15 = Path(sd15_folder)
        vae = AutoencoderKL.from_pretrained(sd15, subfolder="vae")
        if (sd15 / "scheduler" / "scheduler_config.json").is_file():
            scheduler = PNDMScheduler.from_pretrained(sd15, subfolder="scheduler")
        else:
            scheduler = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
        text_encoder = tokenizer = None
        if load_text_encoder and (sd15 / "text_encoder").is_dir() and (sd15 / "tokenizer").is_dir():
            from transformers import CLIPTextModel, CLIPTokenizer

            tokenizer = CLIPTokenizer.from_pretrained(sd15, subfolder="tokenizer")
            text_encoder = CLIPTextModel.from_pretrained(sd15, subfolder="text_encoder").eval()
        if isinstance(imagebind_path, ImageBindSegmaskAudioEncoder):
            audio_encoder = imagebind_path
        else:
            audio_encoder = ImageBindSegmaskAudioEncoder.from_imagebind_checkpoint(
                imagebind_path, config=audio_config
            )
        unet = load_official_unet(checkpoint_folder)
        pipe = cls(vae.eval(), unet, audio_encoder.eval(), scheduler, text_encoder, tokenizer)
        return pipe if torch_dtype == torch.float32 else pipe.to(dtype=torch_dtype)

    def compile_unet(self, **compile_kwargs) -> AVSyncDPipeline:
        """``torch.compile`` the UNet in place (GPU option; first call is slow). Returns self."""
        self.unet.compile(**compile_kwargs)
        return self

    # ------------------------------------------------------------------ conditioning

    @torch.no_grad()
    def encode_text(self, text: str) -> torch.Tensor:
        """CLIP last hidden states (1, 77, D) of ``text`` (needs ``tokenizer`` + ``text_encoder``)."""
        if self.tokenizer is None or self.text_encoder is None:
            raise ValueError("no text_encoder/tokenizer: pass text_embeddings (1, 77, D) instead")
        ids = self.tokenizer(
            [text],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return self.text_encoder(ids.to(self.text_encoder.device))[0]

    @torch.no_grad()
    def encode_audio(
        self, audio: np.ndarray | torch.Tensor | str | os.PathLike | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio tokens (1, 229, 768) and bool segment masks (1, 12, 229) of one clip.

        Args:
            audio: (channels, n) float32 waveform at 16 kHz (≈2 s; longer is centre-cropped to
                32000 samples by the mel), a path to an audio/video file (resampled to 16 kHz; its
                centred 2 s window when longer, see :func:`load_audio_16k`), or None for the
                null audio (tokens of an all-zero normalised mel). The waveform is not modified
                (the official helper subtracts its mean in place).
        """
        from avsync_bench.clips import waveform_mel

        encoder = self.audio_encoder
        if audio is None:
            tokens, masks = encoder.encode_null_audio(1)
            return tokens, masks.bool()
        if isinstance(audio, (str, os.PathLike)):
            audio = load_audio_16k(audio)
        mel = waveform_mel(torch.as_tensor(audio).detach().cpu().float())[None]
        _, tokens, masks = encoder(
            mel.to(device=encoder.device, dtype=encoder.dtype), normalize=False, return_dict=False
        )
        return tokens, masks.bool()

    def _image_tensor(self, image, height: int, width: int) -> torch.Tensor:
        """(1, 3, height, width) float in [-1, 1] from PIL / uint8 (H, W, 3) / float tensor."""
        if isinstance(image, torch.Tensor):
            tensor = image.float()
            if tensor.ndim == 3:
                tensor = tensor[None]
            if tensor.shape[-2:] != (height, width):
                raise ValueError(f"image tensor must be (…, 3, {height}, {width})")
            return tensor * 2.0 - 1.0
        array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"image must be (H, W, 3) uint8, got {array.shape} {array.dtype}")
        if array.shape[:2] != (height, width):
            from avsync_bench.clips import resize_frames

            array = resize_frames(array[None], height, width)[0]
        tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255.0
        return tensor[None] * 2.0 - 1.0

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(
        self,
        image,
        audio: np.ndarray | torch.Tensor | str | os.PathLike | None,
        text: str | None = None,
        text_embeddings: torch.Tensor | None = None,
        audio_guidance: float = 4.0,
        text_guidance: float = 1.0,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
        height: int = 256,
        width: int = 256,
        num_frames: int = 12,
        output_type: str = "np",
        *,
        null_text_embeddings: torch.Tensor | None = None,
        posterior_generator: torch.Generator | None = None,
        callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Animate one image with one 2 s audio clip.

        Args:
            image: PIL image, (H, W, 3) uint8 RGB array (resized/cropped to height×width by the
                official rule when its size differs) or a (3, height, width) float tensor in
                [0, 1].
            audio: (channels, n) float32 waveform at 16 kHz, a file path, or None for no audio
                (null-audio tokens everywhere and no audio guidance: the I2V ablation).
            text / text_embeddings: the class text (needs the text encoder) or its CLIP hidden
                states (1, 77, D) / (77, D); D = ``unet.config.cross_attention_dim``.
            audio_guidance: η; > 1 enables audio CFG (4.0 official; 1/4/8 reported).
            text_guidance: s_t; > 1 enables the 3-way text + audio CFG (needs
                ``null_text_embeddings`` or the tokenizer for the empty text).
            num_inference_steps: PNDM steps (50 official).
            generator: torch generator for the frame noise, then (without
                ``posterior_generator``) the VAE posterior sample.
            height, width: output size in pixels (multiples of 8; 256×256 on AVSync15).
            num_frames: frames including the conditioning frame (12).
            output_type: ``"np"``: (F, H, W, 3) uint8, truncated ``(x·255)`` as the official;
                ``"pt"``: (F, 3, H, W) float32 in [0, 1].
            null_text_embeddings: (1, 77, D) states of the empty text (official
                ``openai-clip-l_null_text_encoding.pt``); only for text_guidance > 1.
            posterior_generator: generator of the VAE posterior sample (see module docstring).
            callback: called after each step as ``callback(i, t, guided_eps)`` with the guided
                ε (1, 4, F-1, h, w) handed to the scheduler.
        """
        device, dtype = self._execution_device, self.unet.dtype
        if height % self.vae_scale_factor or width % self.vae_scale_factor:
            raise ValueError(f"height and width must be multiples of {self.vae_scale_factor}")
        use_audio = audio is not None
        audio_cfg = use_audio and audio_guidance > 1.0
        text_cfg = text_guidance > 1.0

        # 1. text states (1, 77, D)
        if text_embeddings is None:
            if text is None:
                raise ValueError("pass text or text_embeddings")
            text_embeddings = self.encode_text(text)
        text_embeddings = text_embeddings.reshape(1, *text_embeddings.shape[-2:])
        text_embeddings = text_embeddings.to(device=device, dtype=dtype)
        if text_cfg:
            if null_text_embeddings is None:
                null_text_embeddings = self.encode_text("")
            null_text_embeddings = null_text_embeddings.reshape(1, *text_embeddings.shape[-2:])
            null_text_embeddings = null_text_embeddings.to(device=device, dtype=dtype)

        # 2. audio tokens (1, 229, 768) + masks (1, F, 229)
        tokens, masks = self.encode_audio(audio)
        null_tokens, null_masks = (
            self.encode_audio(None)
            if (audio_cfg or not use_audio)
            else (
                None,
                None,
            )
        )
        if not use_audio:
            tokens, masks = null_tokens, null_masks
        if text_cfg and audio_cfg:  # [null text + null audio, text + null audio, text + audio]
            branch_text = [null_text_embeddings, text_embeddings, text_embeddings]
            branch_audio = [(null_tokens, null_masks), (null_tokens, null_masks), (tokens, masks)]
        elif text_cfg:  # [null text + audio, text + audio]
            branch_text = [null_text_embeddings, text_embeddings]
            branch_audio = [(tokens, masks), (tokens, masks)]
        elif audio_cfg:  # [text + null audio, text + audio]
            branch_text = [text_embeddings, text_embeddings]
            branch_audio = [(null_tokens, null_masks), (tokens, masks)]
        else:
            branch_text, branch_audio = [text_embeddings], [(tokens, masks)]
        n_branch = len(branch_text)
        text_states = repeat_over_frames(torch.cat(branch_text), num_frames)
        audio_states = repeat_over_frames(torch.cat([a for a, _ in branch_audio]), num_frames)
        audio_states = audio_states.to(device=device, dtype=dtype)
        audio_masks = torch.cat([m for _, m in branch_audio]).to(device)

        # 3. latents: noise first (as the official generator order), then the frame-0 posterior
        latent_h, latent_w = height // self.vae_scale_factor, width // self.vae_scale_factor
        channels = self.unet.config.in_channels
        noise = randn_tensor(
            (1, channels, num_frames - 1, latent_h, latent_w),
            generator=generator,
            device=device,
            dtype=dtype,
        )
        pixels = self._image_tensor(image, height, width).to(device=device, dtype=self.vae.dtype)
        posterior = self.vae.encode(pixels).latent_dist
        first = posterior.sample(generator=posterior_generator or generator)
        first = (first * self.vae.config.scaling_factor).to(dtype)
        latents = torch.cat([first[:, :, None], noise], dim=2) * self.scheduler.init_noise_sigma

        # 4. denoising: frame 0 stays the clean latent
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_input = self.scheduler.scale_model_input(torch.cat([latents] * n_branch), t)
            eps = self.unet(
                model_input,
                t,
                encoder_hidden_states=text_states,
                audio_encoder_hidden_states=audio_states,
                audio_attention_mask=audio_masks,
            ).sample
            if text_cfg and audio_cfg:
                e_u, e_t, e_ta = eps.chunk(3)
                eps = e_u + text_guidance * (e_t - e_u) + audio_guidance * (e_ta - e_t)
            elif text_cfg:
                e_u, e_t = eps.chunk(2)
                eps = e_u + text_guidance * (e_t - e_u)
            elif audio_cfg:
                e_null, e_audio = eps.chunk(2)
                eps = e_null + audio_guidance * (e_audio - e_null)
            guided = eps[:, :, 1:]
            if callback is not None:
                callback(i, t, guided)
            # In place through a view, as the official loop: PNDM keeps a reference to the
            # sample of its first step (``cur_sample``) and, because that is a view of
            # ``latents``, sees the updated values at its second step (same timestep twice).
            # Writing a fresh tensor instead changes the output (golden video off by up to 49).
            moving = latents[:, :, 1:]
            moving.copy_(self.scheduler.step(guided, t, moving).prev_sample)

        # 5. decode (F, 3, H, W) in [0, 1]
        frames = latents[0].permute(1, 0, 2, 3).to(self.vae.dtype) / self.vae.config.scaling_factor
        video = (self.vae.decode(frames).sample / 2 + 0.5).clamp(0, 1).float().cpu()
        self.maybe_free_model_hooks()
        if output_type == "pt":
            return video
        if output_type != "np":
            raise ValueError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        return (video.permute(0, 2, 3, 1) * 255).to(torch.uint8).contiguous().numpy()


def load_audio_16k(path: str | os.PathLike, seconds: float = 2.0) -> np.ndarray:
    """(channels, n) float32 at 16 kHz from an audio or video file: the centred ``seconds``
    window when longer (as the official demo's single centred clip), the whole file otherwise."""
    import torchaudio

    from avsync_bench.io.media import read_wav_or_audio

    samples, rate = read_wav_or_audio(path)
    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if rate != 16000:
        wave = torchaudio.functional.resample(wave, rate, 16000)
    want = int(seconds * 16000)
    if wave.shape[1] > want:
        begin = (wave.shape[1] - want) // 2
        wave = wave[:, begin : begin + want]
    return wave.contiguous().numpy()


def tiny_random_pipeline(text_dim: int | None = None) -> tuple[AVSyncDPipeline, torch.Tensor]:
    """A tiny random-weight AVSyncD on CPU (golden tiny configs, rule weights) for demos/tests.

    Returns:
        (pipeline, text_embeddings (1, 77, 32)): the text states are a deterministic random
        tensor (rule draw keyed ``tiny_text``), because no CLIP tokenizer/weights exist offline.
    """
    from avsync_bench.weights.rule import apply_rule, rule_tensor

    unet = apply_rule(AudioUNet3DConditionModel(**TINY_UNET_CONFIG)).eval()
    vae = apply_rule(AutoencoderKL(**TINY_VAE_CONFIG)).eval()
    encoder = apply_rule(ImageBindSegmaskAudioEncoder(**TINY_AUDIO_CONFIG)).eval()
    pipe = AVSyncDPipeline(vae, unet, encoder, PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG))
    pipe.set_progress_bar_config(disable=True)
    dim = text_dim or TINY_UNET_CONFIG["cross_attention_dim"]
    text = rule_tensor("tiny_text", torch.empty(1, 77, dim)) * 20.0
    return pipe, text
