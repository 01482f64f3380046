"""A small fact store for the daily screens: the security matrix's four hospitals in two provinces.

``web_home`` is written once per module through the importer and the monthly cycle (as of
``AS_OF``, 2023-04-30), with the database rows rolled back; ``site`` rebuilds those rows for each
test (the shared ``world`` plus the 铜川 hospital, city bureaus, one alert per hospital and a fired
prepayment tranche of 海南省人民医院) and points ``JICAI_HOME`` at the store.

What the numbers are (``tests/security/facts_fixtures.py``): every hospital bought 1,000 + 500 of
its round's selected product (lines L1, L2), 300 of a product that is a substitute in HN-N7 and a
non-selected same-generic product in SX-N7 (L3), and 50 of a product in no round (L4); only L1 was
paid. Agreed quantities: 海南省人民医院 (HK) 10,000, 三亚 (SY) 5,000, 西安 (XA) 20,000, 铜川 (TC) 8,000.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import Client, override_settings

from jicai.core.tenancy import system_scope
from jicai.monitoring.dashboard import CACHE, RESULTS, STORED
from tests.security import facts_fixtures as ff

AS_OF = ff.AS_OF
HK, SY, XA, TC = ff.HK, ff.SY, ff.XA, ff.TC
ITEM = ("HN-N7", "A01")


@pytest.fixture(scope="module")
def web_home(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, django_db_blocker: Any) -> Path:
    home = tmp_path_factory.mktemp("web_home")
    with django_db_blocker.unblock(), override_settings(JICAI_HOME=home), transaction.atomic():
        try:
            with system_scope("web-seed"):
                ff.build_world()
            problems = ff.import_facts(home)
        finally:
            transaction.set_rollback(True)
    assert not problems, problems
    return home


@pytest.fixture(scope="module")
def live_home(web_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same facts without the cycle's stored results: the screens compute them live."""
    home = tmp_path_factory.mktemp("live_home") / "home"
    shutil.copytree(web_home, home)
    shutil.rmtree(home / "results")
    return home


@pytest.fixture(autouse=True)
def _fresh_caches(settings: Any) -> Iterator[None]:
    CACHE.clear()
    RESULTS.clear()
    STORED.clear()
    yield
    CACHE.clear()
    RESULTS.clear()
    STORED.clear()
    shutil.rmtree(Path(settings.JICAI_HOME) / "results" / "ondemand", ignore_errors=True)  # Dashboard.shared


def add_tranche_alert() -> Any:
    from jicai.monitoring.models import Alert

    return Alert.objects.create(
        key=f"tranche:HN-N7:{HK}:1:1:2023-04-10",
        kind="tranche_fired",
        severity="info",
        institution_code=HK,
        region_code="460108",
        batch_code="HN-N7",
        message_zh="海南省人民医院 第1笔预付款应予拨付",
        message_en="tranche 1 is due",
        data={"year": 1, "tranche": 1, "trigger": "start", "fired_on": "2023-04-10", "amount": "7140.00"},
        first_seen=AS_OF,
        last_seen=AS_OF,
    )


@pytest.fixture
def site(world: Any, settings: Any, _jicai_home: None, web_home: Path) -> Any:
    with system_scope("web"):
        for name, row in ff.add_programme(world).items():
            setattr(world, name, row)
        ff.add_users(world)
        ff.add_alerts()
        world.tranche_alert = add_tranche_alert()
    settings.JICAI_HOME = web_home
    return world


def client_for(site: Any, user: str) -> Client:
    client = Client()
    client.force_login(site.user(user))
    return client


def as_of_date() -> dt.date:
    return AS_OF
