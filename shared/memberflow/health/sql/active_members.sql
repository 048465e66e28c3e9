-- active_members: WAU, MAU and the members active in the period, as of the period's end.
-- WAU: members with a message, post or reaction in the 7 days before the end; MAU: in the 30 days before the end;
-- period_active: in the period itself. Stickiness (average DAU / MAU) is computed from this and daily_active.
-- Per platform, and "all" with a person counted once.
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
active AS (
    SELECT ts, platform, member FROM log WHERE kind IN ('message', 'post', 'reaction') AND ts < {end}
)
SELECT
    COALESCE(platform, 'all') AS platform,
    COUNT(DISTINCT CASE WHEN ts >= {start} THEN member END) AS period_active,
    COUNT(DISTINCT CASE WHEN ts >= {end} - INTERVAL '7' DAY THEN member END) AS wau,
    COUNT(DISTINCT CASE WHEN ts >= {end} - INTERVAL '30' DAY THEN member END) AS mau
FROM active
GROUP BY GROUPING SETS ((platform), ())
ORDER BY platform
