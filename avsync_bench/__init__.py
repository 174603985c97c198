"""avsync-bench: the benchmark and evaluation toolkit for audio-synchronised visual animation.

The import-compatibility module runs first, before anything imports torchvision or torchaudio.
"""

from avsync_bench import _compat  # noqa: F401  (must stay the first import)

__version__ = "0.1.0"
