from django.contrib.auth import views as auth_views
from django.urls import path

from jicai.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("data/", views.data, name="data"),
    path("data/<str:name>/", views.dataset_list, name="dataset"),
    path("data/<str:name>/import/", views.dataset_import, name="dataset_import"),
    path("data/<str:name>/export/", views.dataset_export, name="dataset_export"),
    path("imports/", views.imports, name="imports"),
    path("imports/<int:run_id>/report/", views.import_report, name="import_report"),
]
