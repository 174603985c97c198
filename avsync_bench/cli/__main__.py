"""``python -m avsync_bench.cli``."""

from avsync_bench.cli import main

main()
