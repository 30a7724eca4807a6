"""gunicorn settings for production: `gunicorn -c config/gunicorn_conf.py config.wsgi`.

Threaded workers with keep-alive. A sync worker closes the connection after every response
(`Connection: close`) and lingers until the client has closed its side, so every request also pays a
TCP handshake and teardown on both ends; monitoring senders (Alertmanager, pdpyras sessions, load
balancers) keep their connections open, and a gthread worker serves the next request on the same
connection. Eight threads per worker: while one request waits for its commit the others queue
their events, and the next commit stores them all in one statement (escalations.intake.group_commit),
so under load PostgreSQL commits about once per four events instead of once per event; with 2 threads
a batch rarely held more than one. One worker per core by default. On the 2-core benchmark machine
2 workers x 8 threads took PagerDuty intake from 29 % to 51 % of /healthz (bench/README.md).
Each variable below overrides its setting.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", os.cpu_count() or 2))
threads = int(os.environ.get("WEB_THREADS", "8"))
# Idle kept-alive connections wait in the worker's poller, not in a thread: a long keep-alive costs
# a socket, not a worker.
keepalive = int(os.environ.get("WEB_KEEPALIVE_SECONDS", "30"))
# Requests in flight when a worker restarts get this long to finish.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))


# Prometheus multiprocess mode (config/metrics_process.py): every worker process writes its samples to
# PROMETHEUS_MULTIPROC_DIR and /metrics merges them; the directory starts empty, and a worker that exits
# takes its live gauges with it.
def on_starting(server) -> None:
    from config import metrics_process

    metrics_process.multiproc_dir_reset()


def child_exit(server, worker) -> None:
    from config import metrics_process

    metrics_process.process_dead(worker.pid)
