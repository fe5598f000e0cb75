from django.contrib import admin

from .models import JVM, JMXCounter


class JMXCounterInline(admin.TabularInline):
    model = JMXCounter
    extra = 0
    fields = ("name", "mbean", "attribute", "composite_key", "comparison", "threshold", "interval_s",
              "unit", "enabled")
    show_change_link = True


@admin.register(JVM)
class JVMAdmin(admin.ModelAdmin):
    list_display = ("name", "cluster", "jmx_port", "username", "tls")
    list_filter = ("cluster",)
    search_fields = ("name", "cluster__name")
    readonly_fields = ("created", "updated")
    inlines = [JMXCounterInline]


@admin.register(JMXCounter)
class JMXCounterAdmin(admin.ModelAdmin):
    list_display = ("name", "jvm", "mbean", "attribute", "composite_key", "comparison", "threshold",
                    "interval_s", "enabled")
    list_filter = ("jvm__cluster", "enabled", "comparison")
    search_fields = ("name", "mbean", "attribute", "jvm__name", "jvm__cluster__name")
    readonly_fields = ("created", "updated")
    list_select_related = ("jvm__cluster",)
