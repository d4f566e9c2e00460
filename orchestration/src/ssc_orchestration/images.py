"""The image lock: which container image (name, version, digest) runs each package's CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

LOCK_FILE = Path(__file__).with_name("images.lock.yaml")


@dataclass(frozen=True)
class PinnedImage:
    """One package's image as the lock pins it."""

    package: str
    registry: str
    version: str
    digest: str | None

    @property
    def reference(self) -> str:
        """``registry/package:version`` plus ``@digest`` once a release has pushed it."""
        base = f"{self.registry}/{self.package}:{self.version}"
        return f"{base}@{self.digest}" if self.digest else base


def load_lock(path: str | os.PathLike[str] | None = None) -> dict[str, PinnedImage]:
    """Every pinned image by package name (``SSC_IMAGE_LOCK`` overrides the file)."""
    source = Path(path or os.environ.get("SSC_IMAGE_LOCK") or LOCK_FILE)
    document = yaml.safe_load(source.read_text())
    registry = os.environ.get("SSC_IMAGE_REGISTRY") or document["registry"]
    return {
        name: PinnedImage(name, registry, str(entry["version"]), entry.get("digest"))
        for name, entry in document["images"].items()
    }


def image_for(package: str) -> str:
    """The image reference a task of ``package`` must run."""
    images = load_lock()
    if package not in images:
        raise KeyError(f"{package} has no pinned image in {LOCK_FILE.name}")
    return images[package].reference
