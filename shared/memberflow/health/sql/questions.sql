-- questions: questions asked in the period and their time to first reply.
-- A question opens a thread and asks something (a Slack message with a question mark, a new Discourse topic).
-- Its first reply: the earliest reply in the same thread (same workspace, channel and thread) by another member,
-- seen by the period's end. Median and p90 of the time to first reply, in seconds, over the answered questions.
-- Per platform and "all".
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform, workspace, channel, thread, is_reply, opens_thread, question
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
asked AS (
    SELECT id, ts, member, platform, workspace, COALESCE(channel, '') AS channel, thread
    FROM log WHERE question AND ts >= {start} AND ts < {end}
),
answered AS (
    SELECT q.id, MIN(r.ts) AS first_reply
    FROM asked q
    JOIN log r ON r.platform = q.platform AND r.workspace = q.workspace AND COALESCE(r.channel, '') = q.channel
        AND r.thread = q.thread AND r.is_reply AND r.member <> q.member AND r.ts > q.ts AND r.ts < {end}
    GROUP BY q.id
),
waits AS (
    SELECT q.platform, date_diff('second', q.ts, a.first_reply) AS seconds_to_first_reply
    FROM asked q LEFT JOIN answered a ON a.id = q.id
)
SELECT COALESCE(platform, 'all') AS platform,
    COUNT(*) AS questions,
    COUNT(seconds_to_first_reply) AS answered,
    approx_percentile(seconds_to_first_reply, 0.5) AS median_seconds_to_first_reply,
    approx_percentile(seconds_to_first_reply, 0.9) AS p90_seconds_to_first_reply
FROM waits
GROUP BY GROUPING SETS ((platform), ())
ORDER BY platform
