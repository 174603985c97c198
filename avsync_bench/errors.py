"""User-facing errors: one root, :class:`AVSyncBenchError`.

The command line catches only this root and prints ``error: <file or option>: <problem>`` with
exit code 1 (``avsync_bench.cli.common.exit_on_error``); any other exception is a bug and keeps
its traceback. Every message starts with the file, folder or option it is about.

Subclasses that replace a built-in exception also derive from it (``OptionError`` is a
``ValueError``, ``UnknownNameError`` a ``KeyError``), so code that caught the built-in keeps
working.
"""

from __future__ import annotations


class AVSyncBenchError(Exception):
    """Root of every user-facing error: the message names the file or option and the problem."""

    #: Extra diagnostic text (e.g. FFmpeg's own message), shown only with ``--verbose``.
    detail: str = ""


class OptionError(AVSyncBenchError, ValueError):
    """A command-line option or argument has an invalid value, e.g.
    ``--dataset: unknown dataset 'avsync16'; choose avsync15, landscapes, thegreatesthits``."""


class UnknownNameError(OptionError, KeyError):
    """An unknown name (weights, extractor, metric); a ``KeyError`` for older callers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(AVSyncBenchError, ValueError):
    """An input file or folder cannot be used as given (the message names it)."""


__all__ = ["AVSyncBenchError", "OptionError", "UnknownNameError", "InputError", "message_of"]


def message_of(exc: AVSyncBenchError, verbose: bool = False) -> str:
    """The text printed after ``error:``; with ``verbose`` the diagnostic ``detail`` follows."""
    message = str(exc)
    detail = getattr(exc, "detail", "")
    if verbose and detail:
        message += f"\n  details: {detail}"
    return message
