"""Register pages (R-H10, R-H11), mounted under /hospital/registers/ (namespace "hospital")."""

from django.urls import path

from jicai.hospital.registers import views

urlpatterns = [
    path("reviews/", views.review_list, name="review_list"),
    path("reviews/new/", views.review_create, name="review_create"),
    path("reviews/export.xlsx", views.review_export, name="review_export"),
    path("reviews/<int:pk>/", views.review_detail, name="review_detail"),
    path("reviews/<int:pk>/edit/", views.review_update, name="review_update"),
    path("reviews/<int:pk>/status/", views.review_status, name="review_status"),
    path("complaints/", views.complaint_list, name="complaint_list"),
    path("complaints/new/", views.complaint_create, name="complaint_create"),
    path("complaints/export.xlsx", views.complaint_export, name="complaint_export"),
    path("complaints/<int:pk>/", views.complaint_detail, name="complaint_detail"),
    path("complaints/<int:pk>/edit/", views.complaint_update, name="complaint_update"),
    path("complaints/<int:pk>/status/", views.complaint_status, name="complaint_status"),
]
