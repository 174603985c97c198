"""Test-made media for the curation tests: each clip is built to be kept or dropped for one reason.

All clips: 128×96 at 12 fps, 16 kHz mono audio with a click every 0.5 s over low noise, written
with the package's own encoder (:func:`avsync_bench.io.media.write_clip`), each in its own class
folder ``<name>/<name>.mp4``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avsync_bench.io.media import write_clip

FPS, RATE, HEIGHT, WIDTH = 12, 16000, 96, 128


def _texture(seed: int, height: int, width: int, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 200, (height // 8 + 1, width // 8 + 1, 1))
    image = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    return np.clip(image * np.asarray(tint), 0, 255)


def _clicks(duration: float, amplitude: float = 0.8) -> np.ndarray:
    n = int(round(duration * RATE))
    audio = np.random.default_rng(1).normal(0, 0.01, n)
    for t in np.arange(0.25, duration, 0.5):
        begin = int(t * RATE)
        audio[begin : begin + 400] += amplitude * np.hanning(400)
    return audio[None].astype(np.float32)


def _flashing(duration: float, base: np.ndarray) -> np.ndarray:
    """A square drifting 2 px/frame and a disc lit for 2 frames at each click (0.25 + 0.5k s)."""
    frames = []
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    disc = (yy - 30) ** 2 + (xx - 90) ** 2 < 10**2
    for i in range(int(round(duration * FPS))):
        image = base.copy()
        x = 8 + (2 * i) % (WIDTH - 40)
        image[50:74, x : x + 24] = (30, 60, 220)
        t = i / FPS
        if (t - 0.25) % 0.5 < 2 / FPS - 1e-9 and t >= 0.25 - 1e-9:
            image[disc] = (255, 255, 230)
        frames.append(image)
    return np.stack(frames).astype(np.uint8)


def make_media(root: Path) -> dict[str, Path]:
    """Write the clips under ``root`` and return ``{name: path}``.

    * ``flash``: 3.5 s, a light flashes at each click, a square drifts: kept (2 windows);
    * ``static``: 3.5 s, a still picture with clicks: dropped, ``pixel_diff_low``;
    * ``silent``: the flash picture with a silent track: dropped, ``audio_peak_low``;
    * ``fastpan``: 3.5 s pan of 16 px per frame over a texture: dropped, ``pixel_diff_high``;
    * ``cut``: 2 s of one scene, then a hard cut to 3.5 s of the flash clip on another texture:
      two scenes, the first too short for a window, the second kept (2 windows);
    * ``broken``: random bytes named .mp4: a decode-error row.
    """
    root = Path(root)
    base = _texture(0, HEIGHT, WIDTH)
    out = {}

    def put(name, frames, audio):
        path = root / name / f"{name}.mp4"
        write_clip(path, frames, FPS, audio, RATE)
        out[name] = path

    put("flash", _flashing(3.5, base), _clicks(3.5))
    put("static", np.repeat(base[None].astype(np.uint8), 42, axis=0), _clicks(3.5))
    put("silent", _flashing(3.5, base), np.zeros((1, int(3.5 * RATE)), np.float32))
    wide = _texture(2, HEIGHT, WIDTH * 8)
    pan = np.stack([wide[:, 16 * i : 16 * i + WIDTH] for i in range(42)]).astype(np.uint8)
    put("fastpan", pan, _clicks(3.5))
    first = np.repeat(_texture(3, HEIGHT, WIDTH, (0.2, 0.3, 1.2))[None], 24, axis=0)
    second = _flashing(3.5, _texture(4, HEIGHT, WIDTH, (1.3, 0.8, 0.2)))
    put("cut", np.concatenate([first.astype(np.uint8), second]), _clicks(5.5))
    broken = root / "broken" / "broken.mp4"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(np.random.default_rng(5).bytes(4096))
    out["broken"] = broken
    return out
