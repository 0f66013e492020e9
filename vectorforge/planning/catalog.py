"""Price catalogs: instance types with their cores, memory and hourly price, dated and editable.

The bundled ones live in `planning/catalogs/*.yaml`; a workload names one, or gives a file of its own
in the same layout.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vectorforge.errors import InvalidParameter
from vectorforge.extras import missing_extra

__all__ = ["BUNDLED", "Catalog", "Instance", "bundled_catalogs", "load_catalog"]

BUNDLED = Path(__file__).parent / "catalogs"


class Instance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    vcpus: int = Field(gt=0)
    memory_gib: float = Field(gt=0)
    hourly: float = Field(ge=0)


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    as_of: str = Field(description="when the prices were true")
    source: str
    currency: str = "USD"
    hours_per_month: float = Field(default=730, gt=0)
    storage_per_gb_month: float = Field(ge=0)
    usable_memory: float = Field(default=0.75, gt=0, le=1)
    target_cpu: float = Field(default=0.6, gt=0, le=1)
    instances: list[Instance] = Field(min_length=1)


@functools.cache
def bundled_catalogs() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in BUNDLED.glob("*.yaml")))


def load_catalog(
    name_or_path: str, relative_to: Path | None = None, *, bundled_only: bool = False
) -> Catalog:
    """A bundled catalog by name, or a YAML file (a relative path: from `relative_to`; never with
    `bundled_only`, as over HTTP, where a request must not name a file on the server)."""
    known = bundled_catalogs()
    if name_or_path in known:
        return _bundled(name_or_path)  # package files: read once (the server plans many times)
    if bundled_only:
        raise InvalidParameter(
            f"catalog: {name_or_path!r} is not a bundled price catalog ({', '.join(known)})"
        )
    path = Path(name_or_path)
    file = relative_to / path if not path.is_absolute() and relative_to is not None else path
    if not file.is_file():
        raise InvalidParameter(
            f"price catalog {name_or_path!r} is neither bundled ({', '.join(known)}) nor a file"
        )
    return _read(file)


@functools.cache
def _bundled(name: str) -> Catalog:
    return _read(BUNDLED / f"{name}.yaml")


def _read(file: Path) -> Catalog:
    with missing_extra("capacity planning"):
        import yaml

    try:
        return Catalog.model_validate(yaml.safe_load(file.read_text()))
    except (ValidationError, yaml.YAMLError) as exc:
        raise InvalidParameter(f"price catalog {file}: {exc}") from None
