"""Demand reporting pages (R-H2), under /hospital/demand/ in the "hospital" namespace."""

from django.urls import path

from jicai.hospital.demand import views

urlpatterns = [
    path("", views.plan_list, name="demand_list"),
    path("new/", views.plan_create, name="demand_create"),
    path("<int:plan_id>/", views.plan_detail, name="demand_detail"),
    path("<int:plan_id>/export.xlsx", views.plan_export, name="demand_export"),
    path("<int:plan_id>/lines/<int:line_id>/adjust/", views.line_adjust, name="demand_adjust"),
    path("<int:plan_id>/lines/<int:line_id>/shortage/", views.line_shortage, name="demand_shortage"),
    path("<int:plan_id>/lines/<int:line_id>/comment/", views.line_comment, name="demand_comment"),
    path("<int:plan_id>/<slug:step>/", views.plan_step, name="demand_step"),
]
