"""A partition — one (season, field, detector) of the bulge survey — and where its products go.

Every MSOS product of a partition lives under ``msos/<season>/<field>/<detector>/`` in the
product store, so a partition's work is one prefix (one pod, one S3 prefix, one listing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from msos.errors import MsosError

_SEASON = re.compile(r"^s\d{2}$")
_FIELD = re.compile(r"^f\d{2}$")
_DETECTOR = re.compile(r"^WFI(0[1-9]|1[0-8])$")


@dataclass(frozen=True)
class Partition:
    """One (season, field, detector) of the Galactic Bulge Time Domain Survey."""

    season: str
    field: str
    detector: str

    def __post_init__(self) -> None:
        problems = []
        if not _SEASON.match(self.season):
            problems.append(f"season {self.season!r} (want s01…)")
        if not _FIELD.match(self.field):
            problems.append(f"field {self.field!r} (want f01…)")
        if not _DETECTOR.match(self.detector.upper()):
            problems.append(f"detector {self.detector!r} (want WFI01…WFI18)")
        if problems:
            raise MsosError("partition", "bad " + ", ".join(problems))
        object.__setattr__(self, "detector", self.detector.upper())

    @property
    def name(self) -> str:
        """``s01/f03/wfi01``: the label in logs and the processing database."""
        return f"{self.season}/{self.field}/{self.detector.lower()}"

    @property
    def prefix(self) -> str:
        """The storage prefix of every product of the partition."""
        return f"msos/{self.name}"

    @property
    def field_number(self) -> int:
        """The field as a number (f03 → 3)."""
        return int(self.field[1:])

    @property
    def detector_number(self) -> int:
        """The detector as a number (WFI07 → 7)."""
        return int(self.detector[3:])

    def reference_key(self) -> str:
        """Where the L3 reference frame goes."""
        return f"{self.prefix}/reference/wfi_microlensing_reference_frame_level_3.asdf"

    def catalog_key(self) -> str:
        """Where the object fiducial catalog goes."""
        return f"{self.prefix}/catalog/wfi_microlensing_object_fiducial_catalog_level_4.asdf"

    def difference_key(self, exposure_name: str) -> str:
        """Where an epoch's difference image goes."""
        return f"{self.prefix}/dia/{_stem(exposure_name)}_diff.asdf"

    def photometry_key(self, exposure_name: str) -> str:
        """Where an epoch's forced photometry goes."""
        return f"{self.prefix}/photometry/{_stem(exposure_name)}_phot.asdf"

    def daily_key(self, day: date) -> str:
        """Where the daily light curves of ``day`` go."""
        return (
            f"{self.prefix}/lightcurves/daily/{day.isoformat()}/"
            "wfi_microlensing_daily_light_curves_level_3.asdf"
        )

    def trigger_state_key(self, day: date) -> str:
        """Where the event trigger's state after ``day`` goes."""
        return f"{self.prefix}/events/trigger/{day.isoformat()}/wfi_microlensing_trigger_state.asdf"

    def events_key(self) -> str:
        """Where the partition's microlensing event catalog goes."""
        return f"{self.prefix}/events/wfi_microlensing_event_catalog_level_4.asdf"

    def dqa_event_key(self, event_id: str) -> str:
        """Where the DQA report of event ``event_id`` goes (its plot goes beside it)."""
        if not event_id or "/" in event_id or event_id in (".", ".."):
            raise MsosError("partition", f"event id {event_id!r} cannot name a storage folder")
        return f"{self.prefix}/events/dqa/{event_id}/wfi_microlensing_dqa_events_level_4.asdf"

    def efficiency_key(self, medium: str = "lightcurve") -> str:
        """Where the detection-efficiency catalog of injections into ``medium`` goes."""
        return (
            f"{self.prefix}/events/efficiency/{medium}/"
            "wfi_microlensing_detection_efficiency_catalog_level_4.asdf"
        )

    def season_key(self) -> str:
        """Where the season's L4 light-curve catalog goes."""
        return f"{self.prefix}/lightcurves/wfi_microlensing_light_curve_catalog_level_4.asdf"

    def variability_key(self) -> str:
        """Where the season's L4 variability catalog goes."""
        return f"{self.prefix}/variability/wfi_microlensing_variability_catalog_level_4.asdf"

    def periodic_key(self) -> str:
        """Where the season's L4 periodic-object catalog goes."""
        return f"{self.prefix}/variability/wfi_microlensing_object_periodic_catalog_level_4.asdf"


def _stem(exposure_name: str) -> str:
    name = exposure_name.rsplit("/", 1)[-1]
    for suffix in (".asdf", "_cal"):
        name = name.removesuffix(suffix)
    return name
