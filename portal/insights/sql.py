"""The SQL behind Insights, shared by the live aggregate and the nightly roll-up."""

from __future__ import annotations

# The incidents in scope, as a CTE every aggregate below starts from.
_SCOPE_SQL = """
WITH scope AS (
    SELECT id, created_at, resolved_at, resolved_by_id, source, severity FROM escalations_incident
    WHERE created_at >= %(since)s AND created_at < %(until)s
      AND (%(all_teams)s OR team_id = ANY(%(team_ids)s::bigint[]))
)
"""


_COUNTS_SQL = (
    _SCOPE_SQL
    + """
SELECT GROUPING(source), GROUPING(severity), source, severity, day, count(*)
FROM (SELECT source, severity, (created_at AT TIME ZONE 'UTC')::date - %(since_day)s AS day FROM scope) x
GROUP BY GROUPING SETS ((source), (severity), (day))
"""
)


# One pass over the scope's timeline: per incident the first acknowledgement, the highest policy
# step reached (manual reassign pages left out), who the first step paged and whether it was
# reassigned; then the percentiles and the step facts over every incident in scope.
_EV_CTE = """ev AS (
    SELECT t.incident_id,
           min(t.at) FILTER (WHERE t.kind = 'acknowledged') AS first_ack,
           max(t.step) FILTER (WHERE t.paging) AS max_step,
           (array_agg(t.data -> 'user_ids' ORDER BY t.at, t.id) FILTER (WHERE t.paging))[1] AS first_users,
           bool_or(t.kind = 'reassigned') AS reassigned
    FROM (
        SELECT e.incident_id, e.at, e.id, e.kind, e.data, COALESCE((e.data ->> 'step')::int, 0) AS step,
               e.kind = 'step_reached' AND COALESCE((e.data ->> 'step')::int, 0) <> %(manual_step)s AS paging
        FROM scope s JOIN escalations_timelineevent e ON e.incident_id = s.id
        WHERE e.kind IN ('acknowledged', 'step_reached', 'reassigned')
    ) t
    GROUP BY t.incident_id
)"""


# Per incident (scope s LEFT JOIN ev): resolved with somebody paged first, and resolved by one of them alone.
_FACT_FLAGS = """s.resolved_at IS NOT NULL AND jsonb_typeof(ev.first_users) = 'array'
               AND jsonb_array_length(ev.first_users) > 0 AS resolved_paged,
           ev.max_step = 0 AND NOT ev.reassigned AND ev.first_users @> to_jsonb(s.resolved_by_id) AS alone"""


_FACTS_SQL = (
    _SCOPE_SQL
    + ", "
    + _EV_CTE
    + """, facts AS (
    SELECT s.created_at, s.resolved_at, ev.first_ack, ev.max_step,
           """
    + _FACT_FLAGS
    + """
    FROM scope s LEFT JOIN ev ON ev.incident_id = s.id
)
SELECT count(first_ack),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', first_ack - created_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY date_part('epoch', first_ack - created_at)),
       count(resolved_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', resolved_at - created_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY date_part('epoch', resolved_at - created_at)),
       count(*) FILTER (WHERE max_step >= 0),
       count(*) FILTER (WHERE max_step >= 1),
       count(*) FILTER (WHERE resolved_paged),
       count(*) FILTER (WHERE resolved_paged AND alone)
FROM facts
"""
)


# Pages per person in 15-minute buckets: every zone's offset is a multiple of 15 minutes and the
# hour bands change on whole local hours, so a bucket falls in exactly one band.
_PAGES_SQL = (
    _SCOPE_SQL
    + """
SELECT p.user_id, u.time_zone, floor(date_part('epoch', COALESCE(p.sent_at, p.due_at)) / 900)::bigint, count(*)
FROM scope s JOIN escalations_page p ON p.incident_id = s.id JOIN portal_user u ON u.id = p.user_id
WHERE p.status = ANY(%(counted)s::text[])
GROUP BY 1, 2, 3
"""
)
