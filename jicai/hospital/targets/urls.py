"""Department-target pages (R-H3), under /hospital/targets/ in the "hospital" namespace."""

from django.urls import path

from jicai.hospital.targets import views

urlpatterns = [
    path("", views.plan_list, name="target_list"),
    path("generate/", views.plan_generate, name="target_generate"),
    path("mine/", views.my_targets, name="target_mine"),
    path("<int:plan_id>/", views.plan_detail, name="target_detail"),
    path("<int:plan_id>/adjust/", views.plan_adjust, name="target_adjust"),
    path("<int:plan_id>/publish/", views.plan_publish, name="target_publish"),
    path("<int:plan_id>/unpublish/", views.plan_unpublish, name="target_unpublish"),
]
