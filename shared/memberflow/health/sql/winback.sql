-- winback: win-back campaigns and their lift (from win-back).
-- Contacted members (winback_contacted) and the holdout (winback_holdout, chosen at random and not contacted), by
-- campaign, over the contacts of the eight weeks up to the period's end. Reactivated: a message, post or reaction
-- within 14 days after the contact (or after being held out). Only members whose 14 days have passed by the
-- period's end are measured (reactivated counts among them); the others' windows are still open
-- (contacted_open, holdout_open), as they may yet come back. The lift (contacted rate - holdout rate) and its 95%
-- interval are computed from the measured counts.
WITH log AS (
    SELECT DISTINCT id, kind, ts, member, campaign
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
),
targets AS (
    SELECT campaign, member, MIN(ts) AS at,
        MAX(CASE WHEN kind = 'winback_contacted' THEN 1 ELSE 0 END) AS contacted
    FROM log
    WHERE kind IN ('winback_contacted', 'winback_holdout') AND ts >= {trend_from} AND ts < {end}
    GROUP BY campaign, member
),
outcome AS (
    SELECT t.campaign, t.member, t.contacted,
        CASE WHEN t.at + INTERVAL '14' DAY <= {end} THEN 0 ELSE 1 END AS window_open,
        MAX(CASE WHEN a.member IS NULL THEN 0 ELSE 1 END) AS reactivated
    FROM targets t
    LEFT JOIN log a ON a.member = t.member AND a.kind IN ('message', 'post', 'reaction')
        AND a.ts > t.at AND a.ts < t.at + INTERVAL '14' DAY AND a.ts < {end}
    GROUP BY t.campaign, t.member, t.contacted, t.at
)
SELECT campaign,
    SUM(contacted) AS contacted,
    SUM(contacted * window_open) AS contacted_open,
    SUM(contacted * (1 - window_open) * reactivated) AS contacted_reactivated,
    SUM(1 - contacted) AS holdout,
    SUM((1 - contacted) * window_open) AS holdout_open,
    SUM((1 - contacted) * (1 - window_open) * reactivated) AS holdout_reactivated
FROM outcome
GROUP BY campaign
ORDER BY campaign
