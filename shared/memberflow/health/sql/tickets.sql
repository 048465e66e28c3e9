-- tickets: support tickets by category (from escalation).
-- opened/solved: tickets opened or solved in the period. First-response and resolution times: for the tickets
-- opened in the period, the time from opening to the first agent reply and to solving (seen by the period's end),
-- median in seconds. A ticket without a category is filed under "uncategorised".
WITH log AS (
    SELECT DISTINCT id, kind, ts, ticket, category
    FROM {table}
    WHERE dt BETWEEN '{scan_from}' AND '{scan_last}'
        AND kind IN ('ticket_opened', 'ticket_first_reply', 'ticket_solved')
),
tickets AS (
    SELECT ticket,
        MAX(COALESCE(category, 'uncategorised')) AS category,
        MIN(CASE WHEN kind = 'ticket_opened' THEN ts END) AS opened_at,
        MIN(CASE WHEN kind = 'ticket_first_reply' THEN ts END) AS first_reply_at,
        MIN(CASE WHEN kind = 'ticket_solved' THEN ts END) AS solved_at
    FROM log WHERE ts < {end}
    GROUP BY ticket
)
SELECT category,
    COUNT(CASE WHEN opened_at >= {start} THEN 1 END) AS opened,
    COUNT(CASE WHEN solved_at >= {start} THEN 1 END) AS solved,
    approx_percentile(CASE WHEN opened_at >= {start} THEN date_diff('second', opened_at, first_reply_at) END, 0.5)
        AS median_first_response_seconds,
    approx_percentile(CASE WHEN opened_at >= {start} THEN date_diff('second', opened_at, solved_at) END, 0.5)
        AS median_resolution_seconds
FROM tickets
WHERE opened_at >= {start} OR solved_at >= {start}
GROUP BY category
ORDER BY category
