"""The base of every MSOS product: its system and its software-version keywords."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import model_validator

from roman_schemas.product import Product
from roman_schemas.products.msos.meta import msos_version


class MsosProduct(Product):
    """Base of MSOS science products: one msos distribution carries photometry, events and
    detection efficiency, so all three version keywords are the msos version."""

    system: ClassVar[str] = "msos"

    def extra_archive_keywords(self) -> dict[str, Any]:
        version = msos_version(self.meta)
        return {
            "msos_photometry_version": version,
            "msos_events_version": version,
            "msos_detection_efficiency_version": version,
            "msos_processing_id": self.meta.processing_id,
        }


class MsosDqaProduct(Product):
    """Base of MSOS data-quality products (they carry only the DQA software version)."""

    system: ClassVar[str] = "msos"
    #: the DQA workflows and artifact types rad allows for this product type
    dqa_workflows: ClassVar[tuple[str, ...]] = ("periodic", "longterm", "events")
    dqa_artifact_types: ClassVar[tuple[str, ...]] = ("report", "catalog")

    @model_validator(mode="after")
    def _workflow_allowed(self) -> Self:
        if self.meta.dqa_workflow not in self.dqa_workflows:
            raise ValueError(f"dqa_workflow of {self.product_type} must be {self.dqa_workflows}")
        if self.meta.dqa_artifact_type not in self.dqa_artifact_types:
            raise ValueError(
                f"dqa_artifact_type of {self.product_type} must be {self.dqa_artifact_types}"
            )
        return self

    def extra_archive_keywords(self) -> dict[str, Any]:
        return {"msos_dqa_version": msos_version(self.meta)}
