"""Which Celery queues each worker of the production layout consumes (no Django needed, so the
benchmark harness and `manage.py devstack` start workers exactly as the README's Deployment section says).

* The dispatch worker takes only `escalations` (engine wake-ups and the escalation sweep): dispatching
  a step costs a couple of milliseconds and must never wait behind a delivery.
* Every other worker takes `deliveries` (Twilio calls), `celery` (everything else), `webhooks`
  (outgoing webhook POSTs, each bounded by a 15 s timeout) and `periodic`
  (the other safety nets).
"""

DISPATCH_QUEUES = "escalations"
WORKER_QUEUES = "deliveries,celery,periodic,webhooks"

# Pool processes of each (docs/operations.md, Deployment). The worker's deliveries mostly wait on the
# provider (a batch waits up to DELIVERY_SEND_WAIT_MS for its calls), so it runs more processes than cores.
DISPATCH_CONCURRENCY = 2
WORKER_CONCURRENCY = 4
