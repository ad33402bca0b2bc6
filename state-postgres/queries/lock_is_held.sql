-- is_held(name = $1, owner = $2, fencing = $3): whether this acquisition's
-- lease is still live.
SELECT EXISTS (
    SELECT 1 FROM {{locks}}
    WHERE name = $1 AND owner = $2 AND fencing = $3 AND expires_at > clock_timestamp()
) AS held
