"""Stand-in weight files: real file formats, deterministic weights (golden/README §1 rule).

For offline dry runs and tests of the full loading path. Each writer produces the file exactly
where the real one would go; :meth:`WeightStore.register_standin` records it in
``standins.json`` so results computed with it are marked ``standin``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from avsync_bench.errors import UnknownNameError
from avsync_bench.weights.store import ResolvedWeight, WeightStore


def _inception(path: Path) -> None:
    from avsync_bench.features.inception import write_standin

    write_standin(path)


def _i3d(path: Path) -> None:
    from avsync_bench.features.i3d import write_standin

    write_standin(path)


def _imagebind(path: Path) -> dict:
    import torch

    from avsync_bench.models.imagebind import STANDIN_CONFIG, rule_imagebind

    torch.save(rule_imagebind(STANDIN_CONFIG, ("vision", "audio", "text")), path)
    return STANDIN_CONFIG


def _avsync_classifier(path: Path) -> None:
    from avsync_bench.features.sync import write_standin

    write_standin(path)


# Each writer creates the file (or folder) at the given path and returns the model config it
# used when that differs from the real model's (recorded in standins.json), else None.
STANDIN_WRITERS: dict[str, Callable[[Path], dict | None]] = {
    "fid_inception": _inception,
    "i3d_torchscript": _i3d,
    "imagebind_huge": _imagebind,
    "avsync_classifier": _avsync_classifier,
}


def make_standins(directory: str | Path, names: list[str]) -> list[ResolvedWeight]:
    """Write stand-ins for ``names`` into ``directory`` and register them.

    Raises:
        KeyError: a name without a stand-in writer.
    """
    unknown = [n for n in names if n not in STANDIN_WRITERS]
    if unknown:
        raise UnknownNameError(f"no stand-in for {unknown}; available: {sorted(STANDIN_WRITERS)}")
    store = WeightStore(directory)
    store.root.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        path = store.path(name)
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        config = STANDIN_WRITERS[name](partial)
        if path.is_dir():
            shutil.rmtree(path)
        partial.replace(path)
        out.append(store.register_standin(name, config))
    return out
