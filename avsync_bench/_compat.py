"""Import-time compatibility for CPU-only torch with PyPI's CUDA-built torchvision/torchaudio.

PyPI ships torchvision 0.28.0 and torchaudio 2.11.0 as CUDA builds. Under the CPU build of
torch 2.13.0 their compiled extensions fail to load, which breaks ``import torchvision`` (its
fake-op registrations need the ``torchvision::nms`` schema) and ``import torchaudio`` (its
extension loader raises). This module, imported first by :mod:`avsync_bench`, declares the two
missing op schemas and stubs torchaudio's extension loader **only when the compiled ops cannot
be loaded**; where they load (CUDA torch on a GPU machine) it does nothing.

What still does not work on such a CPU install, and is never used by avsync-bench:
torchvision's detection ops and ``torchvision.io`` readers, ``torchaudio.load``. All media IO
goes through PyAV (:mod:`avsync_bench.io.media`).

Order of imports: the patches must run before torchvision/torchaudio are first imported. The
package installs ``avsync_bench_startup.pth`` (see ``setup.py``), whose hook
(``_avsync_bench_startup``) runs this module just before the first ``import torchvision`` or
``import torchaudio`` of any interpreter, so ``import torchvision`` or ``python -m pytorch_fid``
work whatever is imported first. Without the hook (a source tree on ``PYTHONPATH`` only),
``import avsync_bench`` must come before them.

Also here: ``torchvision.transforms.functional_tensor`` (renamed in torchvision 0.17, still
imported by pytorchvideo 0.1.5, which ImageBind imports) is provided as an alias, loaded only
when imported; and the ``pkg_resources`` deprecation warning that ImageBind's ``data`` module
triggers at import is hidden (setuptools is pinned below 81 in the dependencies).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import types
import warnings

import torch

__all__ = ["ACTIVE"]


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _loads(library_dir: str, prefix: str) -> bool:
    """True when a compiled extension ``prefix*.so`` in ``library_dir`` loads (or none exists)."""
    if not os.path.isdir(library_dir):
        return True
    names = [f for f in os.listdir(library_dir) if f.startswith(prefix) and f.endswith(".so")]
    if not names:
        return prefix != "_C"  # torchvision without _C.so cannot register its ops
    try:
        torch.ops.load_library(os.path.join(library_dir, names[0]))
    except (OSError, RuntimeError):
        return False
    return True


def _patch_torchvision() -> bool:
    path = _package_dir("torchvision")
    if path is None or "torchvision" in sys.modules or _loads(path, "_C"):
        return False
    lib = torch.library.Library("torchvision", "DEF")  # noqa: TOR901 - kept alive below
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(lib)
    return True


def _patch_torchaudio() -> bool:
    path = _package_dir("torchaudio")
    if (
        path is None
        or "torchaudio" in sys.modules
        or _loads(os.path.join(path, "lib"), "_torchaudio")
    ):
        return False
    stub = types.ModuleType("torchaudio._extension")
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
    stub._IS_ALIGN_AVAILABLE = False

    def _unavailable(*_args, **_kwargs):
        raise RuntimeError("torchaudio's C++ extension is unavailable with CPU-only torch")

    stub.fail_if_no_align = lambda _func: _unavailable
    stub._load_lib = lambda _lib: False
    stub._check_cuda_version = lambda: None
    sys.modules["torchaudio._extension"] = stub
    return True


class _FunctionalTensorAlias(importlib.abc.MetaPathFinder):
    """Finds ``torchvision.transforms.functional_tensor`` (renamed ``_functional_tensor`` in
    torchvision 0.17; pytorchvideo 0.1.5 imports the old name) as a copy of the new module.

    Appended to ``sys.meta_path``: a torchvision that still has the old module finds it first.
    Importing nothing itself, it is safe to install before torchvision is imported.
    """

    NAME = "torchvision.transforms.functional_tensor"

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.NAME:
            return None
        real = importlib.util.find_spec("torchvision.transforms._functional_tensor")
        if real is None or real.origin is None:
            return None
        return importlib.util.spec_from_file_location(fullname, real.origin)


def _install_alias() -> None:
    if not any(isinstance(f, _FunctionalTensorAlias) for f in sys.meta_path):
        sys.meta_path.append(_FunctionalTensorAlias())


_KEEP: list = []
ACTIVE = {"torchvision": _patch_torchvision(), "torchaudio": _patch_torchaudio()}
_install_alias()
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
