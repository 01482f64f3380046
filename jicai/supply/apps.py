from __future__ import annotations

import datetime as dt

import pyarrow as pa
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _interruptions_for_engine(as_of: dt.date) -> pa.Table:
    """Confirmed and closed incidents in the engine hook's shape (start_on / end_on), R-I2."""
    from jicai.supply.queries import open_interruptions  # noqa: PLC0415 - models load after the app registry

    table = open_interruptions(None, as_of)
    return table.rename_columns(
        ["start_on" if c == "start" else "end_on" if c == "end" else c for c in table.column_names]
    )


class SupplyConfig(AppConfig):
    name = "jicai.supply"
    label = "supply"
    verbose_name = _("Supply assurance")

    def ready(self) -> None:
        from jicai.monitoring import hooks  # noqa: PLC0415

        hooks.register_interruption_source(_interruptions_for_engine)
