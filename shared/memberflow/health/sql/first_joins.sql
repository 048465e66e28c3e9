-- first_joins: the step activation, cohorts and the funnel share (a query puts it in its WITH list by name), so
-- they agree on who is new. `firsts`: per member and platform, and per member on any platform ('all'), the first
-- join (joined_at) and the first join or import (first_seen) in the whole retained log. A first join is one where
-- joined_at = first_seen: a member an import brought in was there before, and a later join of theirs is no first.
known AS (
    -- Every join and import in the retained log (its own scan: these kinds and columns only).
    SELECT member, platform, kind, ts
    FROM {table}
    WHERE dt BETWEEN '{history_from}' AND '{scan_last}' AND kind IN ('joined', 'imported')
),
joins AS (
    SELECT member, platform, MIN(ts) AS first_seen, MIN(CASE WHEN kind = 'joined' THEN ts END) AS joined_at
    FROM known GROUP BY member, platform
),
firsts AS (
    SELECT member, platform, first_seen, joined_at FROM joins
    UNION ALL
    SELECT member, 'all' AS platform, MIN(first_seen) AS first_seen, MIN(joined_at) AS joined_at
    FROM joins GROUP BY member
)
