-- weekly_active: the members active in each ISO week (Monday to Sunday, UTC) of the eight weeks up to the period's
-- end, for the trend chart. Active as in daily_active; per platform and "all" (a person counted once).
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
active AS (
    SELECT DISTINCT CAST(date_trunc('week', ts) AS DATE) AS week, platform, member
    FROM log
    WHERE kind IN ('message', 'post', 'reaction') AND ts >= {trend_from} AND ts < {end}
)
SELECT week, COALESCE(platform, 'all') AS platform, COUNT(DISTINCT member) AS members
FROM active
GROUP BY GROUPING SETS ((week, platform), (week))
ORDER BY week, platform
