-- daily_active: DAU, the members active each UTC day of the period.
-- Active: at least one message, post or reaction that day. Per platform, and for all platforms together ("all"),
-- where a person active on two platforms counts once. Days with nobody active have no row (they count as 0).
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
active AS (
    SELECT DISTINCT CAST(ts AS DATE) AS day, platform, member
    FROM log
    WHERE kind IN ('message', 'post', 'reaction') AND ts >= {start} AND ts < {end}
)
SELECT day, COALESCE(platform, 'all') AS platform, COUNT(DISTINCT member) AS members
FROM active
GROUP BY GROUPING SETS ((day, platform), (day))
ORDER BY day, platform
