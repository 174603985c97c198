"""Interpreter-start hook of avsync-bench, run by ``avsync_bench_startup.pth`` (installed into
site-packages with the package, see ``setup.py``).

It costs nothing at start: it only adds an import finder. The first time any code imports
``torchvision`` or ``torchaudio``, the finder removes itself and imports
:mod:`avsync_bench._compat` (which imports torch), so the compatibility layer for CPU torch with
CUDA-built torchvision/torchaudio wheels is in place whatever is imported first (e.g.
``python -m pytorch_fid`` or ``import torchvision`` before ``import avsync_bench``). Where the
compiled ops load, ``_compat`` changes nothing. Any error here is swallowed: the hook must never
break an unrelated program.
"""

from __future__ import annotations

import sys

_TRIGGERS = frozenset({"torchvision", "torchaudio"})


class CompatOnFirstImport:
    """A ``sys.meta_path`` finder that only observes: it applies the compatibility layer before
    the first torchvision/torchaudio import and then lets the normal finders do the import."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _TRIGGERS:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            return None  # already removed (re-entrant call)
        try:
            import avsync_bench._compat  # noqa: F401
        except Exception:  # never break the importing program
            pass
        return None


def install() -> None:
    """Add the finder once (idempotent); nothing when both modules are already imported."""
    if _TRIGGERS <= sys.modules.keys():
        return
    if not any(type(f).__name__ == "CompatOnFirstImport" for f in sys.meta_path):
        sys.meta_path.insert(0, CompatOnFirstImport())


install()
