-- activation: new members and how many took part within 7 days of joining.
-- A new member joined in the period, and it was their first join record in the log (per platform, the first join
-- there; for "all", their first join on any platform), looking back over the whole retained log (400 days), not
-- only the weeks the report shows. A member a bulk import brought in (an `imported` record) was there before: a
-- later join of theirs is never a first. Activated: a first message, post or reaction (on any platform) within
-- 7 days (168 h) of that join, seen by the period's end. Time to first activity: the median and p90 over the
-- activated members, in seconds (the median of an even count is the lower middle value).
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
{first_joins},
newcomers AS (
    SELECT member, platform, joined_at FROM firsts
    WHERE joined_at = first_seen AND joined_at >= {start} AND joined_at < {end}
),
first_activity AS (
    SELECT n.member, n.platform, MIN(l.ts) AS first_active
    FROM newcomers n
    JOIN log l ON l.member = n.member AND l.kind IN ('message', 'post', 'reaction')
        AND l.ts >= n.joined_at AND l.ts < {end}
    GROUP BY n.member, n.platform
),
measured AS (
    SELECT n.platform, n.member,
        CASE WHEN f.first_active < n.joined_at + INTERVAL '7' DAY
            THEN date_diff('second', n.joined_at, f.first_active) END AS seconds_to_first_activity
    FROM newcomers n
    LEFT JOIN first_activity f ON f.member = n.member AND f.platform = n.platform
)
SELECT platform,
    COUNT(*) AS new_members,
    COUNT(seconds_to_first_activity) AS activated,
    approx_percentile(seconds_to_first_activity, 0.5) AS median_seconds_to_first_activity,
    approx_percentile(seconds_to_first_activity, 0.9) AS p90_seconds_to_first_activity
FROM measured
GROUP BY platform
ORDER BY platform
