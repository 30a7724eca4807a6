"""Importers for the on-call configuration people bring from PagerDuty, Opsgenie and Grafana OnCall."""
