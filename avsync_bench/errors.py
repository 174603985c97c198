class AVSyncBenchError(Exception):
    """Root of every user-facing error..."""
