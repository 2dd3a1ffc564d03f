"""The base of the peer adapters: a :class:`~celltwin.models.Model` whose engine is optional."""

from __future__ import annotations

from typing import ClassVar

from .._cell import CellModel
from ._common import import_peer


class PeerModel(CellModel):
    """A model that runs another group's package; fit and predict import it on first use.

    Subclasses list the modules they need in ``_peer_modules``; a missing one raises
    ImportError saying ``pip install 'celltwin[peers]'``.
    """

    _peer_modules: ClassVar[tuple[str, ...]] = ()

    def _require(self) -> None:
        for module in self._peer_modules:
            import_peer(module, model=self.name)
