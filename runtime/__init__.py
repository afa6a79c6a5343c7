"""Executable modules: feed validation, the reference executor (and the compiled runtime)."""

from .feeds import validate_feeds
from .module import ModuleBase
from .reference import ReferenceModule

__all__ = ["ModuleBase", "ReferenceModule", "validate_feeds"]
