"""Adapters that run an external generator: ``command`` (any program) and ``codi`` (CoDi's
driver in its own environment, exercised here against a stand-in CoDi module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from avsync_bench.datasets import load_split
from avsync_bench.predictions import check_predictions
from avsync_bench.protocol import ClipSpec, ProtocolMode
from baselines.codi import DRIVER_PATH, CoDiAdapter
from baselines.codi_driver import DEFAULT_CHECKPOINTS
from baselines.command import CommandAdapter
from baselines.runner import run_adapter

SPEC = ClipSpec()
# The stand-in generator paints frame i in grey 4·i + 2; two YUV round trips (its encode, ours)
# lower a grey level by 0 to 2, so round((grey - 1) / 4) recovers i.

GENERATOR = r'''
"""Stand-in generator: uniform frames (grey 4·i + 2) at an odd fps and size, optional tone."""
import argparse, json, sys, wave
from fractions import Fraction

import av
import numpy as np
from PIL import Image

p = argparse.ArgumentParser()
for name in ("--image", "--audio", "--text", "--out", "--name", "--class-folder", "--log"):
    p.add_argument(name)
p.add_argument("--seed", type=int)
p.add_argument("--fps", default="25")
p.add_argument("--size", default="200x120")
p.add_argument("--seconds", type=float, default=2.1)
p.add_argument("--frames", type=int, default=None)
p.add_argument("--tone", action="store_true")
p.add_argument("--fail-on", default="")
a = p.parse_args()
print(f"gen: animating {a.text!r}", file=sys.stderr)
if a.fail_on and a.fail_on in a.text:
    print(f"boom: cannot animate {a.text}", file=sys.stderr)
    sys.exit(3)
with wave.open(a.audio) as w:
    wav = {"rate": w.getframerate(), "n": w.getnframes(), "channels": w.getnchannels()}
image = np.asarray(Image.open(a.image))
if a.log:
    with open(a.log, "a") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "wav": wav, "image": list(image.shape)}) + "\n")
fps = Fraction(a.fps)
width, height = map(int, a.size.split("x"))
count = a.frames if a.frames is not None else int(round(a.seconds * fps))
with av.open(a.out, "w") as c:
    v = c.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt, v.options = width, height, "yuv420p", {"crf": "10"}
    s = c.add_stream("aac", rate=44100, layout="mono") if a.tone else None
    for i in range(count):
        frame = np.full((height, width, 3), (4 * i + 2) % 256, np.uint8)
        c.mux(v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    c.mux(v.encode(None))
    if s is not None:
        t = np.arange(int(a.seconds * 44100)) / 44100.0
        tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
        for b in range(0, tone.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, b : b + 1024]), format="fltp", layout="mono")
            af.sample_rate, af.pts = 44100, b
            c.mux(s.encode(af))
        c.mux(s.encode(None))
print(f"gen: wrote {count} frames", file=sys.stderr)
'''


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "my_gen.py"
    path.write_text(GENERATOR)
    return path


def template(generator: Path, extra: str = "") -> str:
    return (
        f"{sys.executable} {generator} --image {{image}} --audio {{audio}} --text {{text}} "
        f"--out {{out}} --seed {{seed}} --name {{name}} --class-folder {{class_folder}} {extra}"
    )


def read_clip(path: Path) -> tuple[list[np.ndarray], av.container.InputContainer, np.ndarray]:
    """(frames, video stream info, audio (channels, n) float32) of a written prediction."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {"fps": stream.average_rate, "size": (stream.height, stream.width)}
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return frames, info, audio


def grey_indices(frames: list[np.ndarray], step: int = 4, offset: float = 1.0) -> list[int]:
    """The source frame index painted into each (uniform) frame."""
    return [int(round((float(f.mean()) - offset) / step)) for f in frames]


def videos_of(root: Path, classes: set[str] | None = None):
    videos = load_split("avsync15", root, "test")
    return [v for v in videos if classes is None or v.class_folder in classes]


def test_command_adapter_writes_the_protocol_format(tiny_dataset, generator, tmp_path):
    log = tmp_path / "calls.jsonl"
    adapter = CommandAdapter(template(generator, f"--log {log}"))
    report = run_adapter(adapter, tmp_path / "preds", data_root=tiny_dataset)
    assert report.failed == {} and len(report.written) == 6
    assert not check_predictions(tmp_path / "preds", videos_of(tiny_dataset), SPEC).problems
    for name in report.written:
        frames, info, audio = read_clip(tmp_path / "preds" / name)
        assert len(frames) == 12 and info["fps"] == 6 and info["size"] == (256, 256)
        assert audio.shape[1] > 0
        # 25 fps source, official picking from t=0: the first frame with pts >= k/6, ceil(k·25/6)
        assert grey_indices(frames) == [0, 5, 9, 13, 17, 21, 25, 30, 34, 38, 42, 46]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 6
    first = calls[0]
    assert first["argv"][first["argv"].index("--text") + 1] == "dog barking"  # one argument
    assert first["argv"][first["argv"].index("--name") + 1] == "dog_barking/a_clip-00"
    assert first["argv"][first["argv"].index("--class-folder") + 1] == "dog_barking"
    assert first["argv"][first["argv"].index("--seed") + 1] == "0"
    assert first["image"] == [256, 256, 3]
    assert first["wav"]["rate"] == 16000 and first["wav"]["channels"] == 2
    assert 31900 <= first["wav"]["n"] <= 32000
    manifest = json.loads((tmp_path / "preds/generation.json").read_text())
    assert (
        manifest["adapter"] == "command"
        and manifest["adapter_config"]["cmd"] == adapter.cmd_template
    )
    assert manifest["adapter_config"]["audio_source"] == "ground-truth clip"


def dominant_frequency(audio: np.ndarray, rate: int = 16000) -> float:
    mono = audio.mean(axis=0)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1.0 / rate)[np.argmax(spectrum)])


def test_keep_audio_muxes_the_generators_audio(tiny_dataset, generator, tmp_path):
    cmd = template(generator, "--fps 30000/1001 --size 200x120 --tone")
    kwargs = {"data_root": tiny_dataset, "limit": 1, "mode": ProtocolMode.corrected}
    kept = run_adapter(CommandAdapter(cmd, keep_audio=True), tmp_path / "kept", **kwargs)
    gt = run_adapter(CommandAdapter(cmd), tmp_path / "gt", **kwargs)
    assert kept.failed == {} == gt.failed and len(kept.written) == 3
    name = kept.written[0]
    kept_frames, info, kept_audio = read_clip(tmp_path / "kept" / name)
    _, _, gt_audio = read_clip(tmp_path / "gt" / name)
    assert len(kept_frames) == 12 and info["fps"] == 6 and info["size"] == (256, 256)
    # 29.97 fps source, corrected picking: the nearest frame to k/6 s is frame 5k
    assert grey_indices(kept_frames) == [5 * k for k in range(12)]
    assert abs(dominant_frequency(kept_audio) - 440.0) < 10.0
    assert abs(dominant_frequency(gt_audio) - 440.0) > 10.0
    n = min(kept_audio.shape[1], gt_audio.shape[1])
    assert np.abs(kept_audio[:, :n].mean(0) - gt_audio[:, :n].mean(0)).max() > 0.2
    assert not check_predictions(
        tmp_path / "kept", videos_of(tiny_dataset, {"dog_barking"}), SPEC
    ).problems
    manifest = json.loads((tmp_path / "kept/generation.json").read_text())
    assert manifest["adapter_config"]["keep_audio"] is True


def test_keep_audio_without_an_audio_track_fails_the_clip(tiny_dataset, generator, tmp_path):
    adapter = CommandAdapter(template(generator), keep_audio=True)
    report = run_adapter(adapter, tmp_path / "p", data_root=tiny_dataset, limit=1)
    assert len(report.failed) == 3 and not report.written
    assert all("no audio track" in reason for reason in report.failed.values())


def test_too_few_frames_names_the_clip_and_the_stderr_tail(tiny_dataset, generator, tmp_path):
    report = run_adapter(
        CommandAdapter(template(generator, "--frames 5")),
        tmp_path / "p",
        data_root=tiny_dataset,
        limit=1,
    )
    assert len(report.failed) == 3
    reason = report.failed["dog_barking/a_clip-01.mp4"]
    assert reason.startswith("dog_barking/a_clip-01.mp4:") and "5 frame(s), fewer than 12" in reason
    assert "gen: wrote 5 frames" in reason


def test_a_video_shorter_than_the_clip_is_refused_not_padded(tiny_dataset, generator, tmp_path):
    """12 frames at 24 fps cover 0.5 s: 9 of the 12 frames picked at 6 fps would repeat the last
    one, so the clip fails with the reason instead of becoming a frozen prediction."""
    report = run_adapter(
        CommandAdapter(template(generator, "--frames 12 --fps 24")),
        tmp_path / "p",
        data_root=tiny_dataset,
        limit=1,
    )
    assert len(report.failed) == 3 and not report.written
    reason = report.failed["dog_barking/a_clip-00.mp4"]
    assert "covers only 0.50 s of the 2 s clip: 9 of the 12 frames" in reason, reason


def cli(args, tmp_path):
    env = {**os.environ, "AVSYNC_BENCH_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "avsync_bench.cli", *args], capture_output=True, text=True, env=env
    )


def test_failing_command_is_reported_per_clip_and_the_run_resumes(
    tiny_dataset, generator, tmp_path
):
    preds = tmp_path / "preds"
    base = ["generate", "command", "--data-root", str(tiny_dataset), "--out", str(preds)]
    failing = cli(base + ["--cmd", template(generator, "--fail-on hammering")], tmp_path)
    assert failing.returncode == 1
    stderr = " ".join(failing.stderr.split())
    assert "3 written, 0 already present, 3 failed" in stderr
    assert "exited with code 3" in stderr and "boom: cannot animate hammering" in stderr
    manifest = json.loads((preds / "generation.json").read_text())
    assert sorted(manifest["failed"]) == [f"hammering/b_clip-0{i}.mp4" for i in range(3)]
    assert manifest["written"] == 3

    again = run_adapter(CommandAdapter(template(generator)), preds, data_root=tiny_dataset)
    assert len(again.written) == 3 and len(again.skipped) == 3 and not again.failed
    assert not check_predictions(preds, videos_of(tiny_dataset), SPEC).problems


def test_command_template_is_checked():
    with pytest.raises(ValueError, match="must contain"):
        CommandAdapter("python gen.py --image {image}")
    with pytest.raises(ValueError, match=r"unknown placeholder.*\{video\}"):
        CommandAdapter("python gen.py --video {video} --out {out}")
    with pytest.raises(ValueError, match="empty"):
        CommandAdapter("  ")
    adapter = CommandAdapter("gen --text '{text}' --out={out} --seed {seed:03d} {{x}}")
    values = {"text": "playing violin fiddle", "out": "/o.mp4", "seed": 7}
    assert adapter.command_for(values) == [
        "gen", "--text", "playing violin fiddle", "--out=/o.mp4", "--seed", "007", "{x}",
    ]  # fmt: skip


# --- CoDi: the real driver against a stand-in CoDi checkout -----------------------------------

FAKE_CODI = r'''
"""Stand-in for CoDi's core/models/model_module_infer.py: logs every call, returns grey frames."""
import json
import os
import time

import numpy as np
import torch
from PIL import Image


def _log(entry):
    with open(os.environ["FAKE_CODI_LOG"], "a") as f:
        f.write(json.dumps(entry) + "\n")


class model_module:
    def __init__(self, data_dir="pretrained", pth=("CoDi_encoders.pth",), fp16=False):
        _log({"event": "init", "data_dir": data_dir, "pth": list(pth), "fp16": fp16, "cwd": os.getcwd()})
        if os.environ.get("FAKE_CODI_FAIL_LOAD"):
            raise RuntimeError("fake: cannot load weights")
        print("Load pretrained weight from", pth)  # stdout noise, as CoDi prints

    def cuda(self):
        return self

    def eval(self):
        return self

    def inference(self, xtype=[], condition=[], condition_types=[], n_samples=1,
                  mix_weight=None, image_size=256, ddim_steps=50, scale=7.5, num_frames=8):
        described = {}
        for value, kind in zip(condition, condition_types):
            if kind == "image":
                described[kind] = [value.size[0], value.size[1], value.mode]
            elif kind == "audio":
                described[kind] = [list(value.shape), str(value.dtype)]
            else:
                described[kind] = value
        _log({"event": "inference", "xtype": xtype, "condition_types": condition_types,
              "conditions": described, "n_samples": n_samples, "image_size": image_size,
              "ddim_steps": ddim_steps, "scale": scale, "num_frames": num_frames,
              "noise": float(torch.rand(1))})
        hang = os.environ.get("FAKE_CODI_HANG_ONCE")
        if hang and not os.path.exists(hang):
            open(hang, "w").close()
            time.sleep(120)
        fail = os.environ.get("FAKE_CODI_FAIL_TEXT")
        if fail and fail in str(described.get("text")):
            raise ValueError("fake: no video for " + described["text"])
        frames = [Image.fromarray(np.full((image_size, image_size, 3), 20 * i, np.uint8))
                  for i in range(num_frames)]
        return [[frames]]
'''


@pytest.fixture()
def fake_codi(tmp_path, monkeypatch) -> Path:
    """A clone-like folder ``i-Code/i-Code-V3`` with the stand-in module and empty checkpoints."""
    repo = tmp_path / "i-Code" / "i-Code-V3"
    (repo / "core/models").mkdir(parents=True)
    (repo / "core/__init__.py").write_text("")
    (repo / "core/models/__init__.py").write_text("")
    (repo / "core/models/model_module_infer.py").write_text(FAKE_CODI)
    (repo / "checkpoints").mkdir()
    for name in DEFAULT_CHECKPOINTS:
        (repo / "checkpoints" / name).write_bytes(b"")
    monkeypatch.setenv("FAKE_CODI_LOG", str(tmp_path / "codi.jsonl"))
    return repo


def codi_log(repo: Path) -> list[dict]:
    path = repo.parents[1] / "codi.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_codi_adapter_runs_the_driver_once_per_run(tiny_dataset, fake_codi, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CODI_FAIL_TEXT", "hammering")
    adapter = CoDiAdapter(fake_codi.parent, sys.executable, ddim_steps=3, scale=2.0)
    report = run_adapter(adapter, tmp_path / "preds", data_root=tiny_dataset)
    assert sorted(report.written) == [f"dog_barking/a_clip-0{i}.mp4" for i in range(3)]
    assert sorted(report.failed) == [f"hammering/b_clip-0{i}.mp4" for i in range(3)]
    assert all("fake: no video for hammering" in r for r in report.failed.values())
    assert adapter._proc is None and adapter._tmp is None  # closed by the runner

    log = codi_log(fake_codi)
    inits = [e for e in log if e["event"] == "init"]
    calls = [e for e in log if e["event"] == "inference"]
    assert len(inits) == 1 and len(calls) == 6  # the model is loaded once; a failure keeps it
    assert (
        inits[0]["cwd"] == str(fake_codi)
        and inits[0]["pth"][-1] == "CoDi_video_diffuser_8frames.pth"
    )
    call = calls[0]
    assert call["xtype"] == ["video"] and call["condition_types"] == ["image", "text", "audio"]
    assert call["conditions"]["image"] == [256, 256, "RGB"]
    assert call["conditions"]["text"] == "dog barking"
    (samples,), dtype = call["conditions"]["audio"]
    assert 31900 <= samples <= 32000 and dtype == "torch.float32"
    settings = {
        k: call[k] for k in ("n_samples", "image_size", "ddim_steps", "scale", "num_frames")
    }
    assert settings == {
        "n_samples": 1,
        "image_size": 256,
        "ddim_steps": 3,
        "scale": 2.0,
        "num_frames": 8,
    }
    assert len({c["noise"] for c in calls}) == 1  # every job is reseeded with the run's seed

    preds = tmp_path / "preds"
    assert not check_predictions(preds, videos_of(tiny_dataset, {"dog_barking"}), SPEC).problems
    frames, info, audio = read_clip(preds / "dog_barking/a_clip-00.mp4")
    assert len(frames) == 12 and info["fps"] == 6 and info["size"] == (256, 256) and audio.size
    # 8 frames at 4 fps, official picking: every frame once, then the last one as padding
    assert grey_indices(frames, 20, 0.0) == [0, 1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7]
    config = json.loads((preds / "generation.json").read_text())["adapter_config"]
    assert config["ddim_steps"] == 3 and config["codi_fps"] == 4.0
    assert config["conditions"] == ["image", "text", "audio"]


def test_codi_load_failure_fails_every_clip_without_retrying(
    tiny_dataset, fake_codi, tmp_path, monkeypatch
):
    monkeypatch.setenv("FAKE_CODI_FAIL_LOAD", "1")
    adapter = CoDiAdapter(fake_codi, sys.executable)
    report = run_adapter(adapter, tmp_path / "preds", data_root=tiny_dataset, limit=1)
    assert len(report.failed) == 3 and not report.written
    assert all(
        "CoDi failed to load: RuntimeError: fake: cannot load weights" in r
        for r in report.failed.values()
    )
    assert len(codi_log(fake_codi)) == 1


def test_codi_timeout_kills_and_restarts_the_driver(tiny_dataset, fake_codi, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CODI_HANG_ONCE", str(tmp_path / "hung"))
    adapter = CoDiAdapter(fake_codi, sys.executable, timeout=2)
    report = run_adapter(adapter, tmp_path / "preds", data_root=tiny_dataset, limit=1)
    assert list(report.failed) == ["dog_barking/a_clip-00.mp4"] and len(report.written) == 2
    assert "CoDi timed out after 2 s" in report.failed["dog_barking/a_clip-00.mp4"]
    assert len([e for e in codi_log(fake_codi) if e["event"] == "init"]) == 2


def test_codi_settings_are_checked(fake_codi, tmp_path):
    with pytest.raises(ValueError, match="not a CoDi checkout"):
        CoDiAdapter(tmp_path / "nowhere", sys.executable)
    with pytest.raises(ValueError, match="not an executable"):
        CoDiAdapter(fake_codi, tmp_path / "python")
    with pytest.raises(ValueError, match="missing CoDi checkpoint.*extra.pth"):
        CoDiAdapter(fake_codi, sys.executable, checkpoint_files=["CoDi_encoders.pth", "extra.pth"])
    with pytest.raises(ValueError, match="conditions"):
        CoDiAdapter(fake_codi, sys.executable, conditions=["image", "video"])


def test_codi_driver_runs_a_job_file(fake_codi, tmp_path):
    from baselines.external import write_png, write_wav

    job = {
        "id": "j1",
        "image": str(write_png(tmp_path / "f.png", np.zeros((120, 200, 3), np.uint8))),
        "audio": str(write_wav(tmp_path / "a.wav", np.zeros((1, 16000), np.float32), 16000)),
        "text": "lions roaring",
        "out": str(tmp_path / "out.mp4"),
        "seed": 3,
        "num_frames": 12,
    }
    (tmp_path / "jobs.jsonl").write_text(json.dumps(job) + "\n")
    done = subprocess.run(
        [sys.executable, str(DRIVER_PATH), "--codi-repo", str(fake_codi), "--jobs", str(tmp_path / "jobs.jsonl"),
         "--conditions", "image,audio", "--image-size", "128"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ready, result = (json.loads(line) for line in done.stdout.splitlines())
    assert ready["event"] == "ready" and result["ok"] is True and result["id"] == "j1"
    assert (result["frames"], result["fps"]) == (12, 6.0)
    assert "Load pretrained weight" in done.stderr  # CoDi's prints never reach the protocol
    call = codi_log(fake_codi)[-1]
    assert call["condition_types"] == ["image", "audio"] and call["image_size"] == 128
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 6 and (stream.height, stream.width) == (128, 128)
        assert not container.streams.audio


def test_generate_help_explains_each_adapter():
    from typer.testing import CliRunner

    from avsync_bench.cli import app

    for command, words in (
        ("command", ["{image}", "{audio}", "{text}", "{out}", "--keep-audio", "12 frames"]),
        ("codi", ["--codi-repo", "--codi-python", "--num-frames", "generation.json"]),
    ):
        result = CliRunner().invoke(app, ["generate", command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert all(word in result.output for word in words), (command, result.output)
