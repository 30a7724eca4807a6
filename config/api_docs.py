"""The API's reference pages, /api/docs/ (Swagger UI) and /api/redoc/ (Redoc), served by the installation.

Their scripts and styles are drf-spectacular-sidecar's static files (SPECTACULAR_SETTINGS *_DIST =
"SIDECAR"), so the pages work on an air-gapped install and run the version pinned in pyproject.toml.
Each page also carries a Content-Security-Policy that keeps the browser on this origin: the two UIs
reach out by themselves otherwise (Redoc's template loads Google Fonts and its sidebar a logo from
cdn.redoc.ly; Swagger UI's validator badge calls validator.swagger.io), which would leak the schema
URL and hang on a network that has no way out.
"""

from __future__ import annotations

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# Swagger UI and Redoc inject <style> elements at run time, hence 'unsafe-inline' for styles only;
# Redoc renders its icons as data: images and runs its search index in a blob: worker.
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


class _SameOriginOnly:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class ApiDocsView(_SameOriginOnly, SpectacularSwaggerSplitView):
    """Swagger UI; the split view serves its start-up script as a same-origin file, not inline."""


class ApiRedocView(_SameOriginOnly, SpectacularRedocView):
    template_name = "api/redoc.html"
