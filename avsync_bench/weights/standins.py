"""Stand-in weight files: real file formats, deterministic weights (golden/README §1 rule).

For offline dry runs and tests of the full loading path. Each writer produces the file exactly
where the real one would go; :meth:`WeightStore.register_standin` records it in
``standins.json`` so results computed with it are marked ``standin``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from avsync_bench.weights.store import ResolvedWeight, WeightStore


def _inception(path: Path) -> None:
    from avsync_bench.features.inception import write_standin

    write_standin(path)


def _i3d(path: Path) -> None:
    from avsync_bench.features.i3d import write_standin

    write_standin(path)


STANDIN_WRITERS: dict[str, Callable[[Path], None]] = {
    "fid_inception": _inception,
    "i3d_torchscript": _i3d,
}


def make_standins(directory: str | Path, names: list[str]) -> list[ResolvedWeight]:
    """Write stand-ins for ``names`` into ``directory`` and register them.

    Raises:
        KeyError: a name without a stand-in writer.
    """
    unknown = [n for n in names if n not in STANDIN_WRITERS]
    if unknown:
        raise KeyError(f"no stand-in for {unknown}; available: {sorted(STANDIN_WRITERS)}")
    store = WeightStore(directory)
    store.root.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        path = store.path(name)
        partial = path.with_name(path.name + ".partial")
        STANDIN_WRITERS[name](partial)
        partial.replace(path)
        out.append(store.register_standin(name))
    return out
