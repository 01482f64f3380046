"""The supply pages under /supply/ (R-I1–I4)."""

from django.urls import path

from jicai.supply import views
from jicai.supply.views import credit, incidents, reports

app_name = "supply"

urlpatterns = [
    path("", views.index, name="index"),
    # supply incidents (R-I1, R-I2)
    path("incidents/", incidents.incident_list, name="incident_list"),
    path("incidents/new/", incidents.incident_new, name="incident_new"),
    path("incidents/flagged/", incidents.flagged_list, name="flagged_list"),
    path("incidents/export/", incidents.incident_export, name="incident_export"),
    path("incidents/import/", incidents.incident_import, name="incident_import"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident_detail"),
    path("incidents/<int:pk>/edit/", incidents.incident_edit, name="incident_edit"),
    path("incidents/<int:pk>/proofs/", incidents.proof_upload, name="proof_upload"),
    path("incidents/<int:pk>/proofs/<int:proof>/", incidents.proof_download, name="proof_download"),
    path("incidents/<int:pk>/<str:action>/", incidents.incident_action, name="incident_action"),
    # the credit file (R-I3)
    path("credit/", credit.event_list, name="credit_list"),
    path("credit/new/", credit.event_new, name="credit_new"),
    path("credit/export/", credit.event_export, name="credit_export"),
    path("credit/import/", credit.event_import, name="credit_import"),
    path("credit/derive/", credit.derive, name="credit_derive"),
    path("credit/ranking/", credit.ranking, name="ranking"),
    path("credit/companies/<int:pk>/", credit.company_file, name="company_file"),
    path("credit/<int:pk>/", credit.event_detail, name="credit_detail"),
    path("credit/<int:pk>/edit/", credit.event_edit, name="credit_edit"),
    path("sanctions/", credit.sanction_list, name="sanction_list"),
    path("sanctions/new/", credit.sanction_new, name="sanction_new"),
    path("sanctions/export/", credit.sanction_export, name="sanction_export"),
    path("sanctions/import/", credit.sanction_import, name="sanction_import"),
    path("sanctions/<int:pk>/", credit.sanction_detail, name="sanction_detail"),
    path("sanctions/<int:pk>/edit/", credit.sanction_edit, name="sanction_edit"),
    path("distributors/", credit.scorecard, name="scorecard"),
    path("distributors/detail/", credit.distributor_detail, name="distributor_detail"),
    # manufacturers' supply reports (R-I4)
    path("reports/", reports.report_list, name="report_list"),
    path("reports/new/", reports.report_new, name="report_new"),
    path("reports/alerts/", reports.low_stock, name="low_stock"),
    path("reports/export/", reports.report_export, name="report_export"),
    path("reports/import/", reports.report_import, name="report_import"),
    path("reports/<int:pk>/", reports.report_detail, name="report_detail"),
    path("reports/<int:pk>/edit/", reports.report_edit, name="report_edit"),
]
