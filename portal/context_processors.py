from django.conf import settings


def backstop(request) -> dict:
    return {
        "twilio_configured": bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN),
        "debug": settings.DEBUG,
    }
