"""User errors (issue #9 item 3, issue #15 item 2): one root exception, ``error: <file or
option>: <problem>`` with exit code 1 and no traceback, options checked before any file is
touched, bad inputs named, padding reported and limited."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import typer
from rich.console import Console
from tiny_extractors import tiny_extractors
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.cli.common import exit_on_error
from avsync_bench.datasets import DatasetError, load_split
from avsync_bench.errors import AVSyncBenchError
from avsync_bench.io.media import MediaError
from avsync_bench.leaderboard import EntryRefused
from avsync_bench.predictions import PredictionError, check_predictions
from avsync_bench.protocol import ClipSpec
from avsync_bench.results import print_results
from avsync_bench.scoring import ScoreOptions, score
from avsync_bench.weights.store import MissingWeightsError, WeightsError
from baselines.base import AdapterError
from baselines.runner import run_adapter
from baselines.static import StaticAdapter

SPEC = ClipSpec()
runner = CliRunner()


def cli(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def write_av(path: Path, fps: int, n_frames: int, audio_s: float, rate: int = 16000,
             nan: bool = False) -> Path:  # fmt: skip
    """A 64x64 H.264 mp4 with ``audio_s`` seconds of audio (float PCM with a NaN when ``nan``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        stream = container.add_stream("pcm_f32le" if nan else "aac", rate=rate, layout="mono")
        for i in range(n_frames):
            image = np.full((64, 64, 3), (17 * i) % 256, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        wave = (0.1 * np.sin(np.arange(int(audio_s * rate)) / 7.0)).astype(np.float32)[None]
        if nan:
            wave[0, 100] = np.nan
        for begin in range(0, wave.shape[1], 1024):
            chunk = np.ascontiguousarray(wave[:, begin : begin + 1024])
            frame = av.AudioFrame.from_ndarray(
                chunk, format="flt" if nan else "fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, begin
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_every_user_error_class_has_one_root():
    for cls in (DatasetError, MediaError, PredictionError, WeightsError, MissingWeightsError,
                EntryRefused, AdapterError):  # fmt: skip
        assert issubclass(cls, AVSyncBenchError), cls
    assert issubclass(DatasetError, ValueError) and issubclass(MediaError, RuntimeError)


def test_only_user_errors_are_caught():
    with pytest.raises(typer.Exit):
        with exit_on_error():
            raise MediaError("x.mp4: not a readable media file")
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        with exit_on_error():
            raise ZeroDivisionError("bug")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "avsync16"],
         "error: --dataset: unknown dataset 'avsync16'; choose avsync15, landscapes, "
         "thegreatesthits"),
        (["--metrics", "fid,fvdd"], "error: --metrics: unknown metric(s) 'fvdd'; choose from fid"),
        (["--protocol", "offical"],
         "error: --protocol: unknown protocol 'offical'; choose official, corrected"),
        (["--dtype", "fp64"], "error: --dtype: unknown dtype 'fp64'; choose fp32, bf16, fp16"),
        (["--device", "tpu"],
         "error: --device: unknown device 'tpu'; choose cpu, cuda, cuda:N or mps"),
    ],
)  # fmt: skip
def test_score_options_are_checked_before_any_file(args, message, tmp_path):
    # The predictions folder and data root do not exist: the option is still named first.
    result = cli("score", tmp_path / "absent", "--data-root", tmp_path / "none", *args)
    assert result.exit_code == 1 and message in " ".join(result.stderr.split()), result.stderr


def test_sync_score_options(tmp_path):
    result = cli("sync-score", "--video", tmp_path / "v.mp4", "--metric", "phi")
    assert result.exit_code == 1
    assert "--metric: unknown metric 'phi'; choose score, relsync, alignsync" in result.stderr
    result = cli("sync-score", "--video", tmp_path / "v.mp4", "--protocol", "x")
    assert "--protocol: unknown protocol 'x'; choose official, corrected" in result.stderr


@pytest.fixture(scope="module")
def short_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("short")
    good = write_av(root / "good_6fps.mp4", 6, 12, 2.0)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (root / "empty.mp4").write_bytes(b"")
    (root / "folder.mp4").mkdir()
    return {
        "two_frames_1fps": write_av(root / "two_frames_1fps.mp4", 1, 2, 2.0),
        "eleven_frames_6fps": write_av(root / "eleven_frames_6fps.mp4", 6, 11, 2.0),
        "half_second_24fps": write_av(root / "half_second_24fps.mp4", 24, 12, 0.5),
        "audio_0.3s": write_av(root / "audio_0.3s.mp4", 6, 12, 0.3),
        "nan_audio": write_av(root / "nan_audio.mp4", 6, 12, 2.0, nan=True),
        "truncated": truncated,
        "empty": root / "empty.mp4",
        "folder": root / "folder.mp4",
        "good": good,
    }


@pytest.mark.parametrize("protocol", ["official", "corrected"])
def test_sync_score_refuses_too_short_inputs(short_files, protocol):
    expect = {
        "two_frames_1fps": "video too short: 2 distinct frame(s) found in the first 2 s",
        "eleven_frames_6fps": "video too short: 11 distinct frame(s)",
        "half_second_24fps": "video too short:",
        "audio_0.3s": "audio too short: 0.3",  # 0.30 s, or 0.32 s in whole AAC frames
        "nan_audio": "audio contains NaN or infinite samples",
        "truncated": "",  # unreadable or too short, but named and without a traceback
    }
    for key, text in expect.items():
        path = short_files[key]
        result = cli("sync-score", "--video", path, "--metric", "score", "--protocol", protocol)
        stderr = " ".join(result.stderr.split())
        assert result.exit_code == 1, (key, result.output)
        assert stderr.startswith(f"error: {path}:") and text in stderr, (key, stderr)


def test_unreadable_files_and_folders_are_named(short_files):
    result = cli("sync-score", "--video", short_files["empty"], "--metric", "score")
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 1
    assert f"error: {short_files['empty']}: not a readable media file (empty, truncated or not a " \
           "video)" in stderr  # fmt: skip
    assert "Errno" not in stderr and "Invalid data" not in stderr
    verbose = cli("sync-score", "--video", short_files["empty"], "--metric", "score", "--verbose")
    assert "FFmpeg:" in verbose.stderr
    result = cli("sync-score", "--video", short_files["folder"], "--metric", "score")
    assert f"error: {short_files['folder']}: is a folder, not a media file" in result.stderr
    result = cli(
        "sync-score", "--video", short_files["good"], "--audio", short_files["nan_audio"],
        "--metric", "score",
    )  # fmt: skip
    assert f"{short_files['nan_audio']}: audio contains NaN or infinite samples" in result.stderr


@pytest.fixture(scope="module")
def static_preds(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("preds")
    assert len(run_adapter(StaticAdapter(), out, data_root=tiny_dataset).written) == 6
    return out


def _copy(src, tmp_path):
    shutil.copytree(src, tmp_path / "preds")
    return tmp_path / "preds"


def test_prediction_check_names_bad_files(tiny_dataset, static_preds, short_files, tmp_path):
    preds = _copy(static_preds, tmp_path)
    shutil.move(preds / "dog_barking/a_clip-00.mp4", preds / "dog_barking/a_clip-00.mkv")
    shutil.copy(preds / "dog_barking/a_clip-01.mp4", preds / "dog_barking/a_clip-01.webm")
    shutil.copy(short_files["nan_audio"], preds / "dog_barking/a_clip-02.mp4")
    shutil.copy(short_files["empty"], preds / "hammering/b_clip-00.mp4")
    report = check_predictions(preds, load_split("avsync15", tiny_dataset), SPEC)
    problems = {p.path: (p.kind, p.detail) for p in report.problems}
    assert problems["dog_barking/a_clip-00.mp4"] == (
        "missing", "found a_clip-00.mkv; predictions must be .mp4")  # fmt: skip
    assert problems["dog_barking/a_clip-01.webm"][0] == "wrong_format"
    assert (
        "found a_clip-01.webm; predictions must be .mp4"
        in problems["dog_barking/a_clip-01.webm"][1]
    )
    assert problems["dog_barking/a_clip-02.mp4"] == (
        "bad_audio", "audio contains NaN or infinite samples")  # fmt: skip
    kind, detail = problems["hammering/b_clip-00.mp4"]
    assert kind == "unreadable" and "not a readable media file" in detail
    error = PredictionError(report, "refusing")
    assert "found a_clip-00.mkv; predictions must be .mp4" in str(error)
    assert "FFmpeg:" in error.detail and "FFmpeg" not in str(error)


def test_padding_is_reported_limited_and_recorded(tiny_dataset, static_preds, tmp_path):
    preds = _copy(static_preds, tmp_path)
    write_av(preds / "dog_barking/a_clip-00.mp4", 1, 12, 12.0)  # 1 fps: 9 of 12 repeated
    write_av(preds / "dog_barking/a_clip-01.mp4", 6, 12, 0.5)  # 2 s video, 0.5 s audio
    videos = load_split("avsync15", tiny_dataset)
    report = check_predictions(preds, videos, SPEC)
    problems = {p.path: p for p in report.problems}
    assert set(problems) == {"dog_barking/a_clip-00.mp4", "dog_barking/a_clip-01.mp4"}
    assert all(p.kind == "padding" for p in problems.values())
    assert "9 of 12 frames repeated" in problems["dog_barking/a_clip-00.mp4"].detail
    assert re.search(r"1\.[45]\d s of audio missing", problems["dog_barking/a_clip-01.mp4"].detail)
    assert "--allow-padding" in problems["dog_barking/a_clip-01.mp4"].detail
    # The Static baseline's clips need none (the official 1/3 s drop is not padding).
    assert set(report.padding) == set(problems)

    options = ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fvd", cache_dir=None)
    with pytest.raises(PredictionError, match="padding"):
        score(options, extractors=tiny_extractors())
    options.allow_padding = True
    run = score(options, extractors=tiny_extractors())
    record = run.results["padding"]
    assert record["limits"] == {"max_repeated_frames": 1, "max_audio_padding_s": 0.1}
    assert record["allow_padding"] is True and set(record["clips"]) == set(problems)
    assert record["clips"]["dog_barking/a_clip-00.mp4"]["repeated_frames"] == 9
    assert abs(record["clips"]["dog_barking/a_clip-01.mp4"]["audio_missing_s"] - 1.5) < 0.05
    assert run.results["clip_counts"]["scored"] == 6
    console = Console(record=True, width=200)
    print_results(run.results, console)
    text = console.export_text()
    assert "2 clip(s) needed padding" in text and "OVER THE LIMIT" in text


def test_allow_partial_lists_every_absent_clip_and_why(tiny_dataset, static_preds, tmp_path):
    preds = _copy(static_preds, tmp_path)
    (preds / "hammering/b_clip-02.mp4").unlink()
    (preds / "hammering/b_clip-01.mp4").write_bytes(b"garbage")
    options = ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fvd", cache_dir=None,
                           allow_partial=True)  # fmt: skip
    run = score(options, extractors=tiny_extractors())
    assert run.results["absent_why"] == {
        "hammering/b_clip-01.mp4": "unreadable: not a readable media file (empty, truncated or "
        "not a video)",
        "hammering/b_clip-02.mp4": "missing",
    }
    console = Console(record=True, width=200)
    print_results(run.results, console)
    text = console.export_text()
    assert "partial result, 2 clip(s) absent:" in text
    assert "hammering/b_clip-01.mp4: unreadable: not a readable media file" in text
    # Beyond 20 the terminal gives a count (results.json keeps them all).
    many = dict(run.results, absent=[f"c/{i}.mp4" for i in range(25)], absent_why={})
    console = Console(record=True, width=200)
    print_results(many, console)
    text = console.export_text()
    assert "c/19.mp4: missing" in text and "c/20.mp4" not in text and "... and 5 more" in text
