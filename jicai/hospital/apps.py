from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HospitalConfig(AppConfig):
    name = "jicai.hospital"
    label = "hospital"
    verbose_name = _("Hospital workspace")
