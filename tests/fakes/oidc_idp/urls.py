from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="idp/login.html"), name="login"),
    path("openid/", include("oidc_provider.urls", namespace="oidc_provider")),
    # Browsers ask every origin for one; a 404 would show as a console error in the browser tests.
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]
