"""Progress bars degrade cleanly: nothing (no escape codes) when stderr is a log file."""

from __future__ import annotations

import io
import sys

from celltwin._progress import progress_bar, shows_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_and_no_escape_codes_in_a_log_file(monkeypatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert not shows_progress()
    assert list(progress_bar(range(50), desc="work")) == list(range(50))
    with progress_bar(total=10, desc="steps") as bar:
        bar.update(10)
    assert log.getvalue() == ""


def test_bar_on_a_terminal_unless_disabled(monkeypatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert shows_progress()
    assert not progress_bar(range(3), enabled=True, file=terminal).disable
    assert progress_bar(range(3), enabled=False, file=terminal).disable
