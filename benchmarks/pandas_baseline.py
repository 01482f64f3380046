"""The pandas baseline: progress + substitutes as an analyst would write them with pandas.

Same definitions and columns as ``benchmarks.floor`` (read its docstring); the engine must be at least
3 × faster than this. Idiomatic, not pessimised: only the needed columns are read (pyarrow → pandas,
strings de-duplicated), then merges, groupby sums, cumsum and shifted self-merges. Quantities are
float64 (exact here: item quantities are multiples of 0.5), ratios are rounded half away from zero to
4 places like DuckDB's ``round``. Rows come in no particular order (like the floor's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.floor import PROGRESS_COLUMNS, SUBSTITUTE_COLUMNS

KEY = ["institution_code", "batch_code", "item_code"]


def _round4(values: pd.Series) -> pd.Series:
    """Half away from zero to 4 places (NaN stays NaN)."""
    arr = values.to_numpy(dtype=np.float64)
    return pd.Series(np.sign(arr) * np.floor(np.abs(arr) * 10_000 + 0.5) / 10_000, index=values.index)


def _floats(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    for name in columns:
        table = table.set_column(table.schema.get_field_index(name), name, pc.cast(table[name], pa.float64()))
    return table


def read_purchases(files: Sequence[str], as_of: dt.date) -> pd.DataFrame:
    table = pq.read_table(
        list(files),
        columns=["institution_code", "product_code", "accepted_on", "qty"],
        filters=[("accepted_on", "<=", as_of)],
    )
    return _floats(table, ["qty"]).to_pandas(date_as_object=False)


def read_reference(path: str, floats: Sequence[str]) -> pd.DataFrame:
    return _floats(pq.read_table(path), floats).to_pandas(date_as_object=False)


def progress_frame(
    purchases: pd.DataFrame,
    agreements: pd.DataFrame,
    item_products: pd.DataFrame,
    as_of: dt.date,
    *,
    behind_ratio: float = 0.90,
    at_risk_ratio: float = 0.70,
    run_rate_days: int = 90,
) -> pd.DataFrame:
    day = pd.Timestamp(as_of)
    selected = item_products.loc[
        item_products["kind"] == "selected", ["batch_code", "item_code", "product_code", "conversion"]
    ].drop_duplicates()
    lines = purchases.merge(selected, on="product_code")
    lines["q"] = lines["qty"] * lines["conversion"]
    daily = lines.groupby([*KEY, "accepted_on"], sort=False, observed=True)["q"].sum().reset_index()
    periods = agreements[["agreement_id", *KEY, "period_start", "period_end"]]
    placed = daily.merge(periods, on=KEY)
    placed = placed[(placed["accepted_on"] >= placed["period_start"]) & (placed["accepted_on"] <= placed["period_end"])]
    counted = placed.groupby("agreement_id")["q"].sum().rename("counted")
    window_start = day - pd.Timedelta(days=run_rate_days)
    recent = placed[placed["accepted_on"] > window_start].groupby("agreement_id")["q"].sum().rename("recent")
    out = agreements.join(counted, on="agreement_id").join(recent, on="agreement_id")
    out[["counted", "recent"]] = out[["counted", "recent"]].fillna(0.0)
    days_total = (out["period_end"] - out["period_start"]).dt.days + 1
    days_elapsed = ((day - out["period_start"]).dt.days + 1).clip(lower=0).clip(upper=days_total)
    days_left = (out["period_end"] - np.maximum(day, out["period_start"] - pd.Timedelta(days=1))).dt.days.clip(lower=0)
    rate_days = days_elapsed.clip(upper=run_rate_days)
    agreed, counted_qty = out["agreed_qty"], out["counted"]
    progress_done = counted_qty * days_total
    status = np.select(
        [
            (agreed <= 0) | (counted_qty >= agreed),
            days_elapsed <= 0,
            progress_done >= behind_ratio * days_elapsed * agreed,
            progress_done >= at_risk_ratio * days_elapsed * agreed,
        ],
        ["completed", "on_track", "on_track", "behind"],
        "at_risk",
    )
    projected = np.where(rate_days > 0, counted_qty + out["recent"] * days_left / rate_days.replace(0, 1), counted_qty)
    result = pd.DataFrame(
        {
            "batch_code": out["batch_code"],
            "item_code": out["item_code"],
            "institution_code": out["institution_code"],
            "year": out["year"],
            "agreed_qty": agreed,
            "counted_qty": counted_qty,
            "completion": _round4(counted_qty / agreed.where(agreed != 0)),
            "elapsed": _round4(days_elapsed / days_total),
            "status": status,
            "projected_qty": _round4(pd.Series(projected, index=out.index)),
            "over_volume_qty": (counted_qty - agreed).clip(lower=0),
        }
    )
    return result[list(PROGRESS_COLUMNS)]


def substitutes_frame(
    purchases: pd.DataFrame,
    agreements: pd.DataFrame,
    item_products: pd.DataFrame,
    as_of: dt.date,
    *,
    cap_ratio: float = 1.0,
) -> pd.DataFrame:
    day = pd.Timestamp(as_of)
    products = item_products[["batch_code", "item_code", "product_code", "kind", "conversion"]].drop_duplicates()
    pairs = agreements[KEY].drop_duplicates()
    lines = purchases.merge(products, on="product_code").merge(pairs, on=KEY)
    lines["q"] = lines["qty"] * lines["conversion"]
    lines["midx"] = lines["accepted_on"].dt.year * 12 + lines["accepted_on"].dt.month - 1
    monthly = (
        lines.pivot_table(index=[*KEY, "midx"], columns="kind", values="q", aggfunc="sum", fill_value=0.0)
        .reindex(columns=["selected", "same_generic", "substitute"], fill_value=0.0)
        .rename(columns={"selected": "sel", "same_generic": "ns", "substitute": "sub"})
        .reset_index()
    )
    monthly.columns.name = None
    # The agreement year that holds the month's reference day (its last day, or as_of).
    month_end = pd.to_datetime(
        {"year": monthly["midx"] // 12, "month": monthly["midx"] % 12 + 1, "day": 1}
    ) + pd.offsets.MonthEnd(0)
    monthly["ref_day"] = month_end.where(month_end <= day, day)
    monthly["row"] = np.arange(len(monthly))
    candidates = monthly[["row", *KEY, "ref_day"]].merge(
        agreements[["agreement_id", *KEY, "period_start", "period_end"]], on=KEY
    )
    inside = candidates[
        (candidates["ref_day"] >= candidates["period_start"]) & (candidates["ref_day"] <= candidates["period_end"])
    ]
    monthly = monthly.merge(inside[["row", "agreement_id"]], on="row", how="left")
    monthly = monthly.sort_values([*KEY, "midx"], ignore_index=True)
    with_year = monthly["agreement_id"].notna()
    grouped = monthly[with_year].groupby([*KEY, "agreement_id"], sort=False)
    monthly.loc[with_year, "cum_sel"] = grouped["sel"].cumsum()
    monthly.loc[with_year, "cum_ns"] = grouped["ns"].cumsum()
    previous = monthly[[*KEY, "midx", "sub"]]
    month_before = previous.assign(midx=previous["midx"] + 1).rename(columns={"sub": "prev_sub"})
    year_before = previous.assign(midx=previous["midx"] + 12).rename(columns={"sub": "last_year_sub"})
    monthly = monthly.merge(month_before, on=[*KEY, "midx"], how="left").merge(
        year_before, on=[*KEY, "midx"], how="left"
    )
    total = monthly["sel"] + monthly["ns"] + monthly["sub"]
    nonzero_total = total.where(total != 0)
    prev_sub = monthly["prev_sub"].where(monthly["prev_sub"] != 0)
    last_year_sub = monthly["last_year_sub"].where(monthly["last_year_sub"] != 0)
    cap_limit = cap_ratio * monthly["cum_sel"]
    result = pd.DataFrame(
        {
            "institution_code": monthly["institution_code"],
            "batch_code": monthly["batch_code"],
            "item_code": monthly["item_code"],
            "month": (monthly["midx"] // 12).astype(str).str.zfill(4)
            + "-"
            + (monthly["midx"] % 12 + 1).astype(str).str.zfill(2),
            "selected_qty": monthly["sel"],
            "non_selected_qty": monthly["ns"],
            "substitute_qty": monthly["sub"],
            "total_qty": total,
            "selected_share": _round4(monthly["sel"] / nonzero_total),
            "non_selected_share": _round4(monthly["ns"] / nonzero_total),
            "substitute_share": _round4(monthly["sub"] / nonzero_total),
            "mom_growth": _round4((monthly["sub"] - prev_sub) / prev_sub),
            "yoy_growth": _round4((monthly["sub"] - last_year_sub) / last_year_sub),
            "cum_selected_qty": monthly["cum_sel"],
            "cum_non_selected_qty": monthly["cum_ns"],
            "cap_limit": cap_limit,
            "cap_exceeded": (monthly["cum_ns"] > cap_limit).fillna(False).astype(bool),
        }
    )
    return result[list(SUBSTITUTE_COLUMNS)]


def pandas_progress_and_substitutes(
    purchases_files: Sequence[str],
    agreements_path: str,
    item_products_path: str,
    as_of: dt.date,
    *,
    behind_ratio: float = 0.90,
    at_risk_ratio: float = 0.70,
    cap_ratio: float = 1.0,
    run_rate_days: int = 90,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(progress, substitutes) DataFrames with the floor's columns and numbers (floats)."""
    purchases = read_purchases(purchases_files, as_of)
    agreements = read_reference(agreements_path, ["agreed_qty", "unit_price"])
    item_products = read_reference(item_products_path, ["conversion", "unit_price"])
    progress = progress_frame(
        purchases,
        agreements,
        item_products,
        as_of,
        behind_ratio=behind_ratio,
        at_risk_ratio=at_risk_ratio,
        run_rate_days=run_rate_days,
    )
    subs = substitutes_frame(purchases, agreements, item_products, as_of, cap_ratio=cap_ratio)
    return progress, subs
