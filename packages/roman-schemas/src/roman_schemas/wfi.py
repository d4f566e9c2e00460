"""Vocabulary of the Wide Field Instrument shared by MSOS and GDPS products (rad's enums)."""

from __future__ import annotations

from typing import Literal

Detector = Literal[
    "WFI01", "WFI02", "WFI03", "WFI04", "WFI05", "WFI06", "WFI07", "WFI08", "WFI09",
    "WFI10", "WFI11", "WFI12", "WFI13", "WFI14", "WFI15", "WFI16", "WFI17", "WFI18",
]  # fmt: skip
OpticalElement = Literal[
    "F062", "F087", "F106", "F129", "F146", "F158", "F184", "F213", "GRISM", "PRISM",
    "DARK", "NOT_CONFIGURED",
]  # fmt: skip
#: calibrated L2 surface brightness units romancal writes
ImageUnit = Literal["DN / s", "MJy / sr"]
