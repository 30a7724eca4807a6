from django.core.management.base import BaseCommand

from portal.demo import demo_seed


class Command(BaseCommand):
    help = "Load the demo roster (idempotent) and print the demo sign-ins."

    def handle(self, *args, **options) -> None:
        summary = demo_seed()
        self.stdout.write("Demo roster " + ("loaded." if summary.created else "already present."))
        self.stdout.write("Sign in with any of these (password in the middle):")
        for email, password, role in summary.users:
            self.stdout.write(f"  {email:<22} {password:<15} {role}")
        self.stdout.write("Send alerts here (curl them, or point Alertmanager / a PagerDuty-style sender at them):")
        for team, name, url in summary.integrations:
            self.stdout.write(f"  {team:<17} {name:<26} {url}")
