from django.contrib.auth import views as auth_views
from django.urls import path

from jicai.web import dashboards, line_views, views

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
    # the daily screens
    path("overview/", dashboards.overview, name="overview"),
    path("overview/institutions/", dashboards.institution_ranking, name="institution_ranking"),
    path("overview/items/", dashboards.item_ranking, name="item_ranking"),
    path("progress/", dashboards.progress_list, name="progress"),
    path("institutions/<str:code>/", dashboards.institution, name="institution"),
    path("institutions/<str:code>/items/<str:batch>/<str:item>/", dashboards.institution_item, name="institution_item"),
    path("institutions/<str:code>/departments/<str:dept>/", dashboards.department, name="department"),
    path("alerts/", dashboards.alerts, name="alerts"),
    path("alerts/<int:pk>/resolve/", dashboards.alert_resolve, name="alert_resolve"),
    # the lines behind a number
    path("lines/purchases/", line_views.purchase_lines, name="purchase_lines"),
    path("lines/dispensing/", line_views.dispensing_lines, name="dispensing_lines"),
    path("lines/payables/", line_views.payable_lines, name="payable_lines"),
]
