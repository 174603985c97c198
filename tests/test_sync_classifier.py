"""AV-sync classifier (PROTOCOL.md §3): golden equivalence, preprocessing, checkpoint loading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import avsync_bench  # noqa: F401
from avsync_bench.models.sync_classifier import (
    MODULE_NAMES,
    AudioConv2DNet,
    AVSyncClassifier,
    FCHead,
    VideoR2Plus1DNet,
)
from avsync_bench.models.sync_preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    classifier_data_frames,
    classifier_eval_frames,
    nearest_pts_indices,
)
from avsync_bench.weights.rule import apply_rule

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "golden"
TOL = {"atol": 1e-4, "rtol": 1e-4}  # golden/README.md §8, classifier outputs


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared golden fixtures live beside the repo)")
    return path


@pytest.fixture(scope="module")
def sync_golden():
    """(json metadata, tensors) of golden/sync_classifier.*."""
    _need(SHARED)
    from safetensors.torch import load_file

    meta = json.loads(_need(GOLDEN / "sync_classifier.json").read_text())
    return meta, load_file(str(_need(GOLDEN / "sync_classifier.safetensors")))


@pytest.fixture(scope="module")
def prep_golden():
    """(json metadata, tensors) of golden/preprocessing.*."""
    _need(SHARED)
    from safetensors.torch import load_file

    meta = json.loads(_need(GOLDEN / "preprocessing.json").read_text())
    return meta, load_file(str(_need(GOLDEN / "preprocessing.safetensors")))


@pytest.fixture(scope="module")
def rule_model() -> AVSyncClassifier:
    """The classifier with the golden/README.md §1 rule applied to each module separately."""
    model = AVSyncClassifier(AudioConv2DNet(), VideoR2Plus1DNet(), FCHead())
    for name in MODULE_NAMES:
        apply_rule(getattr(model, name))
    return model.eval()


def _small_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Cheap inputs for bit-identity checks: real-size mel, small frames (the nets are conv)."""
    generator = torch.Generator().manual_seed(7)
    mel = torch.randn(2, 1, 128, 204, generator=generator) * 0.5
    frames = torch.randn(2, 3, 4, 64, 64, generator=generator)
    return mel, frames


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


# ------------------------------------------------------------------------- golden equivalence


def test_state_dict_keys_match_official_manifests(sync_golden):
    meta, _ = sync_golden
    model = AVSyncClassifier()
    for name in MODULE_NAMES:
        manifest = meta["state_dict_manifests"][name]
        state = getattr(model, name).state_dict()
        assert [(e["key"], e["shape"], e["dtype"]) for e in manifest] == [
            (k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()
        ]
    assert [len(meta["state_dict_manifests"][n]) for n in MODULE_NAMES] == [54, 201, 6]


def test_rule_probe(sync_golden, rule_model):
    meta, _ = sync_golden
    for name in MODULE_NAMES:
        state = getattr(rule_model, name).state_dict()
        for probe in meta["rule_probe"][name]:
            value = state[probe["key"]]
            first = value.reshape(-1)[:4].double().tolist()
            np.testing.assert_allclose(first, probe["first4"], rtol=0, atol=1e-7)
            assert value.double().sum().item() == pytest.approx(probe["sum_f64"], abs=1e-6)


def test_golden_equivalence(sync_golden, rule_model):
    """golden/README.md §7: rule weights, eval mode, stored inputs → stored outputs."""
    _, tensors = sync_golden
    mel, frames = tensors["inputs.mel"], tensors["inputs.frames"].float()
    with torch.no_grad():
        audio = rule_model.audio_encoder(mel)
        video = rule_model.video_encoder(frames)
        phi_head = rule_model.head(audio, video)[:, 0]
        pairs = rule_model.pairwise(audio, video)
        phi = rule_model(mel, frames)
    torch.testing.assert_close(audio, tensors["outputs.audio_features"], **TOL)
    torch.testing.assert_close(video, tensors["outputs.video_features"], **TOL)
    torch.testing.assert_close(phi, tensors["outputs.phi"], **TOL)
    torch.testing.assert_close(phi_head, tensors["outputs.phi"], **TOL)
    torch.testing.assert_close(pairs, tensors["outputs.phi_pairs"], **TOL)
    torch.testing.assert_close(torch.diagonal(pairs), phi, **TOL)
    assert phi.dtype == torch.float32 and phi.shape == (3,)


def test_phi_end_to_end_real_items(sync_golden, prep_golden, rule_model):
    """Metric preprocessing of frames_u8/255 (golden §2.2) + classifier = official φ."""
    _, tensors = sync_golden
    prep_meta, prep = prep_golden
    frames_u8 = torch.stack([prep["v0_c1.frames_u8"], prep["v0_c2.frames_u8"]])  # (2,12,H,W,3)
    videos = frames_u8.permute(0, 4, 1, 2, 3).float() / 255.0  # (2, 3, 12, 256, 256)
    inputs = classifier_eval_frames(videos)
    assert inputs.shape == (2, 3, 12, 224, 224) and inputs.dtype == torch.float32

    # The stored classifier inputs are the float16 rounding of this preprocessing.
    assert torch.equal(inputs.half(), tensors["inputs.frames"][:2])
    derived = prep_meta["derived"]
    first = inputs[:1].contiguous()
    assert hashlib.sha256(first.numpy().tobytes()).hexdigest() == derived["sync_input_sha256_f32"]
    sums = first[0].double().sum(dim=(0, 2, 3))
    sumsq = first[0].double().square().sum(dim=(0, 2, 3))
    np.testing.assert_allclose(sums, derived["sync_input_per_frame_sum_f64"], rtol=1e-9)
    np.testing.assert_allclose(sumsq, derived["sync_input_per_frame_sumsq_f64"], rtol=1e-9)
    # uint8 input is accepted and divided by 255 first.
    torch.testing.assert_close(
        classifier_eval_frames(frames_u8[:1].permute(0, 4, 1, 2, 3)), first, atol=0, rtol=0
    )

    with torch.no_grad():
        phi = rule_model(tensors["inputs.mel"][:2], inputs)
    torch.testing.assert_close(phi, tensors["outputs.phi_end_to_end_real_items"], **TOL)


def test_forward_rejects_bad_shapes(rule_model):
    with pytest.raises(ValueError, match="batch"):
        rule_model(torch.zeros(2, 1, 128, 204), torch.zeros(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, 12, 224, 224\)"):
        rule_model.video_encoder(torch.zeros(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 1, 128, 204\)"):
        rule_model.audio_encoder(torch.zeros(1, 128, 204))


# ----------------------------------------------------------------------- checkpoint formats


def _write_official_folder(model: AVSyncClassifier, modules: Path) -> None:
    """The released layout: modules/<name>/{config.json, diffusion_pytorch_model.bin}."""
    configs = {
        "audio_encoder": {"_class_name": "AudioConv2DNet", "pretrained": True},
        "video_encoder": {"_class_name": "VideoR2Plus1DNet", "pretrained": True},
        "head": {"_class_name": "FCHead", "dim": 512, "dropout": 0.0, "out_dim": 1},
    }
    for name in MODULE_NAMES:
        folder = modules / name
        folder.mkdir(parents=True)
        config = {**configs[name], "_diffusers_version": "0.29.2"}
        (folder / "config.json").write_text(json.dumps(config))
        torch.save(getattr(model, name).state_dict(), folder / "diffusion_pytorch_model.bin")


def test_official_checkpoint_round_trip(tmp_path, rule_model):
    modules = tmp_path / "checkpoint-40000" / "modules"
    _write_official_folder(rule_model, modules)
    mel, frames = _small_inputs()
    with torch.no_grad():
        expected = rule_model(mel, frames)

    for folder in (modules, modules.parent):  # the modules/ folder or its checkpoint parent
        loaded = AVSyncClassifier.from_official_checkpoint(folder)
        assert not loaded.training
        _assert_same_state(loaded, rule_model)
        with torch.no_grad():
            assert torch.equal(loaded(mel, frames), expected)

    # A wrong key: the error names the file and the key.
    bad = tmp_path / "bad"
    _write_official_folder(rule_model, bad)
    head_bin = bad / "head" / "diffusion_pytorch_model.bin"
    state = torch.load(head_bin, weights_only=True)
    state["fc.9.weight"] = state.pop("fc.6.weight")
    torch.save(state, head_bin)
    with pytest.raises(ValueError, match="fc.6.weight") as error:
        AVSyncClassifier.from_official_checkpoint(bad)
    assert str(head_bin) in str(error.value)
    # Two weight files are ambiguous; a missing sub-folder is named.
    torch.save({}, bad / "head" / "other.bin")
    with pytest.raises(ValueError, match="other.bin"):
        AVSyncClassifier.from_official_checkpoint(bad)
    (bad / "head" / "other.bin").unlink()
    for path in (bad / "head").iterdir():
        path.unlink()
    (bad / "head").rmdir()
    with pytest.raises(FileNotFoundError, match="head"):
        AVSyncClassifier.from_official_checkpoint(bad)


def test_save_pretrained_round_trip(tmp_path, rule_model):
    """One layout for trained and released checkpoints (diffusers ModelMixin, official keys)."""
    directory = rule_model.save_pretrained(tmp_path / "checkpoint-3" / "modules")
    for name in MODULE_NAMES:
        assert (directory / name / "diffusion_pytorch_model.bin").is_file()
        config = json.loads((directory / name / "config.json").read_text())
        assert config["_class_name"] == type(getattr(rule_model, name)).__name__
        assert config.get("pretrained", False) is False  # no AVID-CMA file needed to load
        state = torch.load(directory / name / "diffusion_pytorch_model.bin", weights_only=True)
        assert list(state) == list(getattr(rule_model, name).state_dict())  # official key names
    mel, frames = _small_inputs()
    with torch.no_grad():
        expected = rule_model(mel, frames)
    for folder in (directory, directory.parent):
        loaded = AVSyncClassifier.from_pretrained(folder)
        assert not loaded.training
        _assert_same_state(loaded, rule_model)
        with torch.no_grad():
            assert torch.equal(loaded(mel, frames), expected)
    # The official loader's call (avsync_eval.py): <Class>.from_pretrained(sub, use_safetensors=False).
    parts = {
        name: cls.from_pretrained(directory / name, use_safetensors=False).eval()
        for name, cls in (
            ("audio_encoder", AudioConv2DNet),
            ("video_encoder", VideoR2Plus1DNet),
            ("head", FCHead),
        )
    }
    with torch.no_grad():
        assert torch.equal(AVSyncClassifier(**parts)(mel, frames), expected)


def test_reduced_widths_round_trip(tmp_path):
    """Test configs shrink the encoders through the config's ``channels``; the layout is the same."""
    model = AVSyncClassifier(
        AudioConv2DNet(channels=(4, 4, 8, 8, 16)),
        VideoR2Plus1DNet(channels=(4, 4, 8, 8, 16)),
        FCHead(dim=16),
    ).eval()
    loaded = AVSyncClassifier.from_pretrained(model.save_pretrained(tmp_path / "m"))
    mel, frames = _small_inputs()
    with torch.no_grad():
        assert torch.equal(loaded(mel, frames), model(mel, frames))
    with pytest.raises(ValueError, match="channels"):
        AudioConv2DNet(channels=(4, 4))


# ----------------------------------------------------------------------------- AVID-CMA init


def test_from_avid_cma(tmp_path, rule_model):
    model_state = {}
    for name, prefix in (("audio_encoder", "audio_model"), ("video_encoder", "video_model")):
        for key, value in getattr(rule_model, name).state_dict().items():
            if name == "video_encoder" and key.endswith("num_batches_tracked"):
                continue  # old checkpoints may lack it; BatchNorm fills it (official too)
            model_state[f"module.{prefix}.{key}"] = value
    model_state["module.audio_proj.0.weight"] = torch.zeros(3)  # unrelated keys are ignored
    path = tmp_path / "AVID-CMA_Audioset_fake_checkpoint.pth.tar"
    torch.save({"epoch": 1, "model": model_state}, path)

    loaded = AVSyncClassifier.from_avid_cma(path)
    _assert_same_state(loaded.audio_encoder, rule_model.audio_encoder)
    _assert_same_state(loaded.video_encoder, rule_model.video_encoder)
    assert isinstance(loaded.head, FCHead)

    # Missing encoder keys: a clear error naming the file and the key.
    del model_state["module.video_model.conv5x.1.out_bn.weight"]
    torch.save({"model": model_state}, path)
    with pytest.raises(ValueError, match="conv5x.1.out_bn.weight") as error:
        AVSyncClassifier.from_avid_cma(path)
    assert str(path) in str(error.value) and "missing" in str(error.value)

    no_audio = tmp_path / "no_audio.pth.tar"
    torch.save({"model": {"module.video_model.x": torch.zeros(1)}}, no_audio)
    with pytest.raises(ValueError, match="module.audio_model") as error:
        AVSyncClassifier.from_avid_cma(no_audio)
    assert str(no_audio) in str(error.value)
    not_ckpt = tmp_path / "plain.pth"
    torch.save({"state": {}}, not_ckpt)
    with pytest.raises(ValueError, match="'model'"):
        AVSyncClassifier.from_avid_cma(not_ckpt)
    with pytest.raises(FileNotFoundError, match="absent.pth.tar"):
        AVSyncClassifier.from_avid_cma(tmp_path / "absent.pth.tar")


# ----------------------------------------------------------------- classifier-data frame path


def _us_rounded(pts: np.ndarray) -> np.ndarray:
    """Seconds as the official decoder reports them (integer microseconds)."""
    return np.round(pts * 1e6) * 1e-6


def test_nearest_pts_indices():
    # 30 fps from t=0. Frame i/6 s is frame 5i. The first target is 0 + 1e-4 s and the seek
    # drops frames before it, so frame 0 (pts 0) is not a candidate and frame 1 is picked.
    pts30 = _us_rounded(np.arange(90) / 30)
    expected = [1] + [5 * i for i in range(1, 12)]
    assert nearest_pts_indices(pts30, 0.0).tolist() == expected

    # 25 fps from s = 0.51: targets 0.5101, 0.6767, 0.8433, 1.01, ... → round(25·t), except
    # the last one (2.3433 → 58.58): the read stops after the last target, so frame 59
    # (2.36 s) is never a candidate and frame 58 (2.32 s) is picked.
    pts25 = _us_rounded(np.arange(75) / 25)
    got = nearest_pts_indices(pts25, 0.51, n=12, fps=6)
    assert got.dtype == np.int64
    assert got.tolist() == [13, 17, 21, 25, 29, 34, 38, 42, 46, 50, 54, 58]

    # Several clips read together (training loader): one read window for all, so clip 2's
    # first frame (target 0.2101) is frame 6 at 0.2 s, before its own start; shape (K, n).
    multi = nearest_pts_indices(pts30, [0.0, 0.21], n=3, fps=6)
    assert multi.shape == (2, 3)
    assert multi.tolist() == [[1, 5, 10], [6, 11, 16]]

    # Ties go to the earlier frame (target 0.25 between 0.125 and 0.375); the first frame
    # after the last target (0.5) ends the read, so 0.4 s is never a candidate.
    got = nearest_pts_indices([0.125, 0.375, 0.5, 0.6, 0.4], 0.0, n=3, fps=4)
    assert got.tolist() == [0, 0, 2]

    with pytest.raises(ValueError, match="no decoded frame"):
        nearest_pts_indices([5.0, 6.0], 0.0)
    with pytest.raises(ValueError, match="ascending"):
        nearest_pts_indices(pts30, [0.5, 0.1])


def test_classifier_data_frames():
    from torchvision import transforms

    # Constant-colour frames keep their colour: output = (c/255 - mean)/std.
    colours = torch.tensor([[10, 200, 30], [250, 0, 128], [64, 64, 64]], dtype=torch.uint8)
    frames = colours[:, :, None, None].expand(3, 3, 120, 160).contiguous()  # (F, 3, H, W)
    out = classifier_data_frames(frames)
    assert out.shape == (3, 3, 224, 224) and out.dtype == torch.float32
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    expect = (colours.float() / 255 - mean) / std  # (F, 3)
    torch.testing.assert_close(out.mean(dim=(2, 3)), expect, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.amax(dim=(2, 3)), expect, atol=1e-5, rtol=0)

    # Gathering into clips: (n,) → (3, n, 224, 224), (K, n) → (K, 3, n, 224, 224).
    clip = classifier_data_frames(frames, [2, 0, 0, 1])
    assert clip.shape == (3, 4, 224, 224)
    torch.testing.assert_close(clip[:, 0, 5, 7], expect[2], atol=1e-5, rtol=0)
    torch.testing.assert_close(clip[:, 2, 100, 100], expect[0], atol=1e-5, rtol=0)
    clips = classifier_data_frames(frames.float() / 255, np.array([[0, 1], [1, 2]]))
    assert clips.shape == (2, 3, 2, 224, 224)
    torch.testing.assert_close(clips[1, :, 1, 0, 0], expect[2], atol=1e-5, rtol=0)

    # Short side to 224 (the aspect is kept), then a centre crop: 240x320 → 224x298 → 224x224,
    # dropping 37 columns on the left. A frame with a vertical edge at column 160 keeps it
    # centred; compare with the official transform objects.
    image = torch.zeros(1, 3, 240, 320, dtype=torch.uint8)
    image[..., 160:] = 255
    out = classifier_data_frames(image)
    official = transforms.Compose(
        [
            transforms.Resize(224, transforms.InterpolationMode.BICUBIC, antialias=True),
            transforms.CenterCrop(224),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )(image.float() / 255)
    assert torch.equal(out, official)
    row = out[0, 0, 112]
    assert row[:100].max() < -1.7 and row[124:].min() > 1.9  # edge at column 112 ± a few
    # A squash (metric path) would instead keep the whole width.
    squashed = classifier_eval_frames(image[:, :, None].float() / 255)
    assert squashed.shape == (1, 3, 1, 224, 224)

    with pytest.raises(IndexError):
        classifier_data_frames(frames, [3])
    with pytest.raises(ValueError, match=r"\(F, 3, H, W\)"):
        classifier_data_frames(frames[0])
