#!/usr/bin/env python
import os
import sys


def main() -> None:
    # Forgetting DJANGO_SETTINGS_MODULE must not start a DEBUG, MFA-off demo: production refuses to
    # start without its secrets, and bin/run, bin/test and the benches choose their settings.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
