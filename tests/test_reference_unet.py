"""AVSyncD reference model against the golden fixtures of the official code (golden/README §5, §6).

Weights come from the deterministic rule (golden/README §1); tolerances from §8 (UNet ε atol 1e-4;
audio tokens atol 1e-4, driven by the mel's thread sensitivity).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.weights.rule import apply_rule
from reference_model.audio_encoder import (
    CHECKPOINT_PREFIXES,
    IMAGEBIND_HUGE_AUDIO_CONFIG,
    TINY_AUDIO_CONFIG,
    ImageBindSegmaskAudioEncoder,
    repeat_over_frames,
    segment_time_mask,
    window_time_column_starts,
    window_token_indices,
)
from reference_model.unet import TRAINABLE_MARKERS, AudioUNet3DConditionModel

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
ATOL = 1e-4


def _golden(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    meta, tensors = GOLDEN / f"{name}.json", GOLDEN / f"{name}.safetensors"
    if not (meta.is_file() and tensors.is_file()):
        pytest.skip(f"golden fixture {name} is absent from {GOLDEN}")
    return json.loads(meta.read_text()), load_file(str(tensors))


def _public(config) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


@pytest.fixture(scope="module")
def tokens_golden():
    return _golden("imagebind_audio_tokens")


@pytest.fixture(scope="module")
def unet_golden():
    return _golden("avsync_unet")


@pytest.fixture(scope="module")
def encoder(tokens_golden):
    return apply_rule(ImageBindSegmaskAudioEncoder(**TINY_AUDIO_CONFIG)).eval()


@pytest.fixture(scope="module")
def unet(unet_golden):
    meta, _ = unet_golden
    return apply_rule(AudioUNet3DConditionModel(**meta["unet_config"])).eval()


# ---------------------------------------------------------------- audio tokens (golden §6)


def test_audio_encoder_state_dict_matches_manifest(encoder, tokens_golden):
    meta, _ = tokens_golden
    manifest = meta["state_dict_manifest"]
    state = encoder.state_dict()
    assert list(state) == [entry["key"] for entry in manifest]
    assert all(list(state[e["key"]].shape) == e["shape"] for e in manifest)
    for probe in meta["rule_probe"]:
        first4 = state[probe["key"]].flatten()[:4]
        assert torch.allclose(first4, torch.tensor(probe["first4"]), atol=1e-7)


def test_audio_tokens_match_golden(encoder, tokens_golden):
    meta, tensors = tokens_golden
    with torch.no_grad():
        cls_embeds, encodings, masks = encoder(tensors["inputs.mel"], normalize=False)
        output = encoder(tensors["inputs.mel"], normalize=True, return_dict=True)
    assert encodings.shape == (3, 229, 768)
    assert _max_diff(encodings, tensors["outputs.audio_encodings"]) < ATOL
    assert _max_diff(cls_embeds, tensors["outputs.cls_embeds"]) < ATOL
    assert _max_diff(output.audio_embeds, tensors["outputs.cls_embeds_normalized"]) < ATOL
    assert torch.equal(output.audio_encodings, encodings)
    assert masks.dtype == torch.bool
    assert torch.equal(masks, tensors["outputs.segment_masks"].bool())
    assert torch.equal(window_token_indices(), tensors["outputs.window_token_indices"])
    assert torch.equal(segment_time_mask(19, 12), tensors["outputs.time_column_split_mask"].bool())
    assert window_time_column_starts() == meta["window_time_column_starts"]


def test_null_audio_is_zero_mel(encoder, tokens_golden):
    _, tensors = tokens_golden  # inputs.mel[0] is the all-zero (null-audio) mel
    null_tokens, null_masks = encoder.encode_null_audio(batch_size=2)
    assert null_tokens.shape == (2, 229, 768) and null_masks.shape == (2, 12, 229)
    assert _max_diff(null_tokens, tensors["outputs.audio_encodings"][0].expand(2, -1, -1)) < ATOL
    assert repeat_over_frames(null_tokens, 12).shape == (2, 12, 229, 768)


def test_audio_weights_load_from_imagebind_state_dict(encoder, tmp_path):
    full = {}
    for key, value in encoder.state_dict().items():
        for prefix, target in CHECKPOINT_PREFIXES.items():
            if key.startswith(target):
                full[prefix + key[len(target) :]] = value.clone()
    full["modality_trunks.vision.blocks.0.attn.in_proj_weight"] = torch.zeros(3, 3)  # ignored
    path = tmp_path / "imagebind_huge.pth"
    torch.save(full, path)
    loaded = ImageBindSegmaskAudioEncoder.from_imagebind_checkpoint(path, config=TINY_AUDIO_CONFIG)
    assert not loaded.training
    for key, value in loaded.state_dict().items():
        if key.startswith("final_layer_norm."):  # never trained: default values
            assert torch.equal(
                value, torch.ones(768) if key.endswith("weight") else torch.zeros(768)
            )
        else:
            assert torch.equal(value, encoder.state_dict()[key]), key
    del full["modality_trunks.audio.blocks.1.mlp.fc1.weight"]
    with pytest.raises(RuntimeError, match="missing"):
        ImageBindSegmaskAudioEncoder.from_imagebind_checkpoint(full, config=TINY_AUDIO_CONFIG)


def test_huge_audio_keys_match_imagebind_model_layout():
    """The real checkpoint's audio keys (ImageBind-huge, built on the meta device) map 1:1."""
    from accelerate import init_empty_weights

    from avsync_bench.models.imagebind import HUGE_CONFIG, build_imagebind

    full = build_imagebind(HUGE_CONFIG, ["audio"], empty=True).state_dict()
    renamed = {}
    for key, value in full.items():
        for prefix, target in CHECKPOINT_PREFIXES.items():
            if key.startswith(prefix):
                renamed[target + key[len(prefix) :]] = tuple(value.shape)
    with init_empty_weights():
        huge = ImageBindSegmaskAudioEncoder(**IMAGEBIND_HUGE_AUDIO_CONFIG)
    own = {k: tuple(v.shape) for k, v in huge.state_dict().items()}
    assert own.pop("final_layer_norm.weight") == (768,) and own.pop("final_layer_norm.bias") == (
        768,
    )
    assert renamed == own
    assert own["head.2.weight"] == (1024, 768) and huge.num_tokens == 229


# ---------------------------------------------------------------- UNet (golden §5)


def test_unet_state_dict_matches_manifest(unet, unet_golden):
    meta, _ = unet_golden
    manifest = meta["unet_state_dict_manifest"]
    state = unet.state_dict()
    assert len(state) == 330
    assert list(state) == [entry["key"] for entry in manifest]
    assert all(list(state[e["key"]].shape) == e["shape"] for e in manifest)
    for probe in meta["unet_rule_probe"]:
        first4 = state[probe["key"]].flatten()[:4]
        assert torch.allclose(first4, torch.tensor(probe["first4"]), atol=1e-7)


def _audio_inputs(unet_golden, tokens_golden, clip: int = 1):
    _, tensors = unet_golden
    _, tokens = tokens_golden
    audio = repeat_over_frames(tokens["outputs.audio_encodings"][[0, clip]], 12)  # [null, clip]
    return audio, tensors["inputs.audio_attention_mask"].bool()


@pytest.mark.parametrize("case", ["t981", "t1"])
def test_unet_noise_pred_and_cfg_match_golden(unet, unet_golden, tokens_golden, case):
    _, tensors = unet_golden
    audio, mask = _audio_inputs(unet_golden, tokens_golden)
    with torch.no_grad():
        eps = unet(
            tensors[f"{case}.inputs.sample"],
            tensors[f"{case}.inputs.timestep"],
            encoder_hidden_states=tensors["inputs.encoder_hidden_states"],
            audio_encoder_hidden_states=audio,
            audio_attention_mask=mask,
        ).sample
    assert eps.shape == (2, 4, 12, 16, 16)
    assert _max_diff(eps, tensors[f"{case}.outputs.noise_pred"]) < ATOL
    eps_null, eps_audio = eps.chunk(2)
    guided = eps_null + 4.0 * (eps_audio - eps_null)
    assert _max_diff(guided, tensors[f"{case}.outputs.cfg_guided_eta4"]) < ATOL


def test_unet_first_pipeline_call_matches_golden(unet, unet_golden, tokens_golden):
    """8x8 latents (a size that is not the config's sample_size), text repeated per frame."""
    _, tensors = unet_golden
    audio, mask = _audio_inputs(unet_golden, tokens_golden)
    text = tensors["inputs.encoder_hidden_states"][0, 0].expand(2, 12, 77, 32)
    with torch.no_grad():
        eps = unet(
            tensors["pipeline.first_unet_call.sample"],
            981,
            text,
            audio,
            audio_attention_mask=mask,
            return_dict=False,
        )[0]
    assert _max_diff(eps, tensors["pipeline.first_unet_call.noise_pred"]) < ATOL
    guided = eps[:1] + 4.0 * (eps[1:] - eps[:1])
    reference = tensors["pipeline.first_step.guided_noise_pred_frames1to11"]
    assert _max_diff(guided[:, :, 1:], reference) < ATOL


def test_unet_save_pretrained_round_trip(unet, tmp_path):
    unet.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = AudioUNet3DConditionModel.from_pretrained(tmp_path)
    assert _public(loaded.config) == _public(unet.config)
    original, reloaded = unet.state_dict(), loaded.state_dict()
    assert list(reloaded) == list(original)
    assert all(torch.equal(reloaded[k], original[k]) for k in original)


def test_trainable_parameters_are_temporal_and_audio_only(unet_golden):
    meta, _ = unet_golden
    model = AudioUNet3DConditionModel(**meta["unet_config"])
    names = model.freeze_non_trainable()
    assert names and names == sorted(n for n, _ in model.trainable_named_parameters())
    assert all(any(m in n for m in TRAINABLE_MARKERS) for n in names)
    frozen_parts = (".attn1.", ".attn2.", ".ff.", ".norm1.", ".norm2.", ".norm3.", ".proj_in.")
    assert not [n for n in names if any(part in n for part in frozen_parts)]
    for kind in ("conv_temp", "attn_temp", "norm_temp", "pos_embedding_temp", "attn_audio"):
        assert any(kind in n for n in names), kind
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(names)


def test_gradient_checkpointing_backward_reaches_only_trainable(unet_golden):
    meta, _ = unet_golden
    torch.manual_seed(0)
    model = AudioUNet3DConditionModel(**meta["unet_config"]).train()
    model.freeze_non_trainable()
    model.enable_gradient_checkpointing()
    sample = torch.randn(1, 4, 3, 8, 8)
    text, audio = torch.randn(1, 3, 77, 32), torch.randn(1, 3, 229, 768)
    mask = torch.rand(1, 3, 229) > 0.5
    model(sample, 10, text, audio, audio_attention_mask=mask).sample.square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == {n for n, _ in model.trainable_named_parameters()}
    assert grads["conv_out.conv_temp.weight"].abs().sum() > 0


def test_from_pretrained_2d_loads_sd_weights_and_reduces_to_2d(tmp_path):
    """SD-1.5-style 2D weights land in the 2D parts; new parts keep their fresh init (zero
    ``conv_temp`` and ``attn_temp.to_out.0.weight``). With one frame and the new attention
    outputs zeroed, the 3D model equals diffusers' UNet2DConditionModel."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet_2d = UNet2DConditionModel(
        sample_size=16,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
    ).eval()
    unet_2d.save_pretrained(tmp_path / "unet")
    model, info = AudioUNet3DConditionModel.from_pretrained_2d(
        tmp_path,
        subfolder="unet",
        config_overrides={"audio_cross_attention_dim": 16},
        output_loading_info=True,
    )
    state_2d, state_3d = unet_2d.state_dict(), model.state_dict()
    assert sorted(info["loaded"]) == sorted(state_2d) and not info["shape_mismatch"]
    assert all(torch.equal(state_3d[k], v) for k, v in state_2d.items())
    assert all(any(m in k for m in TRAINABLE_MARKERS) for k in info["fresh"])
    assert all(not v.any() for k, v in state_3d.items() if ".conv_temp." in k)
    assert all(not v.any() for k, v in state_3d.items() if "attn_temp.to_out.0.weight" in k)

    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("attn_audio", "attn_temp")):
                module.to_out[0].weight.zero_()
                module.to_out[0].bias.zero_()
    model.eval()
    sample, text = torch.randn(2, 4, 1, 16, 16), torch.randn(2, 1, 77, 32)
    audio = torch.randn(2, 1, 229, 16)
    with torch.no_grad():
        eps_3d = model(sample, 500, text, audio).sample[:, :, 0]
        eps_2d = unet_2d(sample[:, :, 0], 500, text[:, 0]).sample
    assert _max_diff(eps_3d, eps_2d) < 1e-5
