"""Policy profiles: validation, layering by level and date, provenance, user directories."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jicai.policy.profile import (
    SETTINGS,
    DaysAfterAcceptance,
    EndOfNextMonth,
    ProfileError,
    ProfileLibrary,
    load_profile,
    parse_profile,
    to_plain,
)

SHIPPED = ("national", "xian", "jilin", "chongqing", "shanxi", "xinjiang", "henan")


def _setting(value: Any, source: str = "test source; R-E2", confirmed: bool = True) -> dict[str, Any]:
    return {"value": value, "source": source, "confirmed": confirmed}


def _profile(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "demo",
        "level": "province",
        "parent": "national",
        "region_code": "460000",
        "versions": [
            {
                "effective_from": "2024-01-01",
                "prepayment": {"tranches": _setting([{"share": "0.4", "trigger": "start"}])},
            }
        ],
    }
    data.update(over)
    return data


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_profile_loads_and_resolves_to_its_chain() -> None:
    lib = ProfileLibrary()
    assert set(SHIPPED) <= set(lib.profiles())
    assert lib.errors == {}
    for name in SHIPPED:
        resolved = lib.resolve(name, dt.date(2025, 1, 1))
        assert resolved.chain[0] == "national"
        assert resolved.chain[-1] == name


def test_every_shipped_value_names_its_source() -> None:
    for profile in ProfileLibrary().profiles().values():
        for version in profile.versions:
            for key, setting in version.settings.items():
                assert key in SETTINGS
                assert setting.source.strip(), f"{profile.name}:{key} has no source"


def test_national_sets_every_setting_so_every_region_resolves_completely() -> None:
    lib = ProfileLibrary()
    for name in SHIPPED:
        resolved = lib.resolve(name, dt.date(2025, 1, 1))
        assert set(resolved.values) == set(SETTINGS), name


def test_regional_numbers_come_from_the_seeds() -> None:
    lib = ProfileLibrary()
    on = dt.date(2025, 1, 1)
    jilin = lib.resolve("jilin", on).get("prepayment.tranches")
    assert [(t.share, t.trigger) for t in jilin] == [
        (Decimal("0.50"), "start"),
        (Decimal("0.45"), "any_of(period_share(0.5), volume_share(0.5))"),
        (Decimal("0.05"), "completion"),
    ]
    xian = lib.resolve("xian", on).get("prepayment.tranches")
    assert [t.share for t in xian] == [Decimal("0.50"), Decimal("0.40"), Decimal(0)]
    assert lib.resolve("chongqing", on).get("agreement.ratio_range").min == Decimal("0.60")
    assert lib.resolve("shanxi", on).get("agreement.ratio_range").max == Decimal("0.80")
    assert lib.resolve("henan", on).get("supplier_payment.rule") == DaysAfterAcceptance(
        kind="days_after_acceptance", days=30
    )
    assert lib.resolve("shanxi", on).get("supplier_payment.rule") == EndOfNextMonth(kind="end_of_next_month")
    split = lib.resolve("xinjiang", on).get("surplus.internal_split")
    assert (split.prescribers, split.pharmacy, split.institution) == (Decimal("0.60"), Decimal("0.30"), Decimal("0.10"))


def test_versions_apply_from_their_effective_date() -> None:
    lib = ProfileLibrary()
    before = lib.resolve("national", dt.date(2024, 4, 30))
    after = lib.resolve("national", dt.date(2024, 5, 1))
    assert before.get("award.max_winners")[4] == 4  # batch 9: 5 bidders → 4 winners
    assert after.get("award.max_winners")[4] == 3  # batch 10: 5 bidders → 3 winners
    assert before.get("award.qualification").cut_vs_max_valid == Decimal("0.50")
    assert after.get("award.qualification").cut_vs_max_valid is None
    assert after.values["award.max_winners"].effective_from == dt.date(2024, 5, 1)
    # a version set in 2019 still applies where the later version is silent
    assert after.values["prepayment.tranches"].effective_from == dt.date(2019, 1, 1)


def test_explain_records_the_layer_that_set_each_value() -> None:
    resolved = ProfileLibrary().resolve("jilin", dt.date(2025, 1, 1))
    trail = dict(resolved.explain())
    assert trail["prepayment.tranches"].layer == "jilin"
    assert trail["supplier_payment.rule"].layer == "national"
    assert trail["price_ratio.content_factor"].confirmed is False


def test_a_layer_with_no_version_yet_in_force_is_skipped() -> None:
    resolved = ProfileLibrary().resolve("jilin", dt.date(2019, 6, 1))
    assert resolved.values["prepayment.tranches"].layer == "national"
    before_everything = ProfileLibrary().resolve("jilin", dt.date(2018, 1, 1))
    with pytest.raises(KeyError, match="is not set"):
        before_everything.get("prepayment.tranches")


def test_native_toml_dates_are_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "natdate", 'name = "natdate"\nlevel = "national"\n[[versions]]\neffective_from = 2020-01-01\n'
    )
    assert load_profile(path).versions[0].effective_from == dt.date(2020, 1, 1)


def test_user_profiles_layer_below_shipped_ones_down_to_an_institution(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "haikou",
        """
name = "haikou"
label = "海口市"
level = "city"
parent = "hainan"
region_code = "460100"
[[versions]]
effective_from = "2024-01-01"
[versions.supplier_payment.rule]
value = {kind = "days_after_acceptance", days = 45}
source = "海口市文件; R-E1"
confirmed = false
""",
    )
    _write(
        tmp_path,
        "hainan",
        """
name = "hainan"
level = "province"
parent = "national"
region_code = "460000"
[[versions]]
effective_from = "2023-01-01"
[versions.prepayment.tranches]
value = [{share = "0.5", trigger = "start"}, {share = "0", trigger = "clearing"}]
source = "海南省文件; R-E2"
confirmed = true
""",
    )
    _write(
        tmp_path,
        "h46010600001",
        """
name = "h46010600001"
level = "institution"
parent = "haikou"
institution_code = "H46010600001"
[[versions]]
effective_from = "2024-06-01"
[versions.department_targets.granularity]
value = "quarter"
source = "院内决定; R-H3"
confirmed = true
""",
    )
    lib = ProfileLibrary([tmp_path])
    resolved = lib.resolve("h46010600001", dt.date(2024, 7, 1))
    assert resolved.chain == ("national", "hainan", "haikou", "h46010600001")
    assert resolved.get("department_targets.granularity") == "quarter"
    assert resolved.get("supplier_payment.rule").days == 45
    assert resolved.values["prepayment.tranches"].layer == "hainan"
    assert resolved.get_or("no.such", "fallback") == "fallback"
    with pytest.raises(KeyError, match="unknown setting"):
        resolved.get("no.such")


def test_a_user_file_overrides_a_shipped_profile_of_the_same_name(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "jicai/policy/profiles/jilin.toml").read_text(encoding="utf-8")
    _write(tmp_path, "jilin", text.replace('label = "吉林省"', 'label = "吉林省（本地）"'))
    assert ProfileLibrary([tmp_path]).get("jilin").label == "吉林省（本地）"


def test_invalid_files_are_reported_not_loaded(tmp_path: Path) -> None:
    _write(tmp_path, "broken", "name = 'broken'\nlevel = [")
    _write(tmp_path, "wrongname", 'name = "other"\nlevel = "national"\n[[versions]]\neffective_from = "2020-01-01"\n')
    lib = ProfileLibrary([tmp_path, tmp_path / "absent"])
    assert "broken" not in lib.profiles()
    assert any("not valid TOML" in str(e) for e in lib.errors.values())
    assert any("must match the file name" in str(e) for e in lib.errors.values())
    with pytest.raises(ProfileError, match="unknown profile"):
        lib.get("nope")


def test_unreadable_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Bad Name"}, "name: required"),
        ({"level": "county"}, "level: one of"),
        ({"level": "national"}, "a national profile has no parent"),
        ({"parent": None}, "parent: required"),
        ({"region_code": "46"}, "region_code"),
        ({"level": "institution", "institution_code": "X1"}, "institution_code"),
        ({"versions": []}, "at least one [[versions]]"),
        ({"versions": ["x"]}, "expected a table"),
        ({"versions": [{"effective_from": "2024-13-01"}]}, "expected a date"),
        ({"versions": [{"effective_from": 20240101}]}, "expected a date"),
        ({"versions": [{"effective_from": "2024-01-01"}, {"effective_from": "2024-01-01"}]}, "share an effective_from"),
        ({"versions": [{"effective_from": "2024-01-01", "prepayment": 3}]}, "expected a table of settings"),
        ({"versions": [{"effective_from": "2024-01-01", "prepayment": {"bogus": _setting(1)}}]}, "unknown setting"),
        (
            {"versions": [{"effective_from": "2024-01-01", "prepayment": {"tranches": 5}}]},
            "expected a table with value",
        ),
        (
            {"versions": [{"effective_from": "2024-01-01", "prepayment": {"tranches": {**_setting([]), "note": 1}}}]},
            "unexpected field",
        ),
        (
            {"versions": [{"effective_from": "2024-01-01", "prepayment": {"tranches": _setting([], source=" ")}}]},
            "must name its source",
        ),
        (
            {"versions": [{"effective_from": "2024-01-01", "prepayment": {"tranches": {"value": [], "source": "s"}}}]},
            "confirmed: must be true or false",
        ),
        (
            {
                "versions": [
                    {
                        "effective_from": "2024-01-01",
                        "prepayment": {"tranches": _setting([{"share": "0.5", "trigger": "soon"}])},
                    }
                ]
            },
            "trigger",
        ),
        (
            {
                "versions": [
                    {
                        "effective_from": "2024-01-01",
                        "prepayment": {
                            "tranches": _setting(
                                [{"share": "0.7", "trigger": "start"}, {"share": "0.7", "trigger": "completion"}]
                            )
                        },
                    }
                ]
            },
            "tranches",
        ),
        ({"extra_key": 1}, "unknown top-level key"),
    ],
)
def test_validation_names_each_problem_and_where(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(_profile(**change), "user.toml")
    assert any(message in p for p in info.value.problems), info.value.problems
    assert str(info.value).startswith("user.toml: ")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "agreement.share_by_winners",
            [{"min_winners": 3, "max_winners": 2, "share": "0.5", "term_years": 1}],
            "below",
        ),
        ("agreement.ratio_range", {"min": "0.8", "max": "0.5"}, "below"),
        ("surplus.internal_split", {"prescribers": "0.6", "pharmacy": "0.3", "institution": "0.2"}, "sum to 1"),
        ("supplier_payment.rule", {"kind": "whenever"}, "kind"),
        ("award.max_winners", [1, 2, 3], "at least 16"),
    ],
)
def test_typed_values_are_checked(key: str, value: Any, message: str) -> None:
    section, name = key.split(".")
    data = _profile(versions=[{"effective_from": "2024-01-01", section: {name: _setting(value)}}])
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    assert any(message in p for p in info.value.problems), info.value.problems


def _stub(name: str, level: str, parent: str, region: str) -> str:
    head = f'name = "{name}"\nlevel = "{level}"\nparent = "{parent}"\nregion_code = "{region}"\n'
    return head + '[[versions]]\neffective_from = "2020-01-01"\n'


def test_chain_rules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "loop_a",
        _stub("loop_a", "city", "loop_b", "460100"),
    )
    _write(
        tmp_path,
        "loop_b",
        _stub("loop_b", "province", "loop_a", "460000"),
    )
    _write(
        tmp_path,
        "upside",
        _stub("upside", "province", "xian", "610000"),
    )
    _write(
        tmp_path,
        "orphan_root",
        _stub("orphan_root", "city", "loop_b", "460100"),
    )
    lib = ProfileLibrary([tmp_path])
    with pytest.raises(ProfileError, match="parent loop"):
        lib.chain("loop_a")
    with pytest.raises(ProfileError, match="cannot sit below"):
        lib.chain("upside")
    lib.profiles()["rogue"] = lib.get("loop_b").__class__(
        name="rogue",
        label="",
        level=lib.get("loop_b").level,
        parent=None,
        region_code="460000",
        institution_code="",
        versions=(),
        path="x",
    )
    with pytest.raises(ProfileError, match="must start at a national profile"):
        lib.chain("rogue")


def test_to_plain_makes_json_friendly_values() -> None:
    resolved = ProfileLibrary().resolve("jilin", dt.date(2025, 1, 1))
    plain = to_plain(resolved.get("prepayment.tranches"))
    assert plain[0] == {"share": "0.50", "trigger": "start"}
    assert to_plain({"a": (Decimal("1.5"), 2)}) == {"a": ["1.5", 2]}
