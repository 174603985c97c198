"""CoDi adapter (Tang et al., *Any-to-Any Generation via Composable Diffusion*, NeurIPS 2023).

CoDi needs its own environment (Python 3.8, its pinned torch and requirements), so it never runs
inside avsync-bench's: the adapter starts :mod:`baselines.codi_driver` with CoDi's Python
(``--codi-python``) and the CoDi checkout on its ``sys.path`` (``--codi-repo``), loads the model
once, and sends it one JSON job per clip over stdin: the conditioning frame (PNG), the clip's 2 s
audio (16 kHz WAV), the class text, the seed and the frame count. CoDi conditions on
image + text + audio (the paper's "I+T+A" row, ASVA Table 1) and writes ``num_frames`` frames at
``image_size`` squared, which the driver stores as an mp4 at ``num_frames / 2`` fps. The adapter
then normalises that file exactly like the command adapter (:func:`baselines.external.normalise_video`):
12 frames at 6 fps picked by the protocol's rule from t = 0, crop + resize to the clip size; the
GT clip's audio is muxed by the runner.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from avsync_bench.errors import OptionError
from baselines import codi_driver
from baselines.base import Adapter, AdapterError, GenerationInput, GenerationOutput
from baselines.external import normalise_video, text_tail, write_png, write_wav

__all__ = ["CoDiAdapter", "DRIVER_PATH"]

DRIVER_PATH = Path(codi_driver.__file__).resolve()


class CoDiAdapter(Adapter):
    """CoDi video generation conditioned on the clip's frame, class text and audio.

    Args:
        codi_repo: the CoDi code folder (``i-Code/i-Code-V3``, or the ``i-Code`` clone itself).
        codi_python: the Python interpreter of CoDi's environment.
        checkpoints: folder holding the checkpoint files (default ``<codi_repo>/checkpoints``).
        checkpoint_files: file names loaded in order into ``model_module(pth=...)``.
        ddim_steps: DDIM sampling steps (CoDi's default 50).
        scale: classifier-free guidance scale (CoDi's default 7.5).
        num_frames: frames CoDi generates (8, the released ``CoDi_video_diffuser_8frames``);
            they span 2 s, so the driver writes them at ``num_frames / 2`` fps.
        image_size: CoDi's square output size in pixels (256).
        conditions: CoDi condition types, in order (subset of image, text, audio).
        fp16: ``model_module(fp16=True)``.
        timeout: seconds one clip may take once the model is loaded; None for no limit.
        driver: the driver script (default :data:`DRIVER_PATH`; tests may point at a stand-in).

    Raises:
        ValueError: the repo is not a CoDi checkout, the interpreter or a checkpoint file is
            missing, or a setting is out of range.
    """

    name = "codi"

    def __init__(
        self,
        codi_repo: str | Path,
        codi_python: str | Path,
        checkpoints: str | Path | None = None,
        checkpoint_files: list[str] | tuple[str, ...] = tuple(codi_driver.DEFAULT_CHECKPOINTS),
        ddim_steps: int = 50,
        scale: float = 7.5,
        num_frames: int = 8,
        image_size: int = 256,
        conditions: list[str] | tuple[str, ...] = codi_driver.CONDITIONS,
        fp16: bool = False,
        timeout: float | None = None,
        driver: str | Path | None = None,
    ):
        self.codi_repo = Path(codi_driver.resolve_repo(codi_repo))
        self.codi_python = Path(codi_python).expanduser()
        if not self.codi_python.is_file() or not os.access(self.codi_python, os.X_OK):
            raise OptionError(f"{self.codi_python}: not an executable Python interpreter")
        self.checkpoints = (
            Path(checkpoints or self.codi_repo / "checkpoints").expanduser().resolve()
        )
        self.checkpoint_files = [str(name) for name in checkpoint_files]
        missing = [n for n in self.checkpoint_files if not (self.checkpoints / n).is_file()]
        if missing:
            raise OptionError(
                f"missing CoDi checkpoint(s) in {self.checkpoints}: {', '.join(missing)}; "
                f"download them from {codi_driver.CHECKPOINT_URL}<name> (see README, Baselines)"
            )
        self.conditions = [str(c) for c in conditions]
        if (
            not self.conditions
            or any(c not in codi_driver.CONDITIONS for c in self.conditions)
            or len(set(self.conditions)) != len(self.conditions)
        ):
            raise OptionError(
                f"conditions must be a non-repeating subset of image,text,audio, got {self.conditions}"
            )
        if ddim_steps < 1 or num_frames < 1 or image_size < 64 or image_size % 64:
            raise OptionError("ddim_steps and num_frames must be >= 1, image_size a multiple of 64")
        if timeout is not None and timeout <= 0:
            raise OptionError(f"timeout must be positive, got {timeout}")
        self.ddim_steps, self.scale = int(ddim_steps), float(scale)
        self.num_frames, self.image_size = int(num_frames), int(image_size)
        self.fp16, self.timeout = bool(fp16), timeout
        self.driver = Path(driver).resolve() if driver else DRIVER_PATH
        self.fps = self.num_frames / codi_driver.CLIP_SECONDS
        self._proc: subprocess.Popen | None = None
        self._messages: queue.Queue = queue.Queue()
        self._tmp: Path | None = None
        self._stderr = None
        self._broken: str | None = None
        self._jobs = 0

    # --- the driver process -------------------------------------------------------------------

    def driver_command(self) -> list[str]:
        """The argument list that starts the driver with CoDi's Python."""
        return [
            str(self.codi_python),
            str(self.driver),
            "--codi-repo",
            str(self.codi_repo),
            "--checkpoints",
            str(self.checkpoints),
            "--ckpt",
            *self.checkpoint_files,
            "--ddim-steps",
            str(self.ddim_steps),
            "--scale",
            repr(self.scale),
            "--image-size",
            str(self.image_size),
            "--conditions",
            ",".join(self.conditions),
            *(["--fp16"] if self.fp16 else []),
        ]

    def _stderr_tail(self) -> str:
        if self._tmp is None or not (self._tmp / "driver-stderr.log").is_file():
            return ""
        with open(self._tmp / "driver-stderr.log", "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 8000))
            return text_tail(handle.read())

    def _start(self) -> None:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="avsync-codi-"))
        self._stderr = open(self._tmp / "driver-stderr.log", "ab")
        self._messages = queue.Queue()
        try:
            self._proc = subprocess.Popen(
                self.driver_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                text=True,
                bufsize=1,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as exc:
            self._broken = f"cannot start the CoDi driver with {self.codi_python} ({exc})"
            raise AdapterError(self._broken) from exc
        threading.Thread(
            target=_pump, args=(self._proc.stdout, self._messages), daemon=True
        ).start()
        message = self._receive(timeout=None)
        if message is None or message.get("event") != "ready":
            error = (message or {}).get("error") or "the driver exited before loading the model"
            self._stop()
            self._broken = f"CoDi failed to load: {error}" + _suffix(self._stderr_tail())
            raise AdapterError(self._broken)

    def _receive(self, timeout: float | None) -> dict | None:
        """The driver's next JSON message; None once its stdout closed (it exited).

        Raises:
            TimeoutError: nothing within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                line = self._messages.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError from None
                continue
            if line is None:
                return None
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                return message

    def _stop(self, kill: bool = False) -> None:
        """End the driver: close its stdin (it exits after the current job), or kill it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                if kill:
                    proc.kill()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # --- the Adapter interface ----------------------------------------------------------------

    def generate(self, inputs: GenerationInput) -> GenerationOutput:
        """Generate one clip with CoDi.

        Returns:
            GenerationOutput: frames (12, H, W, 3) uint8 at the clip size; audio None (the GT
            clip's is muxed).

        Raises:
            AdapterError: CoDi failed to load (every later clip fails with the same message
                without retrying), the job failed or timed out, the driver died (it is restarted
                for the next clip), or its output is unreadable or has fewer than ``num_frames``
                frames; messages name the clip and carry the driver's error or stderr tail.
        """
        if self._broken:
            raise AdapterError(f"{inputs.name}: {self._broken}")
        if self._proc is None:
            self._start()
        self._jobs += 1
        folder = self._tmp / f"job-{self._jobs:06d}"
        folder.mkdir()
        try:
            job = {
                "id": f"{self._jobs}:{inputs.name}",
                "image": str(write_png(folder / "image.png", inputs.first_frame)),
                "audio": str(
                    write_wav(folder / "audio.wav", inputs.audio, inputs.spec.sample_rate)
                ),
                "text": inputs.class_text,
                "out": str(folder / "out.mp4"),
                "seed": int(inputs.seed),
                "num_frames": self.num_frames,
                "fps": self.fps,
            }
            result = self._run_job(job, inputs.name)
            if not result.get("ok"):
                raise AdapterError(f"{inputs.name}: CoDi failed: {result.get('error', '?')}")
            return normalise_video(
                job["out"],
                inputs.spec,
                inputs.mode,
                min_frames=self.num_frames,
                context=inputs.name,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run_job(self, job: dict, name: str) -> dict:
        try:
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
            while True:
                message = self._receive(self.timeout)
                if message is None or message.get("id") == job["id"]:
                    break
        except TimeoutError:
            self._stop(kill=True)
            raise AdapterError(
                f"{name}: CoDi timed out after {self.timeout:g} s (driver restarted for the next clip)"
                + _suffix(self._stderr_tail())
            ) from None
        except OSError:  # broken pipe: the driver is gone
            message = None
        if message is None:
            code = self._proc.wait() if self._proc else None
            self._stop()
            raise AdapterError(
                f"{name}: the CoDi driver exited (code {code}) during this clip"
                + _suffix(self._stderr_tail())
            )
        return message

    def close(self) -> None:
        """Stop the driver (closing its stdin ends it) and delete the temporary files."""
        self._stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def config(self) -> dict:
        """CoDi's settings as recorded in ``generation.json``."""
        return {
            "codi_repo": str(self.codi_repo),
            "codi_commit": _git_commit(self.codi_repo),
            "codi_python": str(self.codi_python),
            "checkpoints": str(self.checkpoints),
            "checkpoint_files": self.checkpoint_files,
            "api": "model_module.inference(xtype=['video'], n_samples=1, mix_weight=default)",
            "conditions": self.conditions,
            "ddim_steps": self.ddim_steps,
            "scale": self.scale,
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            "codi_fps": self.fps,
            "fp16": self.fp16,
            "timeout_s": self.timeout,
            "driver": f"{self.driver.name} v{codi_driver.DRIVER_VERSION}",
            "inputs": {
                "image": "GT clip frame 0 at the clip size (PNG; CoDi resizes to 512, random flip)",
                "text": "class text from class_mapping.json",
                "audio": "GT clip audio, 2 s at 16 kHz, channel mean",
            },
            "audio_source": "ground-truth clip",
            "frame_picking": "protocol rule from t=0 on the driver's mp4, crop + resize to clip size",
        }


def _pump(stream, messages: queue.Queue) -> None:
    """Copy a pipe's lines into a queue, then None at end of file (reader thread)."""
    try:
        for line in stream:
            messages.put(line)
    except (OSError, ValueError):
        pass
    messages.put(None)


def _suffix(tail: str) -> str:
    return f"; driver stderr tail:\n{tail}" if tail else ""


def _git_commit(folder: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None
