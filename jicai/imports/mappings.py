"""Header mappings: how a publisher's own column names map onto a dataset's columns.

Shipped mappings live in ``jicai/imports/mappings/*.toml``; users add their own in
``JICAI_HOME/mappings/``. A mapping is used when named (``--mapping NAME|FILE``) or, when
none is named, when the file's headers contain every header the mapping lists.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from jicai.imports.spec import normalise_header

SHIPPED = Path(__file__).parent / "mappings"


class MappingError(Exception):
    pass


@dataclass(frozen=True)
class HeaderMapping:
    name: str
    label: str
    dataset: str
    columns: dict[str, str]
    options: dict[str, str] = field(default_factory=dict)

    def normalised(self) -> dict[str, str]:
        return {normalise_header(k): v for k, v in self.columns.items()}

    def matches(self, headers: list[str]) -> bool:
        present = {normalise_header(h) for h in headers}
        return bool(self.columns) and all(normalise_header(h) in present for h in self.columns)


def load_mapping(path: Path) -> HeaderMapping:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"{path}: {exc}") from exc
    try:
        columns = {str(k): str(v) for k, v in data["columns"].items()}
        return HeaderMapping(
            name=str(data.get("name", path.stem)),
            label=str(data.get("label", path.stem)),
            dataset=str(data["dataset"]),
            columns=columns,
            options={k: str(v) for k, v in data.items() if k in {"list"}},
        )
    except (KeyError, AttributeError) as exc:
        raise MappingError(f"{path}: needs 'dataset' and a [columns] table") from exc


def available_mappings() -> dict[str, HeaderMapping]:
    found: dict[str, HeaderMapping] = {}
    for folder in (SHIPPED, Path(settings.JICAI_HOME) / "mappings"):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                mapping = load_mapping(path)
                found[mapping.name] = mapping
    return found


def resolve_mapping(name_or_path: str) -> HeaderMapping:
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return load_mapping(path)
    mappings = available_mappings()
    if name_or_path not in mappings:
        known = ", ".join(sorted(mappings)) or "-"
        raise MappingError(f"unknown header mapping {name_or_path!r}; known: {known}")
    return mappings[name_or_path]


def detect_mapping(dataset: str, headers: list[str]) -> HeaderMapping | None:
    for mapping in available_mappings().values():
        if mapping.dataset == dataset and mapping.matches(headers):
            return mapping
    return None
