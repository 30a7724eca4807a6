# Shared fixtures: the logged-in client, and a team policy with an incident opened through the engine.
from tests.portal.conftest import incident, login, policy  # noqa: F401
