-- events: per event held or registered for in the period (from event sync): registrations, attended, no-shows,
-- attendance rate (attended / (attended + no-shows)), and first-time attendees (no earlier attendance anywhere in
-- the retained log, 400 days) versus returning ones.
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, event
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}' AND kind IN ('registration', 'attended', 'no_show')
),
first_attendance AS (
    -- Every attendance in the retained log (its own scan: this kind and these columns only).
    SELECT member, MIN(ts) AS first_at
    FROM {table}
    WHERE dt BETWEEN '{history_from}' AND '{scan_last}' AND kind = 'attended'
    GROUP BY member
),
in_period AS (
    SELECT l.kind, l.event, l.member, l.ts, f.first_at
    FROM log l LEFT JOIN first_attendance f ON f.member = l.member
    WHERE l.ts >= {start} AND l.ts < {end}
)
SELECT event,
    COUNT(DISTINCT CASE WHEN kind = 'registration' THEN member END) AS registrations,
    COUNT(DISTINCT CASE WHEN kind = 'attended' THEN member END) AS attended,
    COUNT(DISTINCT CASE WHEN kind = 'no_show' THEN member END) AS no_shows,
    COUNT(DISTINCT CASE WHEN kind = 'attended' AND ts = first_at THEN member END) AS first_time,
    COUNT(DISTINCT CASE WHEN kind = 'attended' AND ts > first_at THEN member END) AS returning
FROM in_period
GROUP BY event
ORDER BY event
