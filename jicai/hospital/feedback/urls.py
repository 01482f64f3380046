"""Pages of the progress-feedback workflow under /hospital/feedback/ (R-H4, R-H5)."""

from django.urls import path

from jicai.hospital.feedback import views

urlpatterns = [
    path("", views.board, name="feedback_board"),
    path("remind/", views.remind, name="feedback_remind"),
    path("inbox/", views.inbox, name="feedback_inbox"),
    path("inbox/<int:pk>/read/", views.mark_read, name="feedback_mark_read"),
    path("sheets/", views.sheets, name="feedback_sheets"),
    path("sheets/<int:pk>/", views.sheet, name="feedback_sheet"),
    path("sheets/<int:pk>/export/", views.sheet_export, name="feedback_sheet_export"),
    path("appraisal/", views.schemes, name="appraisal_schemes"),
    path("appraisal/scores/", views.scores, name="appraisal_scores"),
    path("appraisal/<int:pk>/", views.scheme, name="appraisal_scheme"),
]
