"""Network re-implementations used by avsync-bench (the AV-sync classifier of PROTOCOL.md §3)."""
