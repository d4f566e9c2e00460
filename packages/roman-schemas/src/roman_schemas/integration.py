"""The asdf entry points: our schemas and manifests as resources, and the product extension."""

from __future__ import annotations

from importlib import resources
from typing import Any

from asdf.extension import Converter, ManifestExtension
from asdf.resource import DirectoryResourceMapping

from roman_schemas.product import URI_PREFIX


def get_resource_mappings() -> list[Any]:
    """Map ``asdf://ipac.caltech.edu/roman-ssc/{schemas,manifests}/…`` to packaged files."""
    root = resources.files("roman_schemas") / "resources"
    return [
        DirectoryResourceMapping(root / "schemas", f"{URI_PREFIX}/schemas/", recursive=True),
        DirectoryResourceMapping(root / "manifests", f"{URI_PREFIX}/manifests/"),
    ]


class ProductConverter(Converter):
    """Reads and writes every registered product class under its own tag."""

    def __init__(self) -> None:
        from roman_schemas.product import registered_products

        self._by_tag = registered_products()

    @property
    def tags(self) -> list[str]:
        return sorted(self._by_tag)

    @property
    def types(self) -> list[type]:
        return list(dict.fromkeys(self._by_tag.values()))

    def to_yaml_tree(self, obj: Any, tag: str, ctx: Any) -> dict[str, Any]:
        return obj.to_tree()

    def from_yaml_tree(self, node: Any, tag: str, ctx: Any) -> Any:
        return self._by_tag[tag].from_tree(node)

    def select_tag(self, obj: Any, tags: list[str], ctx: Any) -> str:
        return type(obj).tag_uri()


def get_extensions() -> list[ManifestExtension]:
    """One extension per manifest (old manifests stay so old files keep opening)."""
    root = resources.files("roman_schemas") / "resources" / "manifests"
    names = sorted(
        (p.name for p in root.iterdir() if p.name.endswith(".yaml")),
        key=lambda n: tuple(int(x) for x in n.rsplit("-", 1)[1][: -len(".yaml")].split(".")),
        reverse=True,
    )
    converter = ProductConverter()
    return [
        ManifestExtension.from_uri(
            f"{URI_PREFIX}/manifests/{name[: -len('.yaml')]}", converters=[converter]
        )
        for name in names
    ]
