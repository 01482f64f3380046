from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FactsConfig(AppConfig):
    name = "jicai.facts"
    label = "facts"
    verbose_name = _("Activity facts")

    def ready(self) -> None:
        from jicai.facts.specs import FACT_SPECS  # noqa: PLC0415 - registry filled once apps load
        from jicai.imports.datasets import register  # noqa: PLC0415

        for spec in FACT_SPECS.values():
            register(spec)
