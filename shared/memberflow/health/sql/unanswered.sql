-- unanswered: questions older than 24 hours at the period's end that nobody else has replied to, with what links
-- to them (platform, workspace, channel, thread, item). Questions as in `questions`, asked in the 30 days before
-- the end; a reply by the asker does not count.
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform, workspace, channel, thread, item, is_reply, question
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
asked AS (
    SELECT id, ts, member, platform, workspace, channel, thread, item
    FROM log
    WHERE question AND ts >= {end} - INTERVAL '30' DAY AND ts < {end} - INTERVAL '24' HOUR
)
SELECT q.platform, q.workspace, q.channel, q.thread, q.item, q.ts AS asked_at,
    date_diff('hour', q.ts, {end}) AS hours_waiting
FROM asked q
WHERE NOT EXISTS (
    SELECT 1 FROM log r
    WHERE r.platform = q.platform AND r.workspace = q.workspace AND COALESCE(r.channel, '') = COALESCE(q.channel, '')
        AND r.thread = q.thread AND r.is_reply AND r.member <> q.member AND r.ts > q.ts AND r.ts < {end}
)
ORDER BY q.ts, q.platform, q.thread
