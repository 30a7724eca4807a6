from tests.portal.conftest import login  # noqa: F401  (the logged-in client fixture, shared)
