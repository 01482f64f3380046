"""Where apps above the engine plug their records into it, without the engine importing them.

The supply app registers its open supply interruptions here (R-I2: non-selected purchases exempt from
the cap, completion shown without the affected days). Each source is called with the as-of date and
returns an Arrow table or None; the tables of all sources are concatenated. Registration happens in
the apps' ``ready()``. (Published department targets, R-H3, depend on the report's request and scope:
the hospital app registers them in ``reports.TARGET_SOURCES``.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyarrow as pa

InterruptionSource = Callable[[dt.date], pa.Table | None]

#: Columns an interruption source returns (``institution_code`` NULL: every institution of the
#: batch's region; ``end_on`` NULL: still open).
INTERRUPTION_SCHEMA = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("start_on", pa.date32()),
        ("end_on", pa.date32()),
    ]
)

_interruption_sources: list[InterruptionSource] = []


def register_interruption_source(source: InterruptionSource) -> None:
    """Add ``source`` once (re-registering the same callable is a no-op, as ``ready()`` may run twice)."""
    if source not in _interruption_sources:
        _interruption_sources.append(source)


def interruptions(as_of: dt.date) -> pa.Table:
    """The interruptions on record up to ``as_of`` from every registered source (possibly empty)."""
    tables = []
    for source in _interruption_sources:
        table = source(as_of)
        if table is not None and table.num_rows:
            tables.append(table.select(INTERRUPTION_SCHEMA.names).cast(INTERRUPTION_SCHEMA))
    if not tables:
        return INTERRUPTION_SCHEMA.empty_table()
    return pa.concat_tables(tables)
