"""Staff may do everything (the role matrix in portal/permissions.py), the Django admin included."""

from django.contrib.auth.backends import BaseBackend


class StaffPermissionBackend(BaseBackend):
    """Grants every model permission to active staff; authenticates nobody by itself.

    The admin asks Django's model permissions; without this, a staff member who is not a
    superuser would see the admin index and a 403 on every model page.
    """

    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        return bool(user_obj.is_active and user_obj.is_staff)

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        return bool(user_obj.is_active and user_obj.is_staff)
