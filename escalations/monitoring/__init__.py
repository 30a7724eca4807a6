"""Watching the watcher: Prometheus metrics, worker heartbeats and the dead man's switch."""
