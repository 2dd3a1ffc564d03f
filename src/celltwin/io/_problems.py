"""Problems found in data, and the error that carries them.

Every problem names what is wrong, where (the key and the offending values) and how to fix it, so a
user reading the message knows what to do without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset.

    Attributes
    ----------
    code
        Short stable identifier (``"no_controls"``, ``"duplicate_genes"``, ...), for tests and tools.
    what
        What is wrong, in plain words.
    where
        The key and the values involved (``"obs['target_gene']"``, ``"var_names: 'TP53' x2"``).
    fix
        What to do about it, naming the option or the call.
    severity
        ``"error"`` stops :func:`celltwin.io.validate`; ``"warning"`` is only reported.
    """

    code: str
    what: str
    where: str
    fix: str
    severity: Severity = "error"

    @property
    def message(self) -> str:
        """One readable line: what, where, fix."""
        return f"{self.what} [{self.where}]. Fix: {self.fix}"

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """Plain dict (JSON-serialisable), with the composed message."""
        return {**asdict(self), "message": self.message}


class ValidationError(ValueError):
    """Data does not meet celltwin's expectations; ``problems`` lists every reason found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = self.problems[0].message
        else:
            text = f"{len(self.problems)} problems:\n" + "\n".join(
                f"- {p.message}" for p in self.problems
            )
        super().__init__(text)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of severity ``"error"``."""
    return [p for p in problems if p.severity == "error"]


def raise_if_errors(problems: Iterable[Problem]) -> None:
    """Raise :class:`ValidationError` listing the errors among ``problems``, if any."""
    found = errors(problems)
    if found:
        raise ValidationError(found)


def preview(values: Iterable[object], *, limit: int = 5) -> str:
    """Quote the first ``limit`` values for a message: ``'a', 'b', ... (12 in all)``."""
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")
