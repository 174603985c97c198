"""AADiff baseline: audio-aligned attention reweighting of Stable Diffusion 1.5 (training-free).

Reimplementation from the paper (no official code exists): S. Lee, C. Kong, D. Jeon, N. Kwak,
*AADiff: Audio-Aligned Video Synthesis with Text-to-Image Diffusion*, CVPR 2023 Workshop on AI for
Content Creation (arXiv 2305.04001). The ASVA paper (Zhang et al., CVPR 2024) re-implemented it
as an I+T+A baseline for image animation; this module follows the AADiff paper plus the choices
below, which neither paper pins down.

Method, per clip (12 frames at 6 fps, 2 s of 16 kHz audio):

1. **Amplitude** (:func:`frame_amplitudes`): the audio is averaged to mono and cut into 12
   equal windows of ``n / 12`` samples (1/6 s = 2666.7 samples at 16 kHz; frame ``f`` covers
   samples ``[round(f·n/12), round((f+1)·n/12))``); each window's RMS energy (linear amplitude, not
   dB) is one value per frame.
2. **Smoothing** (the paper's sliding-window signal smoothing): a centred moving average over
   ``smooth_window`` frames (default 3, i.e. ±1 frame = ±1/6 s), the window truncated at the clip
   ends (the mean of the frames that exist). ``smooth_window=1`` disables it.
3. **Scale** (:func:`attention_scales`): the smoothed amplitude is normalised by its maximum over
   the clip to ``a_f ∈ [0, 1]`` (a silent clip gives all zeros) and mapped to
   ``s_f = 1 + gain · a_f`` (default gain 2: silent frame ×1, loudest frame ×3), the magnitude
   range of Prompt-to-Prompt's attention reweighting that AADiff builds on.
4. **Attention reweighting** (:class:`AudioAttnProcessor`): in every cross-attention layer
   (``attn2`` of the UNet's transformer blocks) the **post-softmax** attention probabilities of
   the sound-source token columns are multiplied by ``s_f`` for frame ``f``, **without
   renormalisation** (Prompt-to-Prompt's reweighting, which AADiff uses, edits the softmax
   attention map and does not renormalise). Applied at every denoising step and every layer, on
   the conditional branch of classifier-free guidance only (the unconditional prompt "" has no
   sound-source token). Self-attention layers are left unchanged.
5. **Sound-source tokens** (:meth:`PromptTokenizer.encode`): the prompt is the class text
   (``class_mapping.json``, e.g. "lions roaring"); the sound-source words are all words of the
   class text except the generic verb "playing" (so "playing cello" → "cello", "lions roaring" →
   "lions roaring", "dog barking" → "dog barking"); every BPE token of those words is scaled.
   The paper picks the token from the prompt by hand; the class text is a noun plus the sound's
   verb, both of which describe the sounding object's action.
6. **Shared seed**: every frame starts from the same Gaussian noise (one draw from ``seed``,
   repeated over the 12 frames), so frames differ only through their attention scales.
7. **Image animation (I+T+A)**: the conditioning frame is resized (short side ``size``, default
   512, SD 1.5's native size; multiples of 8), encoded with the VAE (the posterior **mean**, times
   ``vae.config.scaling_factor``), noised SDEdit-style to ``strength`` (default 0.6: with 50 DDIM
   steps the last 30 are run, from the shared noise) and denoised with the reweighting,
   classifier-free guidance 7.5, DDIM (SD 1.5's scheduler config, eta 0). Frame 0 is replaced by
   the conditioning frame's VAE round trip (decode of the encoded mean) so that frame 0 is the
   input. Frames are decoded, clipped to [-1, 1], quantised to uint8 and resized back to the clip
   size (:func:`avsync_bench.clips.resize_frames`). The GT clip's audio is muxed.

Left out: the paper's audio-based regional editing (Prompt-to-Prompt local blending with the
token's attention mask) and its CLAP-based token choice; the text-to-video mode without an input
frame (``strength=1`` runs it from pure noise but frame 0 is still the input's round trip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from avsync_bench.clips import resize_frames
from avsync_bench.errors import InputError
from baselines.base import Adapter, AdapterError, GenerationInput, GenerationOutput

__all__ = [
    "AADiffAdapter",
    "AudioAttnProcessor",
    "PromptTokenizer",
    "TinySD",
    "attention_scales",
    "build_tiny_sd",
    "frame_amplitudes",
    "load_sd15",
    "smooth",
    "source_words",
]

#: Words of the class text that are not the sound source (see module docstring, point 5).
NON_SOURCE_WORDS = frozenset({"playing", "a", "an", "the", "of"})


def frame_amplitudes(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """RMS energy of each frame's audio window.

    Args:
        audio: (channels, n) or (n,) float in [-1, 1] (linear amplitude); channels are averaged.
        num_frames: number of video frames the audio spans (12 for 2 s at 6 fps).

    Returns:
        (num_frames,) float64 RMS amplitude (linear, same unit as the samples); frame ``f`` covers
        samples ``[round(f·n/F), round((f+1)·n/F))``.
    """
    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    n = mono.shape[0]
    if n < num_frames:
        raise ValueError(f"audio has {n} samples, fewer than {num_frames} frames")
    edges = np.round(np.arange(num_frames + 1) * n / num_frames).astype(int)
    return np.array(
        [math.sqrt(float(np.mean(mono[a:b] ** 2))) for a, b in zip(edges[:-1], edges[1:])]
    )


def smooth(values: np.ndarray, window: int = 3) -> np.ndarray:
    """Centred moving average over ``window`` frames (odd), truncated at the ends.

    Returns:
        Same shape as ``values``: entry ``f`` is the mean of ``values[f-w//2 : f+w//2+1]`` (the
        frames that exist).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"smoothing window must be odd and >= 1, got {window}")
    values = np.asarray(values, dtype=np.float64)
    half = window // 2
    return np.array(
        [values[max(0, f - half) : f + half + 1].mean() for f in range(values.shape[0])]
    )


def attention_scales(
    audio: np.ndarray, num_frames: int, window: int = 3, gain: float = 2.0
) -> np.ndarray:
    """Per-frame attention scales ``1 + gain · a_f`` from the smoothed, max-normalised RMS.

    Returns:
        (num_frames,) float64 in [1, 1 + gain]; all ones for a silent clip.
    """
    amp = smooth(frame_amplitudes(audio, num_frames), window)
    peak = amp.max()
    norm = amp / peak if peak > 1e-8 else np.zeros_like(amp)
    return 1.0 + gain * norm


def source_words(class_text: str) -> list[str]:
    """The sound-source words of a class text: its words minus :data:`NON_SOURCE_WORDS`
    (all words when that leaves none)."""
    words = class_text.lower().split()
    kept = [w for w in words if w not in NON_SOURCE_WORDS]
    return kept or words


class PromptTokenizer:
    """CLIP BPE tokenisation that also returns the token positions of given words.

    Wraps either a ``transformers.CLIPTokenizer`` (real runs: the SD 1.5 folder's ``tokenizer``)
    or ``open_clip.tokenizer.SimpleTokenizer`` (offline / tiny runs; the same BPE vocabulary as
    CLIP, 49408 tokens, bundled with open_clip). Words are tokenised one by one (CLIP's BPE
    never merges across whitespace), so the positions of each word's tokens are known exactly.

    Args:
        tokenizer: a CLIPTokenizer, or None for open_clip's SimpleTokenizer.
        max_length: context length (77 for SD 1.5).
    """

    def __init__(self, tokenizer=None, max_length: int = 77):
        self.max_length = max_length
        if tokenizer is None:
            from open_clip.tokenizer import SimpleTokenizer

            simple = SimpleTokenizer()
            self._encode_word = simple.encode
            self.bos = simple.encoder["<start_of_text>"]
            self.eos = simple.encoder["<end_of_text>"]
            self.pad = 0  # open_clip pads with 0
        else:
            self._encode_word = lambda w: tokenizer(w, add_special_tokens=False)["input_ids"]
            self.bos = tokenizer.bos_token_id
            self.eos = tokenizer.eos_token_id
            self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos

    def encode(self, text: str, words: list[str] | None = None) -> tuple[torch.Tensor, list[int]]:
        """Token ids of ``text`` and the positions of ``words``' tokens.

        Args:
            words: words of ``text`` (lower case) whose token positions are returned; None: none.

        Returns:
            (max_length,) int64 ids ``[bos, tokens…, eos, pad…]`` (truncated to fit), and the
            sorted positions (indices into the ids) of every token of a word in ``words``.
        """
        ids, positions = [self.bos], []
        wanted = {w.lower() for w in (words or [])}
        for word in text.lower().split():
            tokens = list(self._encode_word(word))
            start = len(ids)
            ids += tokens
            if word in wanted:
                positions += list(range(start, start + len(tokens)))
        ids = ids[: self.max_length - 1] + [self.eos]
        positions = [p for p in positions if p < self.max_length - 1]
        ids += [self.pad] * (self.max_length - len(ids))
        return torch.tensor(ids, dtype=torch.long), positions


class AudioAttnProcessor:
    """Cross-attention processor that multiplies the softmax probabilities of chosen key columns.

    Set on every ``attn2`` layer of the UNet. Before each UNet call the pipeline sets
    :attr:`column_scale`: a (batch, key_length) float tensor of multipliers (1 everywhere except
    the sound-source columns of conditional rows, where it is the frame's scale). The probabilities
    (batch·heads, query_length, key_length) are multiplied by it (broadcast over heads and
    queries), not renormalised. Otherwise identical to diffusers' ``AttnProcessor``.

    Attributes:
        column_scale: (batch, key_length) tensor, or None to leave attention unchanged.
        recorder: optional callable ``(name, probs)`` called with the reweighted probabilities,
            (batch·heads, query_length, key_length) (used by the tests).
        name: the layer's name in ``unet.attn_processors``.
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.column_scale: torch.Tensor | None = None
        self.recorder = None

    def __call__(
        self,
        attn,
        hidden_states,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        *args,
        **kwargs,
    ):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        query = attn.head_to_batch_dim(query)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)

        probs = attn.get_attention_scores(query, key, attention_mask)
        if self.column_scale is not None:
            scale = self.column_scale.to(probs.dtype).to(probs.device)
            # head_to_batch_dim is batch-major: rows b·heads … (b+1)·heads-1 belong to sample b
            scale = scale.repeat_interleave(attn.heads, dim=0)[:, None, :]
            probs = probs * scale
        if self.recorder is not None:
            self.recorder(self.name, probs)

        hidden_states = torch.bmm(probs, value)
        hidden_states = attn.batch_to_head_dim(hidden_states)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(
                batch_size, channel, height, width
            )
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@dataclass
class TinySD:
    """The pieces of an SD 1.5-like model the adapter uses."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: PromptTokenizer
    scheduler: object
    source: str


def build_tiny_sd() -> TinySD:
    """A tiny SD 1.5-shaped model with rule weights (:func:`avsync_bench.weights.rule.apply_rule`)
    for CPU tests: UNet (32/64 channels, 2 levels, cross-attention dim 32), VAE (4 levels of 32
    channels, /8 downsampling, 4 latent channels), CLIP text encoder (CLIP's 49408-token vocab,
    2 layers, width 32), open_clip's BPE tokenizer, DDIM with SD 1.5's schedule."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from avsync_bench.weights.rule import apply_rule

    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=0,
        )
    )
    for module in (unet, vae, text):
        apply_rule(module)
        module.eval()
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return TinySD(unet, vae, text, PromptTokenizer(None), scheduler, "tiny-random (rule weights)")


def load_sd15(folder, device: str = "cpu", dtype: torch.dtype = torch.float32) -> TinySD:
    """Load SD 1.5 from a diffusers folder (``unet``, ``vae``, ``text_encoder``, ``tokenizer``,
    ``scheduler`` subfolders); the scheduler is DDIM built from the folder's scheduler config.

    Raises:
        ValueError: a part is missing or unreadable.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = str(folder)
    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype)
        text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=dtype)
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
        scheduler = DDIMScheduler.from_pretrained(folder, subfolder="scheduler")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load Stable Diffusion 1.5 from {folder}: {exc}") from exc
    for module in (unet, vae, text):
        module.to(device).eval()
    return TinySD(unet, vae, text, PromptTokenizer(tokenizer), scheduler, folder)


class AADiffAdapter(Adapter):
    """AADiff on SD 1.5 (see the module docstring for the method and every open choice).

    Args:
        model: the SD pieces (:func:`load_sd15` or :func:`build_tiny_sd`).
        strength: SDEdit strength in (0, 1]: the fraction of the DDIM steps run from the noised
            conditioning frame (default 0.6).
        steps: DDIM steps of the full schedule (default 50).
        guidance: classifier-free guidance scale (default 7.5).
        gain: attention scale of the loudest frame minus 1 (default 2).
        smooth_window: frames of the centred moving average of the amplitude (odd; default 3).
        size: short side of the generation resolution in pixels (default 512).
        device: torch device for the computation.
    """

    name = "aadiff"

    def __init__(
        self,
        model: TinySD,
        strength: float = 0.6,
        steps: int = 50,
        guidance: float = 7.5,
        gain: float = 2.0,
        smooth_window: int = 3,
        size: int = 512,
        device: str = "cpu",
    ):
        if not 0 < strength <= 1:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        smooth(np.zeros(1), smooth_window)  # validates the window
        self.model = model
        self.strength, self.steps, self.guidance = strength, steps, guidance
        self.gain, self.smooth_window, self.size, self.device = gain, smooth_window, size, device
        self.processors: dict[str, AudioAttnProcessor] = {}
        procs = {}
        for name, proc in model.unet.attn_processors.items():
            if name.endswith("attn2.processor"):
                self.processors[name] = procs[name] = AudioAttnProcessor(name)
            else:
                procs[name] = proc
        model.unet.set_attn_processor(procs)

    # -- helpers -------------------------------------------------------------------------------
    def _gen_size(self, height: int, width: int) -> tuple[int, int]:
        k = self.size / min(height, width)
        return max(8, round(height * k / 8) * 8), max(8, round(width * k / 8) * 8)

    def _dtype(self) -> torch.dtype:
        return next(self.model.unet.parameters()).dtype

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 → (1, 4, H/8, W/8) scaled latent (VAE posterior mean × scaling)."""
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        x = (x / 127.5 - 1.0).to(self.device, self._dtype())
        vae = self.model.vae
        return vae.encode(x).latent_dist.mean * vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """(B, 4, h, w) scaled latents → (B, 8h, 8w, 3) uint8 (clipped to [-1, 1], rounded)."""
        vae = self.model.vae
        x = vae.decode(latents / vae.config.scaling_factor).sample.float().clamp(-1, 1)
        x = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
        return x.cpu().numpy()

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.text_encoder(ids[None].to(self.device))[0].to(self._dtype())

    # -- generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, inputs: GenerationInput) -> GenerationOutput:
        """Generate one clip: (12, H, W, 3) uint8 at the clip size, frame 0 = the input's VAE
        round trip; the GT clip's audio is muxed.

        Raises:
            AdapterError: the class text has no sound-source token, or the audio is too short.
        """
        spec = inputs.spec
        frames_n = spec.num_frames
        try:
            scales = attention_scales(inputs.audio, frames_n, self.smooth_window, self.gain)
        except ValueError as exc:
            raise AdapterError(f"{inputs.name}: {exc}") from exc
        tok = self.model.tokenizer
        ids, positions = tok.encode(inputs.class_text, source_words(inputs.class_text))
        if not positions:
            raise AdapterError(f"{inputs.name}: no sound-source token in {inputs.class_text!r}")
        uncond_ids, _ = tok.encode("")
        cond, uncond = self._embed(ids), self._embed(uncond_ids)
        key_len = cond.shape[1]

        # (2F, K) column multipliers: unconditional rows 1, conditional rows s_f on the tokens
        column = torch.ones(2 * frames_n, key_len, dtype=torch.float32)
        column[frames_n:, positions] = torch.from_numpy(scales).float()[:, None]
        for proc in self.processors.values():
            proc.column_scale = column.to(self.device)

        gen_h, gen_w = self._gen_size(spec.height, spec.width)
        image = resize_frames(inputs.first_frame[None], gen_h, gen_w)[0]
        x0 = self.encode_image(image)  # (1, 4, h, w)

        scheduler = self.model.scheduler
        scheduler.set_timesteps(self.steps, device=self.device)
        run = min(self.steps, max(1, int(round(self.steps * self.strength))))
        timesteps = scheduler.timesteps[self.steps - run :]
        generator = torch.Generator("cpu").manual_seed(int(inputs.seed))
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32)
        noise = noise.to(self.device, x0.dtype)
        if self.strength >= 1:
            latents = noise * getattr(scheduler, "init_noise_sigma", 1.0)
        else:
            latents = scheduler.add_noise(x0, noise, timesteps[:1])
        latents = latents.repeat(frames_n, 1, 1, 1)  # shared seed: same start for every frame
        text = torch.cat([uncond.repeat(frames_n, 1, 1), cond.repeat(frames_n, 1, 1)])
        try:
            for t in timesteps:
                model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
                eps = self.model.unet(model_in, t, encoder_hidden_states=text).sample
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + self.guidance * (eps_c - eps_u)
                latents = scheduler.step(eps, t, latents).prev_sample
        finally:
            for proc in self.processors.values():
                proc.column_scale = None
        latents[0] = x0[0]  # frame 0: the conditioning frame's VAE round trip
        frames = np.concatenate([self.decode_latents(latents[i : i + 1]) for i in range(frames_n)])
        if frames.shape[1:3] != (spec.height, spec.width):
            frames = resize_frames(frames, spec.height, spec.width)
        self.last_scales = scales
        return GenerationOutput(frames)

    def config(self) -> dict:
        """Settings recorded in ``generation.json``."""
        return {
            "model": self.model.source,
            "strength": self.strength,
            "steps": self.steps,
            "guidance": self.guidance,
            "scheduler": "DDIM (eta 0)",
            "attention": "cross-attention softmax probabilities of the sound-source tokens "
            "× (1 + gain · amplitude), not renormalised, conditional branch, every step",
            "gain": self.gain,
            "amplitude": "RMS per 1/6 s frame window, centred moving average, max-normalised",
            "smooth_window_frames": self.smooth_window,
            "size": self.size,
            "sound_source_tokens": "class-text words minus 'playing'/articles",
            "frame0": "VAE round trip of the conditioning frame",
            "shared_seed": True,
        }
