from django.contrib import admin
from django.urls import include, path

from jicai.api.api import api
from jicai.web.views import healthz

admin.site.site_header = "集采 Jicai"
admin.site.site_title = "集采 Jicai"
admin.site.index_title = "数据管理"

urlpatterns = [
    path("", include("jicai.web.urls")),
    path("hospital/", include("jicai.hospital.urls")),
    path("supply/", include("jicai.supply.urls")),
    path("quality/", include("jicai.quality.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz),
]
