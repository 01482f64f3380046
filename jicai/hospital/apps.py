from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HospitalConfig(AppConfig):
    name = "jicai.hospital"
    label = "hospital"
    verbose_name = _("Hospital workspace")

    def ready(self) -> None:
        # Department progress (CLI, API, reports) uses the targets the hospital published (R-H3, issue 4:
        # "targets from the hospital workspace; until then, from the allocation rule"). The engine sits
        # below this app and never imports it, so the workspace registers its source here.
        from jicai.hospital.targets.queries import published_target_table  # noqa: PLC0415
        from jicai.monitoring.reports import TARGET_SOURCES  # noqa: PLC0415

        if published_target_table not in TARGET_SOURCES:
            TARGET_SOURCES.append(published_target_table)
