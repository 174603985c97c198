"""AVSyncD inference pipeline: golden end-to-end run (golden/README §5.2), guidance algebra,
determinism, official checkpoint layout, and the animate / generate avsyncd commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.predictions import check_clip_file
from avsync_bench.protocol import ClipSpec
from avsync_bench.weights.rule import apply_rule
from reference_model.audio_encoder import (
    CHECKPOINT_PREFIXES,
    TINY_AUDIO_CONFIG,
    ImageBindSegmaskAudioEncoder,
)
from reference_model.pipeline import (
    SD15_SCHEDULER_CONFIG,
    TINY_UNET_CONFIG,
    TINY_VAE_CONFIG,
    AVSyncDPipeline,
    load_official_unet,
    tiny_random_pipeline,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "golden"
GALLERY_V0 = SHARED / "data/avsync15-gallery/videos/baby_babbling_crying/gallery_baby_crying.mp4"
ASSETS = SHARED / "data/asva-assets"
CLI = [sys.executable, "-m", "avsync_bench.cli"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_random_pipeline()


def _inputs(size: int = 64):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    audio = (0.3 * rng.standard_normal((2, 32000))).astype(np.float32)
    return image, audio


def _golden_image_64() -> np.ndarray:
    """Frame 0 of clip v0_c1 (start 1 s) as ``generate_videos`` saw it: the first frame with
    pts ≥ 1 s, centre-cropped, bilinear-antialias resized to 64×64 as floats, ×255 truncated."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    from avsync_bench.io.media import decode_video

    frame = next(f for f in decode_video(GALLERY_V0, 1.0, 1.5) if f.pts_us >= 1_000_000)
    x = torch.from_numpy(frame.rgb).permute(2, 0, 1).float() / 255.0
    h, w = x.shape[-2:]
    x = x[..., (w - h) // 2 : (w - h) // 2 + h]
    x = TF.resize(x, [64, 64], InterpolationMode.BILINEAR, antialias=True)
    return (x * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def test_tiny_configs_match_golden():
    meta_path = GOLDEN / "avsync_unet.json"
    if not meta_path.is_file():
        pytest.skip("golden avsync_unet.json absent")
    meta = json.loads(meta_path.read_text())
    assert {k: meta["unet_config"][k] for k in TINY_UNET_CONFIG} == TINY_UNET_CONFIG
    assert meta["vae_config"] == TINY_VAE_CONFIG
    assert meta["scheduler_config"] == SD15_SCHEDULER_CONFIG


def test_golden_pipeline_end_to_end():
    """The official 50-step run: first UNet call, first guided ε, and the uint8 video (±1)."""
    if not (GOLDEN / "avsync_unet.safetensors").is_file() or not GALLERY_V0.is_file():
        pytest.skip("golden fixture or gallery video absent")
    from diffusers import AutoencoderKL, PNDMScheduler

    from reference_model.unet import AudioUNet3DConditionModel

    meta = json.loads((GOLDEN / "avsync_unet.json").read_text())
    gold = load_file(str(GOLDEN / "avsync_unet.safetensors"))
    unet = apply_rule(AudioUNet3DConditionModel(**meta["unet_config"])).eval()
    vae = apply_rule(AutoencoderKL(**meta["vae_config"])).eval()
    encoder = apply_rule(ImageBindSegmaskAudioEncoder(**TINY_AUDIO_CONFIG)).eval()
    scheduler = PNDMScheduler.from_config(meta["scheduler_config"])
    pipe = AVSyncDPipeline(vae, unet, encoder, scheduler)
    pipe.set_progress_bar_config(disable=True)

    captured: dict[str, torch.Tensor] = {}

    def first_call(module, args, kwargs, output):
        if "sample" not in captured:
            captured["sample"], captured["eps"] = args[0].clone(), output.sample.clone()

    def on_step(i, t, guided):
        if i == 0:
            captured["guided"] = guided.clone()

    handle = unet.register_forward_hook(first_call, with_kwargs=True)
    audio = gold["pipeline.input_audio_16k"].clone()
    video = pipe(
        _golden_image_64(),
        audio.numpy(),
        text_embeddings=gold["inputs.encoder_hidden_states"][0, 0],
        audio_guidance=4.0,
        num_inference_steps=50,
        generator=torch.Generator().manual_seed(1006),
        height=64,
        width=64,
        posterior_generator=torch.Generator().manual_seed(1005),  # = torch.manual_seed(1005)
        callback=on_step,
    )
    handle.remove()
    assert pipe.scheduler.timesteps.tolist() == meta["pipeline"]["timesteps"]
    assert torch.equal(audio, gold["pipeline.input_audio_16k"])  # not mean-subtracted in place
    torch.testing.assert_close(
        captured["sample"], gold["pipeline.first_unet_call.sample"], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        captured["eps"], gold["pipeline.first_unet_call.noise_pred"], atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        captured["guided"],
        gold["pipeline.first_step.guided_noise_pred_frames1to11"],
        atol=1e-4,
        rtol=0,
    )
    expected = gold["pipeline.output_video_uint8"].numpy()
    assert video.shape == expected.shape == (12, 64, 64, 3) and video.dtype == np.uint8
    diff = np.abs(video.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_guidance_algebra_and_determinism(tiny):
    pipe, text = tiny
    image, audio = _inputs()
    calls: list[int] = []
    handle = pipe.unet.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    kwargs = dict(text_embeddings=text, num_inference_steps=2, height=64, width=64)
    seeded = lambda: torch.Generator().manual_seed(7)  # noqa: E731

    guided: dict[float, list[torch.Tensor]] = {}
    for eta in (1.0, 2.0, 3.0):
        guided[eta] = []
        pipe(image, audio, audio_guidance=eta, generator=seeded(), output_type="pt",
             callback=lambda i, t, g, eta=eta: guided[eta].append(g.clone()), **kwargs)  # fmt: skip
    handle.remove()
    assert calls[:3] == [1, 1, 1] and set(calls[3:]) == {2}  # η=1: one call; else one batched
    # ε(η) = ε∅ + η(εa − ε∅) at the first step (same input for every η): η=1 is εa, and the
    # three values are collinear in η.
    e1, e2, e3 = (guided[eta][0] for eta in (1.0, 2.0, 3.0))
    torch.testing.assert_close(e3 - e2, e2 - e1, atol=1e-5, rtol=1e-4)
    assert (e2 - e1).abs().max() > 1e-4

    a = pipe(image, audio, audio_guidance=4.0, generator=seeded(), **kwargs)
    b = pipe(image, audio, audio_guidance=4.0, generator=seeded(), **kwargs)
    c = pipe(image, audio, audio_guidance=4.0, generator=torch.Generator().manual_seed(8), **kwargs)
    assert a.shape == (12, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)

    # 3-way text + audio CFG and the no-audio (I2V) path run and differ from plain audio CFG.
    three = pipe(image, audio, audio_guidance=4.0, text_guidance=2.0, generator=seeded(),
                 null_text_embeddings=torch.zeros_like(text), **kwargs)  # fmt: skip
    silent = pipe(image, None, audio_guidance=4.0, generator=seeded(), **kwargs)
    assert three.shape == silent.shape == a.shape
    assert not np.array_equal(three, a) and not np.array_equal(silent, a)


def test_from_official_checkpoint_layout(tiny, tmp_path):
    pipe, text = tiny
    unet_dir = tmp_path / "ckpts/checkpoint-37000/modules/unet"
    unet_dir.mkdir(parents=True)
    (unet_dir / "config.json").write_text(json.dumps(dict(pipe.unet.config)))
    torch.save(pipe.unet.state_dict(), unet_dir / "diffusion_pytorch_model.bin")
    pipe.vae.save_pretrained(tmp_path / "sd15/vae")
    pipe.scheduler.save_pretrained(tmp_path / "sd15/scheduler")
    inverse = {target: prefix for prefix, target in CHECKPOINT_PREFIXES.items()}
    imagebind = {}
    for key, value in pipe.audio_encoder.state_dict().items():
        for target, prefix in inverse.items():
            if key.startswith(target):
                imagebind[prefix + key[len(target) :]] = value
    torch.save(imagebind, tmp_path / "imagebind.pth")

    loaded = AVSyncDPipeline.from_official_checkpoint(
        tmp_path / "sd15",
        tmp_path / "ckpts/checkpoint-37000",
        tmp_path / "imagebind.pth",
        audio_config=TINY_AUDIO_CONFIG,
    )
    loaded.set_progress_bar_config(disable=True)
    for a, b in ((pipe.unet, loaded.unet), (pipe.vae, loaded.vae)):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    # The extra LayerNorm is recreated at its defaults (never trained, PROTOCOL §4); copy the
    # tiny model's rule values so that the two pipelines are the same model.
    assert torch.equal(loaded.audio_encoder.final_layer_norm.weight, torch.ones(768))
    loaded.audio_encoder.final_layer_norm.load_state_dict(
        pipe.audio_encoder.final_layer_norm.state_dict()
    )
    image, audio = _inputs()
    kwargs = dict(text_embeddings=text, num_inference_steps=2, height=64, width=64)
    ours = pipe(image, audio, generator=torch.Generator().manual_seed(3), **kwargs)
    theirs = loaded(image, audio, generator=torch.Generator().manual_seed(3), **kwargs)
    assert np.array_equal(ours, theirs)

    save_file(pipe.unet.state_dict(), str(unet_dir / "diffusion_pytorch_model.safetensors"))
    assert isinstance(
        load_official_unet(tmp_path / "ckpts/checkpoint-37000/modules"), type(pipe.unet)
    )
    with pytest.raises(FileNotFoundError):
        load_official_unet(tmp_path)


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AVSYNC_BENCH_HOME": str(tmp_path / "home")}
    return subprocess.run(CLI + args, capture_output=True, text=True, cwd=tmp_path, env=env)


def test_animate_tiny_random(tmp_path):
    image, wav = ASSETS / "lion_and_gun.png", ASSETS / "lions_roaring.wav"
    if not (image.is_file() and wav.is_file()):
        pytest.skip(f"demo assets absent from {ASSETS}")
    out = tmp_path / "lion.mp4"
    # 64 px is the --tiny-random default
    args = ["animate", "--image", str(image), "--audio", str(wav), "--category", "lions roaring",
            "--steps", "2", "--tiny-random", "--out", str(out)]  # fmt: skip
    result = _cli(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "denoising step: 2/2 (100%)" in result.stderr  # a progress line per step in logs
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == 6
        audio_stream = container.streams.audio[0]
        assert audio_stream.rate == 16000
        duration = float(audio_stream.duration * audio_stream.time_base)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (64, 64, 3)
    assert abs(duration - 2.0) < 0.1


def test_generate_avsyncd_tiny_random(tiny_dataset, tmp_path):
    preds = tmp_path / "preds"
    args = ["generate", "avsyncd", "--tiny-random", "--steps", "2", "--limit", "1",
            "--data-root", str(tiny_dataset), "--out", str(preds)]  # fmt: skip
    result = _cli(args, tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted(preds.rglob("*.mp4"))
    assert len(files) == 3
    spec = ClipSpec()
    for path in files:
        assert check_clip_file(path.relative_to(preds).as_posix(), path, spec) is None
    manifest = json.loads((preds / "generation.json").read_text())
    assert manifest["adapter"] == "avsyncd" and manifest["written"] == 3
    helped = _cli(["generate", "i2vd", "--help"], tmp_path)
    assert helped.returncode == 0 and "image-to-video" in helped.stdout


def test_i2vd_adapter_ignores_audio(tiny):
    from baselines.avsyncd import AVSyncDAdapter, I2VDAdapter
    from baselines.base import GenerationInput

    pipe, text = tiny
    image, audio = _inputs()
    spec = ClipSpec(height=64, width=64)
    clip = dict(name="c/x_clip-00.mp4", first_frame=image, class_text="c", class_folder="c",
                spec=spec, seed=0)  # fmt: skip
    i2v = I2VDAdapter(pipe, text_embeddings=text, num_inference_steps=1)
    loud = i2v.generate(GenerationInput(audio=audio, **clip)).frames
    quiet = i2v.generate(GenerationInput(audio=np.zeros_like(audio) + 0.5, **clip)).frames
    assert loud.shape == (12, 64, 64, 3) and np.array_equal(loud, quiet)
    av_frames = AVSyncDAdapter(pipe, text_embeddings=text, num_inference_steps=1)
    assert not np.array_equal(av_frames.generate(GenerationInput(audio=audio, **clip)).frames, loud)
    assert i2v.config()["audio_conditioning"] is False
