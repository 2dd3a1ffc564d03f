"""Where celltwin finds shared data and keeps its download cache.

``CELLTWIN_SHARED`` points at the folder of real data and priors (default: ``../shared`` relative
to the current directory, then relative to the repository checkout). ``CELLTWIN_CACHE`` is the
download cache (default: ``~/.cache/celltwin``).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """Return the shared data folder (may not exist; callers check and say how to set it)."""
    env = os.environ.get("CELLTWIN_SHARED")
    if env:
        return Path(env).expanduser().resolve()
    for candidate in (Path.cwd().parent / "shared", _REPO_ROOT.parent / "shared"):
        if candidate.is_dir():
            return candidate.resolve()
    return (Path.cwd().parent / "shared").resolve()


def cache_dir() -> Path:
    """Return the download cache folder, creating it if needed."""
    env = os.environ.get("CELLTWIN_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "celltwin"
    path.mkdir(parents=True, exist_ok=True)
    return path
