"""The ORM layer fails closed: every scoped model refuses reads and writes without a scope,
shows each tenant exactly its own rows, and refuses writes outside the tenant's territory."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count, Q
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jicai.accounts.models import User
from jicai.catalog.models import PriceList, PriceListEntry, Product
from jicai.core.tenancy import ScopeError, region_prefix, system_scope, use_scope
from jicai.imports.models import ImportRun
from jicai.organizations.models import Company, Department, Institution
from jicai.programme.models import Agreement, Batch, Item, NonSelectedProduct, SelectedProduct

from .conftest import VISIBLE, Tenants

SCOPED_MODELS: list[type[Any]] = [
    Institution,
    Department,
    Company,
    Product,
    PriceList,
    PriceListEntry,
    Batch,
    Item,
    SelectedProduct,
    NonSelectedProduct,
    Agreement,
    ImportRun,
]
MODEL_IDS = [m.__name__ for m in SCOPED_MODELS]

# A text (or JSON) field of each model that a stray update would overwrite.
UPDATE_FIELD: dict[type[Any], tuple[str, Any]] = {
    Institution: ("name", "PWNED"),
    Department: ("name", "PWNED"),
    Company: ("credit_code", "PWNED"),
    Product: ("generic_name", "PWNED"),
    PriceList: ("name", "PWNED"),
    PriceListEntry: ("company", "PWNED"),
    Batch: ("name", "PWNED"),
    Item: ("generic_name", "PWNED"),
    SelectedProduct: ("extra", {"pwned": True}),
    NonSelectedProduct: ("extra", {"pwned": True}),
    Agreement: ("extra", {"pwned": True}),
    ImportRun: ("mapping", "PWNED"),
}

PERIOD = {"period_start": dt.date(2023, 11, 1), "period_end": dt.date(2024, 10, 31)}


def new_row_kwargs(model: type[Any], t: Tenants) -> dict[str, Any]:
    """Valid field values for one new row of ``model`` (accepted under the system scope)."""
    w = t.world
    return {
        Institution: {"code": "H46010800077", "name": "新医院", "region_code": "460108", "kind": "public", "level": 2},
        Department: {"institution": w.hn_inst, "code": "ZZ99", "name": "新科室"},
        Company: {"name": "新企业有限公司"},
        Product: {"code": "XNEW0001", "generic_name": "新药"},
        PriceList: {"code": "new-list", "name": "新目录"},
        PriceListEntry: {"price_list": t.price_list, "generic_name": "新药", "price": Decimal("1.00")},
        Batch: {
            "code": "HN-NEW",
            "name": "新批次",
            "level": "provincial",
            "policy_profile": "national",
            "region_code": "460000",
            "start_date": dt.date(2024, 1, 1),
        },
        Item: {"batch": w.hn_batch, "item_code": "Z99", "generic_name": "新药", "unit_label": "片", "winners": 1},
        SelectedProduct: {
            "batch": w.hn_batch,
            "product": w.product2,
            "item": w.hn_item,
            "winning_price": Decimal("1.00"),
            "company": w.company,
        },
        NonSelectedProduct: {"batch": w.hn_batch, "product": w.product, "item": w.hn_item, "kind": "same_generic"},
        Agreement: {
            "batch": w.hn_batch,
            "item": w.hn_item,
            "institution": w.hn_inst,
            "year": 2,
            "agreed_qty": Decimal(1),
            **PERIOD,
        },
        ImportRun: {
            "dataset": "institutions",
            "filename": "x.csv",
            "file_sha256": "1" * 64,
            "actor_name": "x",
            "scope_label": "x",
            "status": "applied",
        },
    }[model]


def snapshot(model: type[Any]) -> list[tuple[Any, ...]]:
    """Every row of ``model`` with every concrete field, read as the operator."""
    names = [f.attname for f in model._meta.concrete_fields]
    with system_scope("check"):
        return sorted(model.objects.order_by("pk").values_list(*names), key=repr)


READS: dict[str, Callable[[type[Any]], Any]] = {
    "list": lambda m: list(m.objects.all()),
    "iterate": lambda m: [o for o in m.objects.filter(pk__gt=0)],  # noqa: C416 - iteration is the point
    "len": lambda m: len(m.objects.all()),
    "bool": lambda m: bool(m.objects.all()),
    "count": lambda m: m.objects.count(),
    "exists": lambda m: m.objects.exists(),
    "get": lambda m: m.objects.get(pk=1),
    "first": lambda m: m.objects.first(),
    "last": lambda m: m.objects.last(),
    "iterator": lambda m: list(m.objects.iterator()),
    "aggregate": lambda m: m.objects.aggregate(n=Count("pk")),
    "values": lambda m: list(m.objects.values()),
    "values_list": lambda m: list(m.objects.values_list("pk", flat=True)),
    "in_bulk": lambda m: m.objects.in_bulk(),
    "slicing": lambda m: list(m.objects.all()[:2]),
    "index": lambda m: m.objects.order_by("pk")[0],
    "get_or_create": lambda m: m.objects.get_or_create(pk=1),
}


# --------------------------------------------------------------------------- no scope: fail closed


def refused(action: Callable[[], Any]) -> bool:
    """Whether ``action`` raised ScopeError when run with no active scope."""
    try:
        with use_scope(None):
            action()
    except ScopeError:
        return True
    return False


@pytest.mark.parametrize("operation", list(READS))
def test_reading_without_a_scope_raises(tenants: Tenants, operation: str) -> None:
    # Given rows of every tenant in every scoped model, and no active scope
    before = {m: snapshot(m) for m in SCOPED_MODELS}
    assert all(before.values()), "the fixture must hold rows of every model, or the test proves nothing"
    # When each model is read this way
    leaked = [m.__name__ for m in SCOPED_MODELS if not refused(lambda m=m: READS[operation](m))]
    # Then every model refuses instead of returning rows, and nothing changed
    assert leaked == []
    assert {m: snapshot(m) for m in SCOPED_MODELS} == before


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=MODEL_IDS)
def test_update_without_a_scope_raises_and_changes_nothing(tenants: Tenants, model: type[Any]) -> None:
    before = snapshot(model)
    field, value = UPDATE_FIELD[model]
    with use_scope(None), pytest.raises(ScopeError):
        model.objects.update(**{field: value})
    with use_scope(None), pytest.raises(ScopeError):
        model.objects.filter(pk__gt=0).update(**{field: value})
    assert snapshot(model) == before


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=MODEL_IDS)
def test_delete_without_a_scope_raises_and_deletes_nothing(tenants: Tenants, model: type[Any]) -> None:
    before = snapshot(model)
    with use_scope(None), pytest.raises(ScopeError):
        model.objects.all().delete()
    with system_scope("check"):
        one = model.objects.order_by("pk").first()
    with use_scope(None), pytest.raises(ScopeError):
        one.delete()
    assert snapshot(model) == before


CREATES: dict[str, Callable[[type[Any], dict[str, Any]], Any]] = {
    "create": lambda m, kw: m.objects.create(**kw),
    "save": lambda m, kw: m(**kw).save(),
    "bulk_create": lambda m, kw: m.objects.bulk_create([m(**kw)]),
    "get_or_create": lambda m, kw: m.objects.get_or_create(**kw),
}


@pytest.mark.parametrize("how", list(CREATES))
def test_creating_without_a_scope_raises(tenants: Tenants, how: str) -> None:
    # Given valid values for a new row of every scoped model, and no active scope
    kwargs = {m: new_row_kwargs(m, tenants) for m in SCOPED_MODELS}
    before = {m: snapshot(m) for m in SCOPED_MODELS}
    # When each row is created this way
    written = [m.__name__ for m in SCOPED_MODELS if not refused(lambda m=m: CREATES[how](m, kwargs[m]))]
    # Then every model refuses and nothing is written
    assert written == []
    assert {m: snapshot(m) for m in SCOPED_MODELS} == before
    # (control: the operator can create the same rows, so the missing scope alone was the reason)
    with system_scope("control"):
        for m in SCOPED_MODELS:
            CREATES[how](m, kwargs[m])
    assert all(len(snapshot(m)) == len(before[m]) + 1 for m in SCOPED_MODELS)


def test_saving_an_existing_row_without_a_scope_raises(tenants: Tenants) -> None:
    with system_scope("load"):
        dept = Department.objects.get(pk=tenants.hn_dept.pk)
    dept.name = "PWNED"
    with use_scope(None), pytest.raises(ScopeError):
        dept.save()
    with system_scope("check"):
        assert Department.objects.get(pk=dept.pk).name == "心内科"


# --------------------------------------------------------------------------- right and wrong tenant

MODEL_DATASET: dict[type[Any], str] = {
    Institution: "institutions",
    Department: "departments",
    Company: "companies",
    Product: "products",
    PriceListEntry: "prices",
    Batch: "batches",
    Item: "items",
    SelectedProduct: "selected",
    NonSelectedProduct: "non_selected",
    Agreement: "agreements",
}
VISIBILITY_CASES = [
    pytest.param(user, model, id=f"{user}-{model.__name__}")
    for user in VISIBLE
    for model, dataset in MODEL_DATASET.items()
    if dataset in VISIBLE[user]
]


def _all_pks(model: type[Any]) -> set[Any]:
    with system_scope("check"):
        return set(model.objects.values_list("pk", flat=True))


@pytest.mark.parametrize(("user", "model"), VISIBILITY_CASES)
def test_each_user_sees_exactly_its_tenants_rows(tenants: Tenants, user: str, model: type[Any]) -> None:
    # Given the expected rows of this user (written out by hand in conftest.VISIBLE)
    expected = {o.pk for o in tenants.visible(user, MODEL_DATASET[model])}
    hidden = _all_pks(model) - expected
    # When the user reads the model through its default manager
    with use_scope(tenants.scope(user)):
        seen = set(model.objects.values_list("pk", flat=True))
        count = model.objects.count()
        objects = {o.pk for o in model.objects.all()}
        # Then they see exactly their rows, and another tenant's row cannot be fetched by id
        for pk in hidden:
            with pytest.raises(model.DoesNotExist):
                model.objects.get(pk=pk)
            assert not model.objects.filter(pk=pk).exists()
    assert seen == expected
    assert objects == expected
    assert count == len(expected)


def test_price_lists_are_shared_reference_data(tenants: Tenants) -> None:
    for user in ("hn_admin", "sx_admin", "hn_vbp", "sx_vbp"):
        with use_scope(tenants.scope(user)):
            assert list(PriceList.objects.values_list("code", flat=True)) == ["gz-vbp"]


@pytest.mark.parametrize(
    ("user", "runs"),
    [
        ("hn_admin", {"run_hn", "run_hn2"}),
        ("sy_admin", {"run_hn2"}),
        ("sx_admin", {"run_sx"}),
        ("hn_vbp", {"run_hn"}),
        ("hn2_vbp", {"run_hn2"}),
        ("sx_vbp", {"run_sx"}),
    ],
)
def test_import_runs_are_scoped_to_the_tenant(tenants: Tenants, user: str, runs: set[str]) -> None:
    with use_scope(tenants.scope(user)):
        seen = set(ImportRun.objects.values_list("pk", flat=True))
    assert seen == {getattr(tenants, r).pk for r in runs}


def test_hospital_office_sees_only_its_institution_and_agreement(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_vbp")):
        institutions = list(Institution.objects.values_list("code", flat=True))
        agreements = list(Agreement.objects.values_list("institution__code", "agreed_qty"))
    assert institutions == ["H46010800001"]
    assert agreements == [("H46010800001", Decimal(10000))]


def test_other_province_bureau_sees_no_hainan_institution(tenants: Tenants) -> None:
    with use_scope(tenants.scope("sx_admin")):
        codes = list(Institution.objects.values_list("code", flat=True))
        hainan = Institution.objects.filter(region_code__startswith="46")
        assert not hainan.exists()
        assert hainan.count() == 0
    assert codes == ["H61011200123"]


def test_department_head_sees_only_its_department(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_head")):
        depts = list(Department.objects.values_list("institution__code", "code"))
        assert not Department.objects.filter(code="SJ01").exists()
        with pytest.raises(Department.DoesNotExist):
            Department.objects.get(pk=tenants.hn_dept2.pk)
    assert depts == [("H46010800001", "NK01")]


def test_city_bureau_sees_its_city_not_the_provincial_capital(tenants: Tenants) -> None:
    with use_scope(tenants.scope("sy_admin")):
        codes = set(Institution.objects.values_list("code", flat=True))
    assert "H46020000002" in codes
    assert "H46010800001" not in codes


def test_hospital_sees_rounds_of_its_region_and_the_regions_above(tenants: Tenants) -> None:
    # Given rounds at every level around 海南省人民医院 (region 460108, in 海口 460100, in 海南 460000)
    start = dt.date(2024, 1, 1)
    extra = {"HK-C1": "460100", "LH-D1": "460108", "SY-C1": "460200", "XA-C1": "610100"}
    with system_scope("setup"):
        for code, region in extra.items():
            Batch.objects.create(
                code=code, name=code, level="municipal", policy_profile="national", region_code=region, start_date=start
            )
    # When the hospital and the bureaus list rounds
    seen = {}
    for user in ("hn_vbp", "hn_admin", "sy_admin", "sx_vbp"):
        with use_scope(tenants.scope(user)):
            seen[user] = set(Batch.objects.values_list("code", flat=True))
    # Then the hospital sees its own region and the regions containing it, never a sibling city or Shaanxi
    assert seen["hn_vbp"] == {"HN-N7", "HK-C1", "LH-D1"}
    assert seen["hn_admin"] == {"HN-N7", "HK-C1", "LH-D1", "SY-C1"}
    assert seen["sy_admin"] == {"HN-N7", "SY-C1"}
    assert seen["sx_vbp"] == {"SX-N7", "XA-C1"}


def test_related_managers_follow_the_scope(tenants: Tenants) -> None:
    # The Sanya hospital can read the provincial round, but not the other hospital's agreements under it
    with use_scope(tenants.scope("hn2_vbp")):
        batch = Batch.objects.get(code="HN-N7")
        via_relation = list(batch.agreements.values_list("institution__code", flat=True))
        prefetched = [
            a.institution_id for b in Batch.objects.prefetch_related("agreements") for a in b.agreements.all()
        ]
    assert via_relation == ["H46020000002"]
    assert prefetched == [tenants.hn_inst2.pk]


# --------------------------------------------------------------------------- writes outside the territory


@pytest.mark.parametrize("target", ["sx_dept", "hn2_dept"])
def test_hospital_cannot_change_another_hospitals_department(tenants: Tenants, target: str) -> None:
    # Given another hospital's department, loaded by the operator
    with system_scope("load"):
        dept = Department.objects.get(pk=getattr(tenants, target).pk)
    before = snapshot(Department)
    # When the VBP office of 海南省人民医院 renames it, or deletes it
    dept.name = "PWNED"
    with use_scope(tenants.scope("hn_vbp")):
        with pytest.raises(ScopeError):
            dept.save()
        with pytest.raises(ScopeError):
            dept.delete()
    # Then nothing changed
    assert snapshot(Department) == before


def test_hospital_can_change_its_own_department(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_vbp")):
        dept = Department.objects.get(pk=tenants.hn_dept.pk)
        dept.name = "心血管内科"
        dept.save()
    with system_scope("check"):
        assert Department.objects.get(pk=tenants.hn_dept.pk).name == "心血管内科"


def test_bureau_cannot_move_an_institution_out_of_its_region(tenants: Tenants) -> None:
    before = snapshot(Institution)
    with use_scope(tenants.scope("hn_admin")):
        inst = Institution.objects.get(code="H46010800001")
        inst.region_code = "610112"
        with pytest.raises(ScopeError):
            inst.save()
    assert snapshot(Institution) == before


def test_bureau_can_change_an_institution_inside_its_region(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_admin")):
        inst = Institution.objects.get(code="H46020000002")
        inst.region_code = "460100"
        inst.save()
    with system_scope("check"):
        assert Institution.objects.get(code="H46020000002").region_code == "460100"


@pytest.mark.parametrize(
    ("user", "model", "attr"),
    [
        ("hn_viewer", Institution, "hn_inst"),  # read-only bureau role
        ("hn_analyst", Batch, "hn_batch"),  # read/export bureau role
        ("hn_vbp", Institution, "hn_inst"),  # hospitals do not edit their own master record
        ("hn_vbp", Batch, "hn_batch"),  # hospitals read rounds, they do not write them
        ("sy_admin", Batch, "hn_batch"),  # a city bureau reads the provincial round, it does not write it
        ("hn_head", Department, "hn_dept"),  # department heads read only
        ("hn_pharmacy", Department, "hn_dept"),
    ],
)
def test_roles_without_write_rights_cannot_save_rows_they_can_read(
    tenants: Tenants, user: str, model: type[Any], attr: str
) -> None:
    field, value = UPDATE_FIELD[model]
    before = snapshot(model)
    with use_scope(tenants.scope(user)):
        obj = model.objects.get(pk=getattr(tenants, attr).pk)  # readable ...
        setattr(obj, field, value)
        with pytest.raises(ScopeError):  # ... but not writable
            obj.save()
        with pytest.raises(ScopeError):
            obj.delete()
    assert snapshot(model) == before


@pytest.mark.parametrize("user", ["hn_vbp", "hn_admin"])
def test_bulk_create_outside_the_scope_raises_and_leaves_nothing(tenants: Tenants, user: str) -> None:
    before = snapshot(Department)
    rows = [
        Department(institution=tenants.hn_inst, code="OK01", name="本院科室"),
        Department(institution=tenants.sx_inst, code="XX01", name="外省科室"),
    ]
    with use_scope(tenants.scope(user)), pytest.raises(ScopeError):
        Department.objects.bulk_create(rows)
    assert snapshot(Department) == before


def test_create_of_a_department_in_another_hospital_raises(tenants: Tenants) -> None:
    before = snapshot(Department)
    with use_scope(tenants.scope("hn_vbp")), pytest.raises(ScopeError):
        Department.objects.create(institution=tenants.sx_inst, code="XX01", name="外省科室")
    assert snapshot(Department) == before


def test_bulk_upsert_cannot_overwrite_another_tenants_row(tenants: Tenants) -> None:
    before = snapshot(Department)
    row = Department(institution=tenants.sx_inst, code="NK01", name="PWNED")
    with use_scope(tenants.scope("hn_vbp")), pytest.raises(ScopeError):
        Department.objects.bulk_create(
            [row], update_conflicts=True, unique_fields=["institution", "code"], update_fields=["name"]
        )
    assert snapshot(Department) == before


def test_bulk_update_of_another_tenants_row_raises(tenants: Tenants) -> None:
    with system_scope("load"):
        other = Department.objects.get(pk=tenants.sx_dept.pk)
    other.name = "PWNED"
    before = snapshot(Department)
    with use_scope(tenants.scope("hn_admin")), pytest.raises(ScopeError):
        Department.objects.bulk_update([other], ["name"])
    assert snapshot(Department) == before


def test_bulk_update_inside_the_scope_is_allowed(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_admin")):
        depts = list(Department.objects.all())
        for d in depts:
            d.name = d.name + "（改）"
        assert Department.objects.bulk_update(depts, ["name"]) == 3
    with system_scope("check"):
        assert Department.objects.get(pk=tenants.sx_dept.pk).name == "心内科"


def test_queryset_update_inside_the_scope_touches_only_the_tenants_rows(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_admin")):
        changed = Department.objects.update(name="改名")
    assert changed == 3
    with system_scope("check"):
        assert Department.objects.get(pk=tenants.sx_dept.pk).name == "心内科"


# Known holes: a queryset ``update()``/``delete()`` is limited to the rows the scope may READ, and
# checks neither the WRITE territory nor the role's write permission (tenancy.py, ScopedQuerySet.update
# and .delete go through ``_guard`` → ``for_scope(scope)`` with the default Action.READ, and a manager
# queryset is already filtered for READ by ScopedManager.get_queryset).
BULK_WRITE_BUG = (
    "BUG: ScopedQuerySet.update()/delete() (jicai/core/tenancy.py) filter by the READ scope and never check "
    "the WRITE scope nor the role's write permission, so rows a user may only read can be changed in bulk"
)


@pytest.mark.parametrize(
    ("user", "model", "attr"),
    [
        ("hn_viewer", Institution, "hn_inst"),
        ("hn_vbp", Institution, "hn_inst"),
        ("hn_vbp", Batch, "hn_batch"),
        ("sy_admin", Batch, "hn_batch"),
        ("hn_head", Department, "hn_dept"),
        ("hn_pharmacy", Agreement, "hn_agreement"),
    ],
)
def test_queryset_update_is_refused_on_rows_the_user_may_only_read(
    tenants: Tenants, user: str, model: type[Any], attr: str
) -> None:
    # Given a row the user can read but may not write (save() on the same row raises, see above)
    field, value = UPDATE_FIELD[model]
    before = snapshot(model)
    # When the user updates it through a queryset (refusing or matching no row are both fine)
    with use_scope(tenants.scope(user)), contextlib.suppress(ScopeError):
        model.objects.filter(pk=getattr(tenants, attr).pk).update(**{field: value})
    # Then the row is unchanged
    assert snapshot(model) == before


@pytest.mark.parametrize("user", ["hn_vbp", "sy_admin", "hn_viewer"])
def test_queryset_delete_is_refused_on_rows_the_user_may_only_read(tenants: Tenants, user: str) -> None:
    # Given a provincial round without dependants (so nothing PROTECTs it), readable by the user
    with system_scope("setup"):
        Batch.objects.create(
            code="HN-TMP",
            name="临时批次",
            level="provincial",
            policy_profile="national",
            region_code="460000",
            start_date=dt.date(2024, 1, 1),
        )
    before = snapshot(Batch)
    with use_scope(tenants.scope(user)):
        assert Batch.objects.filter(code="HN-TMP").exists()
        with pytest.raises(ScopeError):  # the instance path refuses ...
            Batch.objects.get(code="HN-TMP").delete()
        with contextlib.suppress(ScopeError):  # ... and so must the queryset path (raise, or delete nothing)
            Batch.objects.filter(code="HN-TMP").delete()
    assert snapshot(Batch) == before


# --------------------------------------------------------------------------- querysets built outside a scope

MODULE_QS = Institution.objects.all()  # built at import time, when no scope is active


def test_queryset_built_without_a_scope_is_filtered_when_evaluated_in_one(tenants: Tenants) -> None:
    qs = Institution.objects.all()
    with use_scope(tenants.scope("hn_vbp")):
        assert [i.code for i in qs.all()] == ["H46010800001"]
        assert qs.count() == 1
        assert list(qs.filter(kind="public").values_list("code", flat=True)) == ["H46010800001"]
    with use_scope(tenants.scope("sx_admin")):
        assert [i.code for i in qs.all()] == ["H61011200123"]
        assert qs.count() == 1
        assert qs.exists()
    with use_scope(None), pytest.raises(ScopeError):
        list(qs.all())


def test_module_level_queryset_evaluated_in_a_scope_is_filtered(tenants: Tenants) -> None:
    with use_scope(tenants.scope("hn_vbp")):
        assert [i.code for i in MODULE_QS.all()] == ["H46010800001"]
        assert MODULE_QS.count() == 1


def test_shared_unscoped_queryset_does_not_leak_the_first_tenants_rows(tenants: Tenants) -> None:
    shared = Institution.objects.all()  # e.g. a class attribute of a view or form
    with use_scope(tenants.scope("hn_vbp")):
        assert [i.code for i in shared] == ["H46010800001"]
    with use_scope(tenants.scope("sx_admin")):
        assert [i.code for i in shared] == ["H61011200123"]
    with use_scope(None), pytest.raises(ScopeError):
        list(shared)


def test_lookups_across_relations_do_not_reveal_other_tenants_rows(tenants: Tenants) -> None:
    # Given 三亚市人民医院's office, which may read the provincial round HN-N7 but not 海南省人民医院's agreement
    with use_scope(tenants.scope("hn2_vbp")):
        assert not Agreement.objects.filter(institution__code="H46010800001").exists()
        # When it filters the round by the other hospital's agreement, Then it learns nothing
        # (the lookup is refused outright: a reverse join into another tenant model fails closed)
        with pytest.raises(ScopeError):
            Batch.objects.filter(agreements__institution__code="H46010800001", agreements__agreed_qty=10000)
        with pytest.raises(ScopeError):
            Batch.objects.annotate(n=Count("agreements"))
        with pytest.raises(ScopeError):
            Batch.objects.filter(Q(agreements__agreed_qty__gt=0))


def test_raw_queries_on_the_guarded_manager_fail_closed(tenants: Tenants) -> None:
    table = Institution._meta.db_table
    with use_scope(None), pytest.raises(ScopeError):
        list(Institution.objects.raw(f"SELECT * FROM {table}"))


# --------------------------------------------------------------------------- property: region prefixes

REGIONS = ["460000", "460100", "460105", "460108", "460200", "469001", "610000", "610100", "610112", "620100"]


@pytest.mark.parametrize(
    ("code", "prefix"),
    [("460000", "46"), ("460100", "4601"), ("460108", "460108"), ("610000", "61"), ("469001", "469001")],
)
def test_region_prefix_examples(code: str, prefix: str) -> None:
    assert region_prefix(code) == prefix


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    assignment=st.lists(st.sampled_from(REGIONS), min_size=1, max_size=8),
    viewer_region=st.sampled_from(REGIONS),
)
def test_region_and_hospital_visibility_property(db: Any, assignment: list[str], viewer_region: str) -> None:
    # Given institutions placed at random in a few provinces and cities
    with transaction.atomic():
        with system_scope("property"):
            insts = [
                Institution.objects.create(
                    code=f"H{region}{n:05d}", name=f"医院{n}", region_code=region, kind="public", level=2
                )
                for n, region in enumerate(assignment)
            ]
            for inst in insts:
                Department.objects.create(institution=inst, code="NK01", name="心内科")
        # When a bureau user of a random region lists institutions and departments
        bureau = User(username="p", role="bureau_viewer", region_code=viewer_region)
        with use_scope(bureau.scope()):
            seen = set(Institution.objects.values_list("code", flat=True))
            seen_depts = set(Department.objects.values_list("institution__code", flat=True))
        # Then it sees exactly those whose region code starts with its region prefix
        expected = {i.code for i in insts if i.region_code.startswith(region_prefix(viewer_region))}
        assert seen == expected
        assert seen_depts == expected
        # And each hospital user sees exactly its own institution
        for inst in insts:
            hospital = User(username="h", role="vbp_office", institution=inst)
            with use_scope(hospital.scope()):
                assert list(Institution.objects.values_list("code", flat=True)) == [inst.code]
                assert list(Department.objects.values_list("institution__code", flat=True)) == [inst.code]
        transaction.set_rollback(True)
