"""The quality section under /quality/: adverse reactions, signals, suspensions, quality problems,
clinical evaluations and the shortage substitution choices."""

from django.urls import path

from jicai.quality.views import evaluations, index, problems, reactions

app_name = "quality"

urlpatterns = [
    path("", index, name="index"),
    # adverse reactions (R-J2)
    path("reactions/", reactions.reaction_list, name="reaction_list"),
    path("reactions/new/", reactions.reaction_create, name="reaction_create"),
    path("reactions/export/", reactions.reaction_export, name="reaction_export"),
    path("reactions/import/", reactions.reaction_import, name="reaction_import"),
    path("reactions/<int:pk>/", reactions.reaction_detail, name="reaction_detail"),
    path("reactions/<int:pk>/edit/", reactions.reaction_edit, name="reaction_edit"),
    path("signals/", reactions.signal_list, name="signal_list"),
    path("signals/detect/", reactions.signal_detect, name="signal_detect"),
    path("signals/export/", reactions.signal_export_view, name="signal_export"),
    path("signals/<int:pk>/", reactions.signal_detail, name="signal_detail"),
    path("signals/<int:pk>/close/", reactions.signal_close, name="signal_close"),
    path("signals/<int:pk>/suspend/", reactions.signal_suspend, name="signal_suspend"),
    path("suspensions/", reactions.suspension_list, name="suspension_list"),
    path("suspensions/export/", reactions.suspension_export_view, name="suspension_export"),
    path("suspensions/<int:pk>/<str:decision>/", reactions.suspension_decide, name="suspension_decide"),
    # quality problems (R-J1)
    path("problems/", problems.problem_list, name="problem_list"),
    path("problems/new/", problems.problem_create, name="problem_create"),
    path("problems/export/", problems.problem_export, name="problem_export"),
    path("problems/import/", problems.problem_import, name="problem_import"),
    path("problems/<int:pk>/", problems.problem_detail, name="problem_detail"),
    path("problems/<int:pk>/edit/", problems.problem_edit, name="problem_edit"),
    path("problems/<int:pk>/<str:step>/", problems.problem_step, name="problem_step"),
    # clinical comprehensive evaluation (R-K1)
    path("evaluations/", evaluations.evaluation_list, name="evaluation_list"),
    path("evaluations/new/", evaluations.evaluation_create, name="evaluation_create"),
    path("evaluations/export/", evaluations.evaluation_export, name="evaluation_export"),
    path("evaluations/import/", evaluations.evaluation_import, name="evaluation_import"),
    path("evaluations/<int:pk>/", evaluations.evaluation_detail, name="evaluation_detail"),
    path("evaluations/<int:pk>/edit/", evaluations.evaluation_edit, name="evaluation_edit"),
    path("schemes/", evaluations.scheme_list, name="scheme_list"),
    path("schemes/new/", evaluations.scheme_create, name="scheme_create"),
    path("schemes/<int:pk>/edit/", evaluations.scheme_edit, name="scheme_edit"),
    path("substitution/", evaluations.substitution_items, name="substitution_items"),
    path("substitution/<int:item_id>/", evaluations.substitution_choices, name="substitution_choices"),
]
