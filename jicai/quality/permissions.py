"""Proposed grants for the quality registers, to be merged into ``jicai.accounts.permissions``.

``GRANTS`` maps a role to the verbs it should hold on each quality resource; the role's level
(region / institution / department) is the permission's first part, as in ``ROLE_PERMISSIONS``.
Until the lead merges them, tests patch them in (``tests/quality/conftest.py``).

Why these:

* ``adverse_reaction`` — reports, the cluster signals detection raises from them and suspensions of
  use. The seeds give ADR monitoring to the pharmacy (药学部门设专人对监测数据汇总评价, XJ 五(八)2)
  and ask clinical departments to report (科室做好集采药品不良反应的监测和上报, XJ 四): pharmacy and
  medical affairs write and import; a department head writes its own department's reports. Pharmacy
  and medical affairs also propose a suspension and close an institution's signal after
  investigation; leadership approves, rejects and lifts suspensions (``approve``). The bureau
  follows signals (read, export); its administrator decides region-wide suspensions and closes
  region-wide signals (``approve``) — no bureau role writes a hospital's reports.
* ``quality_problem`` — the pharmacy is "the department responsible for drug quality" (XJ 五(八)1):
  it registers, imports and routes problems; medical affairs registers problems clinicians find.
* ``evaluation`` — clinical comprehensive evaluation is led by the pharmacy with clinicians (XJ 五(九)1);
  a bureau (or the region's evaluation centre, XJ 五(九)3) keeps region-wide evaluations and schemes.
* Every hospital role reads and exports, like the rest of the workspace; bureau analysts and viewers read.
"""

from __future__ import annotations

from collections.abc import Mapping

from jicai.accounts.permissions import ROLE_LEVEL, RoleName
from jicai.quality.common import ADVERSE_REACTION, EVALUATION, QUALITY_PROBLEM

_RE = ("read", "export")
_RWIE = ("read", "write", "import", "export")

GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "bureau_admin": {
        ADVERSE_REACTION: ("read", "export", "approve"),
        QUALITY_PROBLEM: _RE,
        EVALUATION: _RWIE,
    },
    "bureau_analyst": {ADVERSE_REACTION: _RE, QUALITY_PROBLEM: _RE, EVALUATION: _RE},
    "bureau_viewer": {ADVERSE_REACTION: ("read",), QUALITY_PROBLEM: ("read",), EVALUATION: ("read",)},
    "vbp_office": {ADVERSE_REACTION: _RE, QUALITY_PROBLEM: _RE, EVALUATION: _RE},
    "pharmacy": {ADVERSE_REACTION: _RWIE, QUALITY_PROBLEM: _RWIE, EVALUATION: _RWIE},
    "medical_affairs": {
        ADVERSE_REACTION: _RWIE,
        QUALITY_PROBLEM: ("read", "write", "export"),
        EVALUATION: ("read", "write", "export"),
    },
    "finance": {ADVERSE_REACTION: _RE, QUALITY_PROBLEM: _RE, EVALUATION: _RE},
    "performance": {ADVERSE_REACTION: _RE, QUALITY_PROBLEM: _RE, EVALUATION: _RE},
    "it": {ADVERSE_REACTION: _RE, QUALITY_PROBLEM: _RE, EVALUATION: _RE},
    "leadership": {ADVERSE_REACTION: ("read", "export", "approve"), QUALITY_PROBLEM: _RE, EVALUATION: _RE},
    "department_head": {ADVERSE_REACTION: ("read", "write"), EVALUATION: ("read",)},
}


def permission_strings(grants: Mapping[str, Mapping[str, tuple[str, ...]]] = GRANTS) -> dict[str, frozenset[str]]:
    """``GRANTS`` as ``level:resource:verb`` strings per role name."""
    out: dict[str, frozenset[str]] = {}
    for role, resources in grants.items():
        level = ROLE_LEVEL[RoleName(role)].value
        out[role] = frozenset(f"{level}:{r}:{v}" for r, verbs in resources.items() for v in verbs)
    return out
