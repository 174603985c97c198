"""Baseline adapters: each turns (conditioning frame, audio clip, class text) into 12 frames at
6 fps, behind one interface (:class:`baselines.base.Adapter`); :mod:`baselines.runner` writes
them in the prediction format that ``avsync-bench score`` reads."""

import avsync_bench  # noqa: F401  (compatibility shim first)
