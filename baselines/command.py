"""Command adapter: run any generator program once per clip and normalise what it writes.

``avsync-bench generate command --cmd 'python my_gen.py --image {image} --audio {audio}
--text {text} --out {out}'`` runs the command for every test clip. Per clip, the adapter writes the
conditioning frame to a temporary PNG and the clip's audio to a temporary 16 kHz WAV, substitutes
the placeholders, runs the program without a shell, then reads the video it wrote at ``{out}``
(any fps, size and codec, with or without audio) and normalises it to the prediction format with
the protocol's frame picking and resize (:func:`baselines.external.normalise_video`).
"""

from __future__ import annotations

import shlex
import string
import subprocess
import tempfile
from pathlib import Path

from avsync_bench.errors import OptionError
from baselines.base import Adapter, AdapterError, GenerationInput, GenerationOutput
from baselines.external import normalise_video, text_tail, write_png, write_wav

__all__ = ["CommandAdapter", "PLACEHOLDERS"]

PLACEHOLDERS = {
    "image": "path of the conditioning frame, a PNG at the clip size (256x256 on AVSync15)",
    "audio": "path of the clip's 2 s audio, a 16-bit PCM WAV at 16 kHz (1 or 2 channels)",
    "text": "the class text from class_mapping.json (e.g. 'dog barking'), one argument",
    "out": "path of the .mp4 the command must write (any fps and size, audio optional)",
    "seed": "the run's seed (--seed), an integer",
    "class_folder": "the raw class folder string (e.g. 'dog_barking')",
    "name": "the clip's output name, e.g. 'dog_barking/<stem>_clip-00' (no extension)",
}


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


class CommandAdapter(Adapter):
    """Run a user command per clip (no shell) and normalise the video it writes.

    Args:
        cmd_template: the command line, split like a POSIX shell (``shlex.split``) into arguments
            first; the placeholders of :data:`PLACEHOLDERS` (``{image}``, ``{audio}``, ``{text}``,
            ``{out}``, ``{seed}``, ``{class_folder}``, ``{name}``) are then substituted inside each
            argument, so a value with spaces (the class text) always stays one argument, quoted
            in the template or not. ``{{`` and ``}}`` are literal braces. ``{out}`` is required.
        keep_audio: mux the generator's own audio (its first 2 s, resampled to 16 kHz) instead of
            the GT clip's; the generator must then write an audio track.
        timeout: seconds one clip may run; None for no limit.

    Raises:
        ValueError: empty template, an unknown placeholder, or no ``{out}``.
    """

    name = "command"

    def __init__(self, cmd_template: str, keep_audio: bool = False, timeout: float | None = None):
        try:
            args = shlex.split(cmd_template)
            fields = set().union(*(_fields(a) for a in args)) if args else set()
        except ValueError as exc:
            raise OptionError(f"cannot parse the command template: {exc}") from exc
        if not args:
            raise OptionError("the command template is empty")
        unknown = sorted(f for f in fields if f not in PLACEHOLDERS)
        if unknown:
            raise OptionError(
                f"unknown placeholder(s) {', '.join('{' + f + '}' for f in unknown)} in the "
                f"command template; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        if "out" not in fields:
            raise OptionError("the command template must contain {out} (where the video goes)")
        if timeout is not None and timeout <= 0:
            raise OptionError(f"timeout must be positive, got {timeout}")
        self.cmd_template = cmd_template
        self.keep_audio = keep_audio
        self.timeout = timeout
        self._args = args
        try:  # catch bad format specs (e.g. "{seed:q}") now rather than on every clip
            self.command_for({**dict.fromkeys(PLACEHOLDERS, "x"), "seed": 0})
        except (ValueError, IndexError, KeyError) as exc:
            raise OptionError(f"bad placeholder in the command template: {exc}") from exc

    def command_for(self, values: dict[str, object]) -> list[str]:
        """The argument list for one clip: each template argument with ``values`` substituted
        (``str.format``; ``{seed}`` is an int, so ``{seed:04d}`` works)."""
        return [arg.format(**values) for arg in self._args]

    def generate(self, inputs: GenerationInput) -> GenerationOutput:
        """Run the command for one clip.

        Returns:
            GenerationOutput: frames (12, H, W, 3) uint8 at the clip size; audio None (the GT
            clip's is muxed) or, with ``keep_audio``, (channels, 32000) float32 at 16 kHz.

        Raises:
            AdapterError: the command cannot start, exits non-zero, times out, writes no
                readable video, fewer than ``spec.num_frames`` frames, or (``keep_audio``) no
                audio; the message names the clip and ends with the command's stderr tail.
        """
        spec = inputs.spec
        with tempfile.TemporaryDirectory(prefix="avsync-command-") as tmp:
            folder = Path(tmp)
            values = {
                "image": str(write_png(folder / "image.png", inputs.first_frame)),
                "audio": str(write_wav(folder / "audio.wav", inputs.audio, spec.sample_rate)),
                "text": inputs.class_text,
                "out": str(folder / "out.mp4"),
                "seed": int(inputs.seed),
                "class_folder": inputs.class_folder,
                "name": inputs.name.removesuffix(".mp4"),
            }
            cmd = self.command_for(values)
            try:
                done = subprocess.run(
                    cmd, capture_output=True, timeout=self.timeout, stdin=subprocess.DEVNULL
                )
            except FileNotFoundError as exc:
                raise AdapterError(f"{inputs.name}: cannot run {cmd[0]!r} ({exc})") from exc
            except subprocess.TimeoutExpired as exc:
                raise AdapterError(
                    f"{inputs.name}: the command timed out after {self.timeout:g} s"
                    + _tail_suffix(exc.stderr, exc.stdout)
                ) from exc
            suffix = _tail_suffix(done.stderr, done.stdout)
            if done.returncode != 0:
                raise AdapterError(
                    f"{inputs.name}: the command exited with code {done.returncode}" + suffix
                )
            try:
                return normalise_video(
                    values["out"],
                    spec,
                    inputs.mode,
                    keep_audio=self.keep_audio,
                    context=inputs.name,
                )
            except AdapterError as exc:
                raise AdapterError(str(exc) + suffix) from exc

    def config(self) -> dict:
        """The template, audio source and timeout, as recorded in ``generation.json``."""
        return {
            "cmd": self.cmd_template,
            "keep_audio": self.keep_audio,
            "audio_source": "generator" if self.keep_audio else "ground-truth clip",
            "timeout_s": self.timeout,
            "inputs": {"image": "PNG at the clip size", "audio": "16-bit PCM WAV, 16 kHz, 2 s"},
            "frame_picking": "protocol rule from t=0, crop + resize to the clip size",
        }


def _tail_suffix(stderr, stdout) -> str:
    tail = text_tail(stderr)
    if tail:
        return f"; stderr tail:\n{tail}"
    tail = text_tail(stdout)
    return f"; no stderr, stdout tail:\n{tail}" if tail else "; stderr was empty"
