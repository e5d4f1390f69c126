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

    @property
    def label(self) -> str:
        return {"both": "EO + IR", "ir": "IR only", "eo": "EO only"}[self.value]


ALL_MODES: tuple[Mode, ...] = (Mode.BOTH, Mode.IR, Mode.EO)
