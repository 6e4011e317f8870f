"""Input specifications: resources, boards (packaged catalog), shells, caps, links."""

from dse.specs.board import (
    DEFAULT_CAPS,
    Board,
    BoardConfig,
    Catalog,
    ShellProfile,
    default_catalog,
    load_catalog,
    validate_caps,
)
from dse.specs.resources import EXTERNAL_NAMES, KINDS, RESOURCE_NAMES, Resources

__all__ = [
    "DEFAULT_CAPS",
    "EXTERNAL_NAMES",
    "KINDS",
    "RESOURCE_NAMES",
    "Board",
    "BoardConfig",
    "Catalog",
    "Resources",
    "ShellProfile",
    "default_catalog",
    "load_catalog",
    "validate_caps",
]
