"""Which modalities a forward pass sees."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """Both streams, IR only (EO missing) or EO only (IR missing). Values are stable strings."""

    BOTH = "both"
    IR = "ir"
    EO = "eo"

    @property
    def uses_eo(self) -> bool:
        return self is not Mode.IR

    @property
    def uses_ir(self) -> bool:
        return self is not Mode.EO

    def keep(self, eo, ir):
        """(eo, ir) with the stream this mode leaves out set to None: the one place a modality is
        blanked, for a forward pass, a training step or a score alike."""
        return (eo if self.uses_eo else None), (ir if self.uses_ir else None)

    @property
    def label(self) -> str:
        return {"both": "EO + IR", "ir": "IR only", "eo": "EO only"}[self.value]


ALL_MODES: tuple[Mode, ...] = (Mode.BOTH, Mode.IR, Mode.EO)
