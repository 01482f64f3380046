"""Resources of the supply registers and the grants proposed for each role (R-I1–I4).

The lead merges ``GRANTS`` into ``jicai.accounts.permissions.ROLE_PERMISSIONS`` (with the role's level
as prefix: ``region:`` for bureau roles, ``institution:`` for hospital roles). Until then the tests
patch them in (tests/supply/conftest.py). Verbs:

* ``read`` / ``export`` — see the register and download it;
* ``write`` — record and edit: a hospital for its own institution, a bureau anywhere in its region;
* ``import`` — load a CSV/XLSX file into the register (all-or-nothing);
* ``approve`` — decide on a supply incident: confirm, close or reject it (the bureau's call, R-I2);
* ``manage`` — derive the credit file's events from the purchase facts (a bureau-wide recomputation).
"""

from __future__ import annotations

SUPPLY_INCIDENT = "supply_incident"
CREDIT = "credit"
SANCTION = "sanction"
SUPPLY_REPORT = "supply_report"

RESOURCES = (SUPPLY_INCIDENT, CREDIT, SANCTION, SUPPLY_REPORT)

_READ = ("read", "export")
_ENTER = ("read", "write", "import", "export")

GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    # The bureau administrator decides: confirms, closes or rejects incidents, records region-wide
    # incidents and sanctions (JL 三(八), CQ 二(六)), derives the credit file, enters manufacturers'
    # supply reports on their behalf (SX 五(二)).
    "bureau_admin": {
        SUPPLY_INCIDENT: (*_ENTER, "approve"),
        CREDIT: (*_ENTER, "manage"),
        SANCTION: _ENTER,
        SUPPLY_REPORT: _ENTER,
    },
    # The analyst keeps the data: manual credit events, derivation, manufacturers' reports; it follows
    # incidents and sanctions but does not decide them.
    "bureau_analyst": {
        SUPPLY_INCIDENT: _READ,
        CREDIT: (*_ENTER, "manage"),
        SANCTION: _READ,
        SUPPLY_REPORT: _ENTER,
    },
    "bureau_viewer": {SUPPLY_INCIDENT: ("read",), CREDIT: ("read",), SANCTION: ("read",), SUPPLY_REPORT: ("read",)},
    # The VBP office and the pharmacy report their institution's shortages and interruptions with the
    # supplier's proof, flag malicious ones to the bureau (XJ 五(二)2) and record problems with
    # deliveries in the credit file (XJ 四.3: short supply, near expiry, unsuitable packs).
    "vbp_office": {
        SUPPLY_INCIDENT: _ENTER,
        CREDIT: ("read", "write", "export"),
        SANCTION: _READ,
        SUPPLY_REPORT: _READ,
    },
    "pharmacy": {
        SUPPLY_INCIDENT: _ENTER,
        CREDIT: ("read", "write", "export"),
        SANCTION: _READ,
        SUPPLY_REPORT: _READ,
    },
    # Other hospital roles follow supply: they read what concerns their institution.
    "medical_affairs": {SUPPLY_INCIDENT: ("read",), CREDIT: ("read",), SANCTION: ("read",)},
    "finance": {SUPPLY_INCIDENT: ("read",), SANCTION: ("read",)},
    "leadership": {SUPPLY_INCIDENT: _READ, CREDIT: _READ, SANCTION: _READ, SUPPLY_REPORT: ("read",)},
}
