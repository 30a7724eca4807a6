from typing import Any

from allauth.socialaccount.models import SocialApp, SocialToken
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils import timezone

from escalations.incidents.rules import pages_rule_apply
from portal import services
from portal.models import ApiToken, ContactMethod, JobRun, NotificationRule, User


class ContactMethodInline(admin.TabularInline):
    model = ContactMethod
    extra = 0
    fields = ("kind", "value", "label", "verified_at", "opted_out_at")


class NotificationRuleInline(admin.TabularInline):
    model = NotificationRule
    extra = 0
    fields = ("order", "contact_method", "delay", "urgency")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "time_zone", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_active", "time_zone")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "time_zone")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),)
    inlines = [ContactMethodInline, NotificationRuleInline]

    def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
        """Rules edited here reach incidents paging this person as they do from the profile page."""
        if formset.model is not NotificationRule:
            super().save_formset(request, form, formset, change)
            return
        now = timezone.now()
        rules = formset.save(commit=False)
        for rule in formset.deleted_objects:
            services.notification_rule_delete(rule=rule, now=now)
        for rule in rules:
            rule.save()
            pages_rule_apply(rule=rule, now=now)


@admin.register(ContactMethod)
class ContactMethodAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "value", "verified_at", "opted_out_at")
    list_filter = ("kind",)
    search_fields = ("value", "user__email", "user__full_name")
    list_select_related = ("user",)
    exclude = ("verification_code_hash",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    search_fields = ("name", "prefix", "user__email")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    list_select_related = ("user",)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("name", "last_started_at", "last_success_at", "last_error_at", "runs")
    readonly_fields = ("name", "last_started_at", "last_success_at", "last_error", "last_error_at", "runs")


# Single sign-on is configured by environment (BACKSTOP_OIDC_*, portal/sso/): an app added here would be a
# second provider under the same id, and access tokens are never stored. The links between IdP identities
# and accounts (social accounts) stay visible, and removable, in the admin.
admin.site.unregister(SocialApp)
admin.site.unregister(SocialToken)
