"""Facts about operating-system processes that several parts of the project rely on (spool sweeping, the demo's
shared server)."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether a process of this pid runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
