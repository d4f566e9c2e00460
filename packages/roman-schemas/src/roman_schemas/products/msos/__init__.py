"""MSOS products: reference frames, light curves, object and event catalogs, DQA reports."""

from roman_schemas.products.msos.catalogs import (
    FiducialObjects,
    ObjectFiducialCatalog,
    ObjectPeriodicCatalog,
    PeriodicObjects,
    VariabilityCatalog,
    VariableObjects,
)
from roman_schemas.products.msos.dqa import (
    DqaEventsLevel4,
    DqaPhotometryLevel3,
    DqaPhotometryLevel4,
)
from roman_schemas.products.msos.events import (
    DetectionEfficiencyCatalog,
    Events,
    Injections,
    MicrolensingEventCatalog,
)
from roman_schemas.products.msos.flags import EpochFlag, PhotometryFlag
from roman_schemas.products.msos.legacy import (
    DailyLightCurvesV1_0_0,
    ReferenceFrameV1_0_0,
    ReferenceFrameV1_1_0,
)
from roman_schemas.products.msos.meta import (
    ExposureSpan,
    MsosDailyMeta,
    MsosDqaMeta,
    MsosEfficiencyMeta,
    MsosEpochMeta,
    MsosMeta,
    MsosPartitionMeta,
    MsosRegionMeta,
    Pointing,
)
from roman_schemas.products.msos.photometry import (
    DailyLightCurves,
    DiaKernelSolution,
    DifferenceImage,
    EpochPhotometry,
    Epochs,
    GriddedPSF,
    LightCurveArrays,
    LightCurveCatalog,
    LightCurveObjects,
    ReferenceFrame,
    ReferenceObjects,
    SuperResolvedFrame,
)

__all__ = [
    "DailyLightCurves",
    "DailyLightCurvesV1_0_0",
    "DetectionEfficiencyCatalog",
    "DiaKernelSolution",
    "DifferenceImage",
    "DqaEventsLevel4",
    "DqaPhotometryLevel3",
    "DqaPhotometryLevel4",
    "EpochFlag",
    "EpochPhotometry",
    "Epochs",
    "Events",
    "ExposureSpan",
    "FiducialObjects",
    "GriddedPSF",
    "Injections",
    "LightCurveArrays",
    "LightCurveCatalog",
    "LightCurveObjects",
    "MicrolensingEventCatalog",
    "MsosDailyMeta",
    "MsosDqaMeta",
    "MsosEfficiencyMeta",
    "MsosEpochMeta",
    "MsosMeta",
    "MsosPartitionMeta",
    "MsosRegionMeta",
    "ObjectFiducialCatalog",
    "ObjectPeriodicCatalog",
    "PeriodicObjects",
    "PhotometryFlag",
    "Pointing",
    "ReferenceFrame",
    "ReferenceFrameV1_0_0",
    "ReferenceFrameV1_1_0",
    "ReferenceObjects",
    "SuperResolvedFrame",
    "VariabilityCatalog",
    "VariableObjects",
]
