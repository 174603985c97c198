"""Validation of command-line option values, done before any file is touched.

Each check raises :class:`~avsync_bench.errors.OptionError` whose message starts with the option
and lists the valid choices, e.g. ``--dataset: unknown dataset 'avsync16'; choose avsync15,
landscapes, thegreatesthits``.
"""

from __future__ import annotations

import re

from avsync_bench.errors import OptionError
from avsync_bench.protocol import ProtocolMode

__all__ = [
    "DTYPES",
    "check_choice",
    "check_dataset",
    "check_metrics",
    "check_protocol",
    "check_dtype",
    "check_device",
]

DTYPES = ("fp32", "bf16", "fp16")
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_choice(option: str, value: str, choices, what: str) -> str:
    """Return ``value`` when it is one of ``choices``.

    Raises:
        OptionError: ``"<option>: unknown <what> '<value>'; choose a, b, c"``.
    """
    if value not in choices:
        raise OptionError(f"{option}: unknown {what} {value!r}; choose {', '.join(choices)}")
    return value


def check_dataset(value: str) -> str:
    """``--dataset``: one of the datasets of :data:`avsync_bench.datasets.DATASETS`."""
    from avsync_bench.datasets import DATASETS

    return check_choice("--dataset", value, list(DATASETS), "dataset")


def check_metrics(value: str) -> list:
    """``--metrics``: comma-separated metric keys or ``all``; returns the metric definitions."""
    from avsync_bench.metrics import resolve_metrics

    metrics = resolve_metrics(value)
    if not metrics:
        raise OptionError(
            "--metrics: no metric given; choose from fid,fvd,ia,it,relsync,... or all"
        )
    return metrics


def check_protocol(value: str | ProtocolMode) -> ProtocolMode:
    """``--protocol``: ``official`` or ``corrected`` (PROTOCOL.md §8)."""
    value = value.value if isinstance(value, ProtocolMode) else value
    check_choice("--protocol", value, [m.value for m in ProtocolMode], "protocol")
    return ProtocolMode(value)


def check_dtype(value: str) -> str:
    """``--dtype``: fp32, bf16 or fp16."""
    return check_choice("--dtype", value, DTYPES, "dtype")


def check_device(value: str) -> str:
    """``--device``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it is present is checked
    where the device is first used)."""
    if not _DEVICE.match(value):
        raise OptionError(f"--device: unknown device {value!r}; choose cpu, cuda, cuda:N or mps")
    return value
