"""Installs ``avsync_bench_startup.pth`` beside the package (all metadata is in pyproject.toml).

The .pth file makes every interpreter of the environment import ``_avsync_bench_startup``, which
applies avsync-bench's torch compatibility layer just before torchvision/torchaudio are first
imported (see ``avsync_bench/_compat.py``). It is written at the root of the wheel (regular
installs) and of the editable wheel (``pip install -e``), so pip records and uninstalls it.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "avsync_bench_startup.pth"


class BuildPyWithPth(build_py):
    """``build_py`` that also puts the .pth at the root of the build (wheel root = site-packages)."""

    def run(self):
        super().run()
        if not self.editable_mode:
            self.copy_file(PTH, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        extra = [] if self.editable_mode else [os.path.join(self.build_lib, PTH)]
        return super().get_outputs(include_bytecode) + extra


class EditableWheelWithPth(editable_wheel):
    """``editable_wheel`` that adds the .pth to the editable wheel's root."""

    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
        result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        self.copy_file(PTH, os.path.join(unpacked_wheel, PTH), preserve_mode=0)
        return result


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
