"""The data behind the daily screens (``jicai.monitoring.dashboard`` / ``screens`` / ``lines``), without the web."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jicai.core.tenancy import Level, Scope, ScopeError
from jicai.monitoring import lines, screens
from jicai.monitoring.dashboard import Dashboard, ratio

from .conftest import AS_OF, HK, ITEM, SY, TC, XA

pytestmark = pytest.mark.django_db


def session(site: Any, user: str, home: Path | None = None, **kw: Any) -> Dashboard:
    from django.conf import settings

    return Dashboard(home or Path(settings.JICAI_HOME), site.scope(user), **kw)


def test_the_screens_read_the_cycles_stored_results_as_of_its_date(site: Any) -> None:
    with session(site, "hn_admin") as d:
        assert d.source.kind == "cycle"
        assert d.source.as_of == AS_OF
        assert not d.source.stale
        rows = screens.institution_ranking(d)
    assert {r["institution_code"] for r in rows} == {HK, SY}


@pytest.mark.parametrize(
    ("user", "codes"),
    [
        ("hn_admin", {HK, SY}),
        ("sy_admin", {SY}),
        ("sx_admin", {XA, TC}),
        ("xa_admin", {XA}),
        ("hn_vbp", {HK}),
        ("sx_vbp", {XA}),
        ("operator", {HK, SY, XA, TC}),
    ],
)
def test_every_stored_result_is_restricted_to_the_scope(site: Any, user: str, codes: set[str]) -> None:
    with session(site, user) as d:
        for relation in ("dash_progress", "dash_subs", "dash_overdue", "dash_current", "dash_year_subs", "dash_cum"):
            found = {r["institution_code"] for r in d.rows(f"SELECT DISTINCT institution_code FROM {relation}")}
            assert found <= codes, (user, relation, found - codes)
        assert {r["institution_code"] for r in d.rows("SELECT institution_code FROM dash_current")} == codes


def test_a_department_scope_gets_no_purchase_figures(site: Any) -> None:
    with session(site, "hn_head") as d:
        assert d.rows("SELECT count(*) AS n FROM dash_progress")[0]["n"] == 0
        assert d.rows("SELECT count(*) AS n FROM dash_overdue")[0]["n"] == 0
        assert screens.institution_ranking(d) == []
        with pytest.raises(ScopeError):
            d.prepayments(HK)
        with pytest.raises(ScopeError):
            lines.purchase_lines(d, lines.LineFilter(institution=HK))


def test_kpis_and_rankings_of_a_province(site: Any) -> None:
    with session(site, "hn_admin") as d:
        caps = screens.cap_breaches(d)
        kpi = screens.kpis(d, caps=caps)
        items = screens.item_ranking(d)
        ranking = screens.institution_ranking(d)
    # HK 1,500 of 10,000 and SY 1,500 of 5,000 on day 181 of 365
    assert kpi["agreements"] == 2
    assert kpi["institutions"] == 2
    assert kpi["completion"] == Decimal("0.2250")
    assert kpi["elapsed"] == Decimal("0.4959")
    assert kpi["overdue_amount"] == Decimal("340.00")  # line L2 (170.00) of each hospital
    assert kpi["cap_breaches"] == 0
    assert [(r["institution_code"], r["completion"], r["rank"]) for r in ranking] == [
        (HK, Decimal("0.1500"), 1),
        (SY, Decimal("0.3000"), 2),
    ]
    (item,) = items
    assert (item["batch_code"], item["item_code"]) == ITEM
    assert item["agreed_qty"] == Decimal(15000)
    assert item["counted_qty"] == Decimal(3000)
    assert item["completion"] == Decimal("0.2000")


def test_heatmap_has_one_cell_per_current_agreement(site: Any) -> None:
    with session(site, "sx_admin") as d:
        heat = screens.heatmap(d)
    assert [i["code"] for i in heat["institutions"]] == [XA, TC]  # worst first: 7.5 % then 18.75 %
    assert heat["items"] == [{"batch": "SX-N7", "item": "A01", "name": "阿托伐他汀钙片"}]
    assert sorted((c[1], c[2]) for c in heat["cells"]) == [(0, 7.5), (1, 18.8)]


def test_behind_schedule_lists_the_furthest_behind_first(site: Any) -> None:
    with session(site, "hn_admin") as d:
        rows = screens.behind_schedule(d)
    assert [r["institution_code"] for r in rows] == [HK, SY]
    assert all(r["status"] in {"behind", "at_risk"} for r in rows)


def test_overdue_totals_and_the_lines_behind_them_agree(site: Any) -> None:
    with session(site, "hn_vbp", facts=True) as d:
        (row,) = screens.overdue(d)
        found, _sort = lines.payable_lines(d, HK, overdue_only=True)
        totals = found.totals({"outstanding": "sum(outstanding)"})
        listed = found[0:50]
    assert row["overdue_amount"] == Decimal("170.00")
    assert totals["outstanding"] == row["overdue_amount"]
    assert [r["line_id"] for r in listed] == ["HK-L2"]
    assert listed[0]["days_overdue"] == (AS_OF - dt.date(2023, 3, 31)).days


def test_counted_quantity_equals_the_total_of_the_lines_behind_it(site: Any) -> None:
    with session(site, "hn_vbp", facts=True) as d:
        (item,) = screens.institution_items(d, HK)
        f = lines.LineFilter(
            institution=HK,
            batch=item["batch_code"],
            item=item["item_code"],
            kind="selected",
            date_from=item["period_start"],
            date_to=min(item["period_end"], d.as_of),
        )
        found, _ = lines.purchase_lines(d, f)
        totals = found.totals({"item_qty": "sum(item_qty)"})
        ids = [r["line_id"] for r in found[0:50]]
    assert item["counted_qty"] == Decimal(1500)
    assert totals["item_qty"] == item["counted_qty"]
    assert ids == ["HK-L1", "HK-L2"]
    assert found.count() == 2


def test_shares_of_an_institutions_items_in_the_year_so_far(site: Any) -> None:
    with session(site, "hn_vbp") as d:
        (hk,) = screens.institution_items(d, HK)
    with session(site, "sx_vbp") as d:
        (xa,) = screens.institution_items(d, XA)
    # 300 of the other product on top of 1,500 selected: a substitute in HN-N7, non-selected in SX-N7
    assert hk["substitute_share"] == ratio(300, 1800)
    assert hk["non_selected_share"] == Decimal(0)
    assert xa["non_selected_share"] == ratio(300, 1800)
    assert xa["cap_exceeded"] is False


def test_trends_run_month_by_month_up_to_the_as_of_date(site: Any) -> None:
    with session(site, "hn_vbp") as d:
        mix = screens.monthly_mix(d, institution=HK)
        trend = screens.completion_trend(d, institution=HK)
    assert mix["months"][0] == "2022-11"
    assert mix["months"][-1] == "2023-04"
    by_month = dict(zip(mix["months"], mix["selected"], strict=True))
    assert by_month["2022-11"] == 1000.0
    assert by_month["2023-02"] == 500.0
    assert dict(zip(mix["months"], mix["substitute"], strict=True))["2023-03"] == 300.0
    completion = dict(zip(trend["months"], trend["completion"], strict=True))
    assert completion["2022-11"] == 10.0
    assert completion["2023-01"] == 10.0  # no purchase in December or January: carried over
    assert completion["2023-04"] == 15.0
    assert trend["elapsed"][-1] == 49.6


def test_live_figures_match_the_stored_ones_when_no_cycle_ran(site: Any, live_home: Path) -> None:
    with session(site, "hn_admin") as stored:
        expected = screens.institution_ranking(stored)
        expected_items = screens.item_ranking(stored)
        expected_overdue = screens.overdue(stored)
    with session(site, "hn_admin", home=live_home, as_of=AS_OF) as live:
        assert live.source.kind == "live"
        assert screens.institution_ranking(live) == expected
        assert screens.item_ranking(live) == expected_items
        assert screens.overdue(live) == expected_overdue


def test_another_as_of_date_is_computed_live(site: Any) -> None:
    with session(site, "hn_vbp", as_of=dt.date(2023, 1, 31)) as d:
        assert d.source.kind == "live"
        (item,) = screens.institution_items(d, HK)
    assert item["counted_qty"] == Decimal(1000)


def test_department_progress_and_months(site: Any) -> None:
    with session(site, "hn_vbp") as d:
        rows = screens.department_rows(d, HK, "NK01")
        months = screens.department_months(d, HK, "NK01")
    (row,) = rows
    # both departments used 100 in the reference window: the 10,000 agreed split 5,000 / 5,000
    assert row["target_qty"] == Decimal(5000)
    assert row["dispensed_qty"] == Decimal(80)
    assert row["completion"] == Decimal("0.0160")
    (series,) = months.values()
    assert [(m["month"], m["dispensed_qty"]) for m in series] == [("2023-01", Decimal(80))]
    assert series[0]["target_to_date"] == Decimal(5000 * 92) / 365 // 1  # days 2022-11-01 … 2023-01-31


def test_a_department_head_sees_its_dispensing_without_targets(site: Any) -> None:
    with session(site, "hn_head") as d:
        (row,) = screens.department_rows(d, HK, "NK01")
        assert screens.department_rows(d, HK, "SJ01") == []  # the other department is not in its facts
    assert row["dispensed_qty"] == Decimal(80)
    assert row["target_qty"] is None


def test_dispensing_lines_of_a_department_scope_are_its_own(site: Any) -> None:
    with session(site, "hn_head", facts=True) as d:
        found, _ = lines.dispensing_lines(d, lines.LineFilter())
        ids = {r["record_id"] for r in found[0:50]}
    assert ids == {"HK-NK01-D0", "HK-NK01-D1"}


def test_sql_rows_page_like_a_queryset(site: Any) -> None:
    from django.core.paginator import Paginator

    with session(site, "operator", facts=True) as d:
        found, sort = lines.purchase_lines(d, lines.LineFilter(), "-qty")
        page = Paginator(found, 3).get_page(2)
        assert sort == "-qty"
        assert page.paginator.count == 16
        assert page.paginator.num_pages == 6
        assert [r["qty"] for r in page.object_list] == [Decimal(1000), Decimal(500), Decimal(500)]  # 4 × 1000 first
        unknown, sort = lines.purchase_lines(d, lines.LineFilter(), "qty; DROP TABLE purchases")
        assert sort == ""
        assert unknown.count() == 16


def test_the_session_needs_a_scope_that_reads_reports(site: Any) -> None:
    with pytest.raises(ScopeError):
        Dashboard(Path("."), None)
    with pytest.raises(ScopeError):
        Dashboard(Path("."), Scope(level=Level.REGION, region_code="460000"))


def test_results_stored_before_a_column_existed_read_as_null(tmp_path: Path) -> None:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jicai.monitoring.dashboard import _parquet_select

    pq.write_table(pa.table({"a": pa.array([1], pa.int64())}), tmp_path / "old.parquet")
    schema = pa.schema([("a", pa.int64()), ("b", pa.decimal128(18, 4)), ("c", pa.string())])
    con = duckdb.connect()
    try:
        sql = _parquet_select(con, "t", [str(tmp_path / "old.parquet")], schema, "TRUE", autocast=False)
        assert con.sql(sql).fetchall() == [(1, None, None)]
        assert con.sql(_parquet_select(con, "t", [], schema, "TRUE", autocast=False)).fetchall() == []
    finally:
        con.close()


def test_facts_imported_after_the_cycle_mark_the_figures_stale(site: Any, web_home: Path, tmp_path: Path) -> None:
    import shutil

    import pyarrow as pa

    from jicai.facts.schemas import PURCHASES
    from jicai.facts.store import upsert

    home = tmp_path / "home"
    shutil.copytree(web_home, home)
    line = {
        "line_id": "HK-L9",
        "institution_code": HK,
        "region_code": "460108",
        "product_code": "XC10AAA067A001020101187",
        "ordered_on": dt.date(2023, 4, 20),
        "delivered_on": None,
        "accepted_on": dt.date(2023, 4, 21),
        "qty": Decimal(10),
        "unit_price": Decimal("0.34"),
        "amount": Decimal("3.40"),
        "distributor": None,
        "import_id": None,
        "month": "2023-04",
    }
    upsert(home, PURCHASES, pa.Table.from_pylist([line], schema=PURCHASES.schema))
    with session(site, "hn_vbp", home=home) as d:
        assert d.source.kind == "cycle"
        assert d.source.stale
        (item,) = screens.institution_items(d, HK)
    assert item["counted_qty"] == Decimal(1500)  # the stored figure, until the next cycle
