"""Did-you-mean suggestions for unknown names in error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    options = [str(c) for c in choices]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lower = {o.lower(): o for o in options}
        close = [lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=1)]
    return f" (did you mean {close[0]!r}?)" if close else ""
