from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from jicai.imports.datasets import ACTIVITY, DATASETS
from jicai.imports.mappings import available_mappings


class Command(BaseCommand):
    help = "List the datasets, their columns (key columns marked *) and the header mappings."

    def handle(self, *args: Any, **options: Any) -> None:
        for spec in (*DATASETS.values(), *ACTIVITY.values()):
            self.stdout.write(self.style.MIGRATE_HEADING(f"{spec.name}  {spec.label} / {spec.label_en}"))
            for col in spec.columns:
                mark = "*" if col.key else ("!" if col.required else " ")
                self.stdout.write(f"  {mark} {col.name:<22} {col.label}")
        self.stdout.write(self.style.MIGRATE_HEADING("header mappings"))
        for mapping in available_mappings().values():
            self.stdout.write(f"  {mapping.name:<22} {mapping.label} → {mapping.dataset}")
        self.stdout.write("* key column   ! required")
