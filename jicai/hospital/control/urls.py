"""Pages of the substitute-control workflow under /hospital/control/ (R-H7–H9)."""

from django.urls import path

from jicai.hospital.control import views

urlpatterns = [
    path("", views.board, name="control_board"),
    path("exceptions/", views.exceptions, name="control_exceptions"),
    path("exceptions/<int:pk>/end/", views.end_exception, name="control_exception_end"),
    path("measures/", views.measures, name="control_measures"),
    path("measures/<int:pk>/decide/", views.decide_measure, name="control_measure_decide"),
    path("measures/<int:pk>/revoke/", views.revoke_measure, name="control_measure_revoke"),
]
