-- funnel: the onboarding funnel of the members who joined in the period (first join in the retained log, as in
-- activation): how many of them reached each step by the period's end: joined -> in Mailchimp (mailchimp_added) ->
-- welcomed (welcome journey started) -> drip finished -> active (a first message, post or reaction since joining).
-- Per platform of the join and "all".
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
steps AS (
    SELECT DISTINCT n.platform, n.member,
        CASE WHEN l.kind IN ('message', 'post', 'reaction') THEN 'active' ELSE l.kind END AS step
    FROM newcomers n
    JOIN log l ON l.member = n.member AND l.ts < {end}
        AND (l.kind IN ('mailchimp_added', 'welcomed', 'drip_finished')
            OR (l.kind IN ('message', 'post', 'reaction') AND l.ts >= n.joined_at))
)
SELECT n.platform,
    COUNT(DISTINCT n.member) AS joined,
    COUNT(DISTINCT CASE WHEN s.step = 'mailchimp_added' THEN s.member END) AS mailchimp_added,
    COUNT(DISTINCT CASE WHEN s.step = 'welcomed' THEN s.member END) AS welcomed,
    COUNT(DISTINCT CASE WHEN s.step = 'drip_finished' THEN s.member END) AS drip_finished,
    COUNT(DISTINCT CASE WHEN s.step = 'active' THEN s.member END) AS active
FROM newcomers n LEFT JOIN steps s ON s.member = n.member AND s.platform = n.platform
GROUP BY n.platform
ORDER BY n.platform
