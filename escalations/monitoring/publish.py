"""Frozen task names of the monitoring room (beat refers to them)."""

WORKER_HEARTBEAT = "escalations.monitoring.worker_heartbeat"
DEADMAN = "escalations.monitoring.deadman"
