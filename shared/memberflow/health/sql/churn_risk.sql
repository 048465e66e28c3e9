-- churn_risk: members who were regularly active and have gone silent, the list win-back can use.
-- Regularly active: active (a message, post or reaction) on at least 3 distinct UTC days in the 30 days before the
-- last 14 days of the period's end ([end - 44 days, end - 14 days)); silent: no activity at all in the last 14 days.
-- Per platform (regular there, silent there) and "all" (regular anywhere, silent everywhere). `member` is the
-- log's keyed hash of the member id.
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, platform
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
active AS (
    SELECT member, platform, ts FROM log
    WHERE kind IN ('message', 'post', 'reaction') AND ts >= {end} - INTERVAL '44' DAY AND ts < {end}
),
by_platform AS (
    SELECT platform, member,
        COUNT(DISTINCT CASE WHEN ts < {end} - INTERVAL '14' DAY THEN CAST(ts AS DATE) END) AS active_days,
        COUNT(CASE WHEN ts >= {end} - INTERVAL '14' DAY THEN 1 END) AS recent,
        MAX(ts) AS last_active
    FROM active GROUP BY platform, member
),
overall AS (
    SELECT 'all' AS platform, member,
        COUNT(DISTINCT CASE WHEN ts < {end} - INTERVAL '14' DAY THEN CAST(ts AS DATE) END) AS active_days,
        COUNT(CASE WHEN ts >= {end} - INTERVAL '14' DAY THEN 1 END) AS recent,
        MAX(ts) AS last_active
    FROM active GROUP BY member
)
SELECT platform, member, active_days, last_active
FROM (SELECT * FROM by_platform UNION ALL SELECT * FROM overall) AS candidates
WHERE active_days >= 3 AND recent = 0
ORDER BY platform, active_days DESC, member
