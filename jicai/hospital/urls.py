"""The workspace's pages under /hospital/, one module per workflow."""

from django.urls import include, path

from jicai.hospital import views

app_name = "hospital"

urlpatterns = [
    path("", views.index, name="index"),
    path("demand/", include("jicai.hospital.demand.urls")),
    path("targets/", include("jicai.hospital.targets.urls")),
    path("feedback/", include("jicai.hospital.feedback.urls")),
    path("control/", include("jicai.hospital.control.urls")),
    path("formulary/", include("jicai.hospital.formulary.urls")),
    path("surplus/", include("jicai.hospital.surplus.urls")),
    path("registers/", include("jicai.hospital.registers.urls")),
]
