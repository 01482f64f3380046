"""The benchmark data generator, the DuckDB floor and the pandas baseline on a tiny province.

Schemas must be the engine's (the benchmark feeds the generated files to it), the data deterministic
by seed, ``--append-month`` must add exactly the next month, and floor and pandas must agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from benchmarks import generate as gen
from benchmarks.floor import PROGRESS_COLUMNS, SUBSTITUTE_COLUMNS, floor_progress_and_substitutes
from benchmarks.pandas_baseline import pandas_progress_and_substitutes
from jicai.facts.schemas import FACT_TABLES, QTY
from jicai.monitoring import reference

TINY = ["--rows", "20000", "--institutions", "20", "--items", "10", "--departments", "8", "--months", "14"]
FIRST, LAST = dt.date(2023, 1, 1), dt.date(2024, 2, 29)


def _generate(home: Path, *extra: str) -> None:
    gen.main(["--home", str(home), *TINY, *extra])


def _facts(home: Path, name: str) -> pa.Table:
    table = DeltaTable(str(home / "facts" / name)).to_pyarrow_table()
    return table.sort_by([(FACT_TABLES[name].key, "ascending")])


def _files(home: Path) -> list[str]:
    return list(DeltaTable(str(home / "facts" / "purchases")).file_uris())


def _ref(home: Path, name: str) -> str:
    return str(home / "reference" / f"{name}.parquet")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "home"
    _generate(path)
    return path


def test_fact_and_reference_schemas_are_the_engines(home: Path) -> None:
    for name, table in FACT_TABLES.items():
        stored = pa.schema(DeltaTable(str(home / "facts" / name)).schema().to_arrow())
        assert stored == table.schema, name
        assert DeltaTable(str(home / "facts" / name)).metadata().partition_columns == ["month"]
    assert gen.AGREEMENTS == reference.AGREEMENTS
    assert gen.ITEM_PRODUCTS == reference.ITEM_PRODUCTS
    assert gen.INSTITUTIONS == reference.INSTITUTIONS
    assert pq.read_schema(_ref(home, "agreements")) == reference.AGREEMENTS
    assert pq.read_schema(_ref(home, "item_products")) == reference.ITEM_PRODUCTS
    assert pq.read_schema(_ref(home, "institutions")) == reference.INSTITUTIONS


def test_shape_of_the_province(home: Path) -> None:
    purchases, dispensing = _facts(home, "purchases"), _facts(home, "dispensing")
    assert purchases.num_rows == dispensing.num_rows == 20_000
    months = sorted({str(m) for m in purchases.column("month").to_pylist()})
    assert months[0] == "2023-01"
    assert months[-1] == "2024-02"
    assert len(months) == 14
    institutions = pq.read_table(_ref(home, "institutions")).to_pylist()
    assert len(institutions) == 20
    assert all(len(r["institution_code"]) == 12 for r in institutions)
    assert all(r["institution_code"].startswith("H46") for r in institutions)
    assert all(r["institution_code"][1:7] == r["region_code"] for r in institutions)
    item_products = pq.read_table(_ref(home, "item_products")).to_pandas()
    kinds = item_products.groupby("item_code")["kind"].value_counts().unstack(fill_value=0)
    assert len(kinds) == 10
    assert kinds["selected"].between(1, 3).all()
    assert kinds["same_generic"].between(1, 3).all()
    assert kinds["substitute"].between(1, 2).all()
    selected = item_products[item_products["kind"] == "selected"]
    assert selected["unit_price"].notna().all()
    assert item_products.loc[item_products["kind"] != "selected", "unit_price"].isna().all()
    agreements = pq.read_table(_ref(home, "agreements")).to_pandas()
    assert sorted(agreements["year"].unique()) == [1, 2]
    assert set(agreements["profile"]) == {"national"}
    assert agreements.duplicated(["batch_code", "item_code", "institution_code", "year"]).sum() == 0
    assert (agreements["agreed_qty"] > 0).all()
    # Every purchase is of an item its institution has an agreement for.
    con = duckdb.connect()
    orphans = con.execute(
        f"""SELECT count(*) FROM read_parquet({_files(home)}) p
            JOIN read_parquet('{_ref(home, "item_products")}') ip USING (product_code)
            ANTI JOIN read_parquet('{_ref(home, "agreements")}') a
              ON a.institution_code = p.institution_code AND a.item_code = ip.item_code"""
    ).fetchone()
    assert orphans == (0,)
    # Payments: about one per line, none dated after the last month, every one for a real line.
    payments = _facts(home, "payments")
    assert 0.8 * purchases.num_rows < payments.num_rows < purchases.num_rows
    assert max(payments.column("paid_on").to_pylist()) <= LAST
    assert set(payments.column("line_id").to_pylist()) <= set(purchases.column("line_id").to_pylist())


def test_deterministic_by_seed_and_append_month(home: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _generate(again)
    for name in FACT_TABLES:
        assert _facts(again, name).equals(_facts(home, name)), name
    for name in ("agreements", "item_products", "institutions", "products", "departments"):
        assert pq.read_table(_ref(again, name)).equals(pq.read_table(_ref(home, name))), name
    other = tmp_path / "other"
    _generate(other, "--seed", "2")
    assert not _facts(other, "purchases").equals(_facts(home, "purchases"))

    before = {name: _facts(again, name) for name in FACT_TABLES}
    gen.main(["--home", str(again), "--append-month"])
    after = {name: _facts(again, name) for name in FACT_TABLES}
    added = after["purchases"].num_rows - before["purchases"].num_rows
    params = gen.Params(rows=20_000, institutions=20, departments=8, items=10, months=14)
    assert added == gen.month_rows(params, 14) > 0
    assert gen.latest_month(again) == "2024-03"
    new_lines = after["purchases"].filter(pa.compute.equal(after["purchases"]["month"], "2024-03"))
    assert new_lines.num_rows == added
    assert min(new_lines.column("accepted_on").to_pylist()) >= dt.date(2024, 3, 1)
    assert after["dispensing"].num_rows - before["dispensing"].num_rows == added
    # Earlier months are untouched; the new payments are all dated in the new month.
    old = after["purchases"].filter(pa.compute.not_equal(after["purchases"]["month"], "2024-03"))
    assert old.equals(before["purchases"])
    new_payments = after["payments"].num_rows - before["payments"].num_rows
    assert new_payments > 0
    paid = after["payments"].filter(pa.compute.equal(after["payments"]["month"], "2024-03"))
    assert paid.num_rows == new_payments
    assert len(set(after["payments"].column("payment_id").to_pylist())) == after["payments"].num_rows
    # The agreement year 2024 already existed: no new agreements.
    assert pq.read_table(_ref(again, "agreements")).equals(pq.read_table(_ref(home, "agreements")))


def test_append_month_into_a_new_year_adds_its_agreements(tmp_path: Path) -> None:
    target = tmp_path / "year"
    gen.main(["--home", str(target), "--rows", "3000", "--institutions", "10", "--items", "5", "--months", "12"])
    years_before = set(pq.read_table(_ref(target, "agreements")).column("year").to_pylist())
    gen.main(["--home", str(target), "--append-month"])
    agreements = pq.read_table(_ref(target, "agreements")).to_pandas()
    assert years_before == {1}
    assert set(agreements["year"]) == {1, 2}
    year2 = agreements[agreements["year"] == 2]
    assert (year2["period_start"] == dt.date(2024, 1, 1)).all()
    assert len(year2) == (agreements["year"] == 1).sum()
    assert gen.latest_month(target) == "2024-01"


def test_generate_refuses_an_existing_home(home: Path) -> None:
    with pytest.raises(SystemExit):
        _generate(home)


def test_arrow_helpers() -> None:
    values = np.array([12345, -5, 0, 10**15])
    assert gen.decimal_array(values, QTY).to_pylist() == [
        Decimal("1.2345"),
        Decimal("-0.0005"),
        Decimal("0.0000"),
        Decimal("100000000000.0000"),
    ]
    assert gen.digit_strings("L2023", np.array([1, 42]), 4).to_pylist() == ["L20230001", "L20230042"]
    assert gen.hex_strings(np.array([255, 2**64 - 1], dtype=np.uint64)).to_pylist() == [
        "00000000000000ff",
        "ffffffffffffffff",
    ]


def _as_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, Decimal)).any():
            frame[column] = frame[column].astype(float)
    return frame


def _assert_same(floor: pa.Table, frame: pd.DataFrame, columns: tuple[str, ...], keys: list[str]) -> None:
    left = _as_frame(floor).sort_values(keys, ignore_index=True)
    frame = frame.sort_values(keys, ignore_index=True)
    assert list(left.columns) == list(frame.columns) == list(columns)
    assert len(left) == len(frame)
    for column in columns:
        a, b = left[column], frame[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            # ratios are rounded to 4 places from doubles in both baselines: an exact tie such as
            # 1392 / 7680 = 0.18125 may land on either side (DuckDB's round() sees 0.181249…)
            assert np.allclose(a.astype(float), b.astype(float), rtol=0, atol=1.0001e-4, equal_nan=True), column
        else:
            assert (a.astype(str).to_numpy() == b.astype(str).to_numpy()).all(), column


@pytest.mark.parametrize("as_of", [LAST, dt.date(2024, 1, 20), dt.date(2023, 7, 15)])
def test_floor_and_pandas_agree(home: Path, as_of: dt.date) -> None:
    args = (_files(home), _ref(home, "agreements"), _ref(home, "item_products"), as_of)
    progress, subs = floor_progress_and_substitutes(duckdb.connect(), *args)
    progress_df, subs_df = pandas_progress_and_substitutes(*args)
    assert progress.num_rows == pq.read_metadata(_ref(home, "agreements")).num_rows
    assert subs.num_rows > 0
    _assert_same(progress, progress_df, PROGRESS_COLUMNS, ["batch_code", "item_code", "institution_code", "year"])
    _assert_same(subs, subs_df, SUBSTITUTE_COLUMNS, ["institution_code", "batch_code", "item_code", "month"])
    statuses = set(progress.column("status").to_pylist())
    assert statuses <= {"completed", "on_track", "behind", "at_risk"}


def test_one_agreement_counted_by_hand(home: Path) -> None:
    progress, subs = floor_progress_and_substitutes(
        duckdb.connect(), _files(home), _ref(home, "agreements"), _ref(home, "item_products"), LAST, ordered=True
    )
    rows = progress.to_pylist()
    keys = [(r["batch_code"], r["item_code"], r["institution_code"], r["year"]) for r in rows]
    assert keys == sorted(keys)
    row = max((r for r in rows if r["year"] == 1), key=lambda r: r["counted_qty"])
    con = duckdb.connect()
    (expected,) = con.execute(
        f"""SELECT sum(p.qty * ip.conversion) FROM read_parquet({_files(home)}) p
            JOIN read_parquet('{_ref(home, "item_products")}') ip ON ip.product_code = p.product_code
            WHERE ip.kind = 'selected' AND ip.item_code = ? AND ip.batch_code = ?
              AND p.institution_code = ? AND p.accepted_on BETWEEN DATE '2023-01-01' AND DATE '2023-12-31'""",
        [row["item_code"], row["batch_code"], row["institution_code"]],
    ).fetchone()
    assert expected > 0
    assert row["counted_qty"] == expected
    assert row["completion"] == pytest.approx(round(float(expected / row["agreed_qty"]), 4))
    assert row["elapsed"] == 1.0
    assert row["over_volume_qty"] == max(Decimal(0), expected - row["agreed_qty"])
    # The substitutes' cumulative selected quantity at December is the same counted quantity.
    december = [
        r
        for r in subs.to_pylist()
        if (r["institution_code"], r["item_code"], r["month"]) == (row["institution_code"], row["item_code"], "2023-12")
    ]
    if december:
        assert december[0]["cum_selected_qty"] == expected
