"""`jicai policy list | show | check | settings` as a user runs them."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("policy", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_list_shows_every_shipped_profile_with_its_versions() -> None:
    out, err = run("list")
    for name in ("national", "xian", "jilin", "chongqing", "shanxi", "xinjiang", "henan"):
        assert name in out
    assert "2019-01-01, 2024-05-01" in out
    assert err == ""


def test_show_explain_names_layer_version_and_source() -> None:
    out, _ = run("show", "jilin", "--as-of", "2025-01-01", "--explain")
    assert "national → jilin" in out
    assert "set by jilin (2019-12-01), confirmed: JL 三(五)" in out
    assert "UNCONFIRMED" in out  # the price-ratio coefficients


def test_show_json_is_machine_readable() -> None:
    out, _ = run("show", "henan", "--as-of", "2025-01-01", "--format", "json", "--explain")
    data = json.loads(out)
    assert data["chain"] == ["national", "henan"]
    rule = data["values"]["supplier_payment.rule"]
    assert rule["value"] == {"kind": "days_after_acceptance", "days": 30}
    assert rule["layer"] == "henan"
    plain = json.loads(run("show", "xian", "--format", "json")[0])
    assert plain["values"]["prepayment.tranches"][1] == {"share": "0.40", "trigger": "volume_share(0.5)"}


def test_show_unknown_profile_or_bad_date_is_a_usage_error() -> None:
    with pytest.raises(CommandError) as info:
        run("show", "atlantis")
    assert info.value.returncode == 2
    with pytest.raises(CommandError):
        run("show", "jilin", "--as-of", "yesterday")


def test_user_profiles_in_jicai_home_are_listed_and_resolved(settings: Any, tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "hainan.toml").write_text(
        'name = "hainan"\nlevel = "province"\nparent = "national"\nregion_code = "460000"\n'
        '[[versions]]\neffective_from = "2023-01-01"\n'
        '[versions.supplier_payment.rule]\nvalue = {kind = "days_after_acceptance", days = 60}\n'
        'source = "琼医保〔2023〕示例; R-E1"\nconfirmed = false\n',
        encoding="utf-8",
    )
    (tmp_path / "profiles" / "broken.toml").write_text("name = 'broken'\nlevel = [", encoding="utf-8")
    settings.JICAI_HOME = tmp_path
    out, err = run("list")
    assert "hainan" in out
    assert "invalid profile" in err
    data = json.loads(run("show", "hainan", "--format", "json", "--as-of", "2024-01-01")[0])
    assert data["values"]["supplier_payment.rule"]["days"] == 60


def test_check_reports_each_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text(
        'name = "mine"\nlevel = "city"\nparent = "national"\nregion_code = "4601"\n'
        '[[versions]]\neffective_from = "2024-01-01"\n'
        "[versions.prepayment.tranches]\n"
        'value = [{share = "0.6", trigger = "start"}, {share = "0.6", trigger = "completion"}]\n'
        'source = "x"\nconfirmed = true\n',
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as info:
        run("check", str(bad))
    assert info.value.code == 1


def test_check_accepts_a_good_file_and_checks_its_chain(tmp_path: Path) -> None:
    good = tmp_path / "haikou.toml"
    good.write_text(
        'name = "haikou"\nlevel = "city"\nparent = "jilin"\nregion_code = "460100"\n'
        '[[versions]]\neffective_from = "2024-01-01"\n',
        encoding="utf-8",
    )
    out, _ = run("check", str(good))
    assert "valid" in out
    orphan = tmp_path / "orphan.toml"
    orphan.write_text(
        'name = "orphan"\nlevel = "city"\nparent = "nowhere"\nregion_code = "460100"\n'
        '[[versions]]\neffective_from = "2024-01-01"\n',
        encoding="utf-8",
    )
    with pytest.raises(SystemExit):
        run("check", str(orphan))
    broken = tmp_path / "broken.toml"
    broken.write_text("level = [", encoding="utf-8")
    with pytest.raises(SystemExit):
        run("check", str(broken))


def test_settings_lists_the_vocabulary() -> None:
    out, _ = run("settings")
    assert "prepayment.tranches" in out
    assert "(R-E2)" in out
