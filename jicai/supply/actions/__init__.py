"""Every write of the supply registers: one action per step, one transaction and audit row each."""

from jicai.supply.actions.credit import (
    CreditInput,
    DeriveResult,
    SanctionInput,
    do_derive_credit_events,
    do_record_credit_event,
    do_record_sanction,
    do_update_credit_event,
    do_update_sanction,
)
from jicai.supply.actions.imports import do_import
from jicai.supply.actions.incidents import (
    IncidentInput,
    do_attach_proof,
    do_clear_malicious,
    do_close_incident,
    do_confirm_incident,
    do_flag_malicious,
    do_reject_incident,
    do_report_incident,
    do_update_incident,
)
from jicai.supply.actions.reports import ReportInput, do_record_supply_report, do_update_supply_report

__all__ = [
    "CreditInput",
    "DeriveResult",
    "IncidentInput",
    "ReportInput",
    "SanctionInput",
    "do_attach_proof",
    "do_clear_malicious",
    "do_close_incident",
    "do_confirm_incident",
    "do_derive_credit_events",
    "do_flag_malicious",
    "do_import",
    "do_record_credit_event",
    "do_record_sanction",
    "do_record_supply_report",
    "do_reject_incident",
    "do_report_incident",
    "do_update_credit_event",
    "do_update_incident",
    "do_update_sanction",
    "do_update_supply_report",
]
