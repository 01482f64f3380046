"""The CLI acts as ``--as USERNAME`` within that user's territory, or as the unrestricted operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jicai.accounts.models import User
from tests.conftest import csv_bytes

from .conftest import TENANT_DATASETS, VISIBLE, Tenants
from .helpers import IMPORT_ROWS, csv_keys, expected_keys, imported, snapshot_all


def export(dataset: str, tmp_path: Path, **options: Any) -> bytes:
    out = tmp_path / f"{dataset}.csv"
    call_command("export", dataset, output=str(out), quiet=True, **options)
    return out.read_bytes()


def write_csv(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(csv_bytes(text))
    return path


EXPORT_CASES = [
    pytest.param(user, dataset, id=f"{user}-{dataset}")
    for user in VISIBLE
    if user != "hn_head"  # department heads may not export (see test_department_head_cannot_export)
    for dataset in TENANT_DATASETS
]


def test_hospital_office_exports_only_its_own_institution(tenants: Tenants, tmp_path: Path) -> None:
    data = export("institutions", tmp_path, as_user="hn_vbp")
    assert csv_keys("institutions", data) == {("H46010800001",)}
    assert "H46020000002" not in data.decode("utf-8-sig")
    assert "H61011200123" not in data.decode("utf-8-sig")


@pytest.mark.parametrize(("user", "dataset"), EXPORT_CASES)
def test_cli_export_as_a_user_holds_exactly_its_tenants_rows(
    tenants: Tenants, tmp_path: Path, user: str, dataset: str
) -> None:
    assert csv_keys(dataset, export(dataset, tmp_path, as_user=user)) == expected_keys(tenants, user, dataset)


def test_cli_export_to_standard_output_is_scoped_too(tenants: Tenants, capsysbinary: Any) -> None:
    call_command("export", "agreements", as_user="sx_vbp")
    out = capsysbinary.readouterr().out
    assert csv_keys("agreements", out) == expected_keys(tenants, "sx_vbp", "agreements")


def test_cli_without_as_acts_as_the_operator(tenants: Tenants, tmp_path: Path) -> None:
    codes = {k[0] for k in csv_keys("institutions", export("institutions", tmp_path))}
    assert codes == {"H46010800001", "H46020000002", "H61011200123"}


def test_department_head_cannot_export(tenants: Tenants, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as exc:
        export("departments", tmp_path, as_user="hn_head")
    assert exc.value.returncode == 1


def test_other_province_importing_a_hainan_institution_is_rejected(tenants: Tenants, tmp_path: Path) -> None:
    # Given the Shaanxi bureau and a file with a Hainan institution (region 460108)
    path = write_csv(tmp_path, "code,name,region_code,kind,level\nH46010800009,海口新医院,460108,public,2")
    before = snapshot_all()
    # When it imports the file
    with pytest.raises(SystemExit) as exc:
        call_command("import", "institutions", str(path), as_user="sx_admin", quiet=True)
    # Then the command exits 1 and nothing changed
    assert exc.value.code == 1
    assert snapshot_all() == before


@pytest.mark.parametrize("dataset", TENANT_DATASETS)
def test_other_province_cannot_import_hainan_rows_of_any_dataset(
    tenants: Tenants, tmp_path: Path, dataset: str
) -> None:
    path = write_csv(tmp_path, IMPORT_ROWS[dataset][0])
    before = snapshot_all()
    with pytest.raises(SystemExit) as exc:
        call_command("import", dataset, str(path), as_user="sx_admin", quiet=True)
    assert exc.value.code == 1
    assert not imported(dataset)
    assert snapshot_all() == before


@pytest.mark.parametrize("dataset", TENANT_DATASETS)
def test_right_tenant_imports_through_the_cli(tenants: Tenants, tmp_path: Path, dataset: str) -> None:
    path = write_csv(tmp_path, IMPORT_ROWS[dataset][0])
    call_command("import", dataset, str(path), as_user="hn_admin", quiet=True)  # exit 0: no SystemExit
    assert imported(dataset)


def test_other_province_cannot_overwrite_a_hainan_institution_by_its_code(tenants: Tenants, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "code,name,region_code,kind,level\nH46010800001,PWNED,610112,public,3")
    before = snapshot_all()
    with pytest.raises(SystemExit) as exc:
        call_command("import", "institutions", str(path), as_user="sx_admin", quiet=True)
    assert exc.value.code == 1
    assert snapshot_all() == before


def test_other_hospital_cannot_import_departments_of_a_hospital(tenants: Tenants, tmp_path: Path) -> None:
    path = write_csv(tmp_path, IMPORT_ROWS["departments"][0])  # rows of 海南省人民医院
    before = snapshot_all()
    with pytest.raises(SystemExit) as exc:
        call_command("import", "departments", str(path), as_user="hn2_vbp", quiet=True)
    assert exc.value.code == 1
    assert snapshot_all() == before


@pytest.mark.parametrize("user", ["hn_vbp", "hn_it"])
def test_hospital_imports_its_own_departments_through_the_cli(tenants: Tenants, tmp_path: Path, user: str) -> None:
    path = write_csv(tmp_path, IMPORT_ROWS["departments"][0])
    call_command("import", "departments", str(path), as_user=user, quiet=True)
    assert imported("departments")


@pytest.mark.parametrize("dataset", ["agreements", "institutions"])
@pytest.mark.parametrize("user", ["hn_vbp", "hn_pharmacy", "hn_it", "hn_head"])
def test_hospital_roles_get_a_permission_error_importing_agreements(
    tenants: Tenants, tmp_path: Path, user: str, dataset: str
) -> None:
    path = write_csv(tmp_path, IMPORT_ROWS[dataset][0])
    before = snapshot_all()
    with pytest.raises(CommandError) as exc:
        call_command("import", dataset, str(path), as_user=user, quiet=True)
    assert exc.value.returncode == 1
    assert "not allowed" in str(exc.value)
    assert snapshot_all() == before


@pytest.mark.parametrize("command", ["import", "export"])
def test_unknown_dataset_is_a_usage_error(tenants: Tenants, tmp_path: Path, command: str) -> None:
    path = write_csv(tmp_path, "a,b\n1,2")
    args = ["nosuch", str(path)] if command == "import" else ["nosuch"]
    with pytest.raises(CommandError) as exc:
        call_command(command, *args, as_user="hn_admin")
    assert exc.value.returncode == 2


@pytest.mark.parametrize("command", ["import", "export"])
def test_unknown_or_inactive_acting_user_is_a_usage_error(tenants: Tenants, tmp_path: Path, command: str) -> None:
    User.objects.filter(username="hn_vbp").update(is_active=False)
    path = write_csv(tmp_path, IMPORT_ROWS["departments"][0])
    args = ["departments", str(path)] if command == "import" else ["departments"]
    before = snapshot_all()
    for username in ("nobody", "hn_vbp"):
        with pytest.raises(CommandError) as exc:
            call_command(command, *args, as_user=username, quiet=True)
        assert exc.value.returncode == 2, username
    assert snapshot_all() == before


def test_missing_file_is_a_usage_error(tenants: Tenants, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as exc:
        call_command("import", "institutions", str(tmp_path / "absent.csv"), as_user="hn_admin")
    assert exc.value.returncode == 2
