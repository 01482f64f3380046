"""Retained surplus pages (R-G3), mounted under /hospital/surplus/ (namespace "hospital")."""

from django.urls import path

from jicai.hospital.surplus import views

urlpatterns = [
    path("", views.surplus_list, name="surplus_list"),
    path("new/", views.surplus_create, name="surplus_create"),
    path("<int:pk>/", views.surplus_detail, name="surplus_detail"),
    path("<int:pk>/edit/", views.surplus_update, name="surplus_update"),
    path("<int:pk>/approve/", views.surplus_approve, name="surplus_approve"),
    path("<int:pk>/delete/", views.surplus_delete, name="surplus_delete"),
    path("<int:pk>/export.xlsx", views.surplus_export, name="surplus_export"),
]
