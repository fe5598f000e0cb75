from django.contrib import admin
from django.utils.html import format_html_join

from .forms import ActionForm
from .models import Action
from .registry import all_kinds


@admin.register(Action)
class ActionAdmin(admin.ModelAdmin):
    form = ActionForm
    list_display = ("name", "cluster", "kind", "timeout_s", "updated")
    list_filter = ("cluster", "kind")
    search_fields = ("name", "description", "cluster__name")
    readonly_fields = ("parameters_by_kind", "created", "updated")
    fields = ("cluster", "name", "kind", "params", "parameters_by_kind", "timeout_s", "description",
              "created", "updated")
    list_select_related = ("cluster",)

    @admin.display(description="parameters each kind takes")
    def parameters_by_kind(self, obj=None):
        return format_html_join(
            "", "<p><b>{}</b>: {}</p>",
            ((cls.label, cls.params_help()) for cls in all_kinds().values()),
        )
