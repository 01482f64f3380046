"""Formulary advice pages (R-H6), mounted under /hospital/formulary/ (namespace "hospital")."""

from django.urls import path

from jicai.hospital.formulary import views

urlpatterns = [
    path("", views.formulary_list, name="formulary_list"),
    path("new/", views.formulary_create, name="formulary_create"),
    path("<int:pk>/", views.formulary_detail, name="formulary_detail"),
    path("<int:pk>/products/", views.formulary_add_product, name="formulary_add_product"),
    path("<int:pk>/decisions/", views.formulary_decide, name="formulary_decide"),
    path("<int:pk>/delete/", views.formulary_delete, name="formulary_delete"),
    path("<int:pk>/export.xlsx", views.formulary_export, name="formulary_export"),
]
