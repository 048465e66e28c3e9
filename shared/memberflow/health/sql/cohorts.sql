-- cohorts: weekly join cohorts x weeks retained.
-- A cohort is the members whose first join (as in activation: the first in the retained log, per platform or, for
-- "all", on any platform) fell in one ISO week of the eight weeks up to the period's end; week_k is how many of
-- them were active (a message, post or reaction) in the k-th week after their join week (week_0: the join week
-- itself), counted up to the period's end. A platform's cohort counts activity on that platform only (who joined
-- Discourse and stayed on Discourse); "all" counts activity anywhere.
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
{first_joins},
cohort AS (
    SELECT member, platform, CAST(date_trunc('week', joined_at) AS DATE) AS cohort_week
    FROM firsts WHERE joined_at = first_seen AND joined_at >= {trend_from} AND joined_at < {end}
),
active_weeks AS (
    SELECT DISTINCT member, platform, CAST(date_trunc('week', ts) AS DATE) AS week
    FROM log WHERE kind IN ('message', 'post', 'reaction') AND ts >= {trend_from} AND ts < {end}
),
offsets AS (
    SELECT c.platform, c.cohort_week, c.member, date_diff('day', c.cohort_week, w.week) / 7 AS k
    FROM cohort c
    LEFT JOIN active_weeks w ON w.member = c.member AND w.week >= c.cohort_week
        AND (c.platform = 'all' OR w.platform = c.platform)
)
SELECT platform, cohort_week,
    COUNT(DISTINCT member) AS size,
    COUNT(DISTINCT CASE WHEN k = 0 THEN member END) AS week_0,
    COUNT(DISTINCT CASE WHEN k = 1 THEN member END) AS week_1,
    COUNT(DISTINCT CASE WHEN k = 2 THEN member END) AS week_2,
    COUNT(DISTINCT CASE WHEN k = 3 THEN member END) AS week_3,
    COUNT(DISTINCT CASE WHEN k = 4 THEN member END) AS week_4,
    COUNT(DISTINCT CASE WHEN k = 5 THEN member END) AS week_5,
    COUNT(DISTINCT CASE WHEN k = 6 THEN member END) AS week_6,
    COUNT(DISTINCT CASE WHEN k = 7 THEN member END) AS week_7
FROM offsets
GROUP BY platform, cohort_week
ORDER BY platform, cohort_week
