-- increment(space = $1, id = $2, delta = $3, ttl_ms = $4)
-- Fenced form: lock name $5, token $6 (see fence.sql). The last column,
-- `held`, is true; in the fenced form, when the fence does not hold, one
-- row with `held = false`, and nothing is changed.
--
-- Returns (true, value, version) after adding; (false, is_counter) when
-- the live value is not a canonical decimal i64 (is_counter = false: type
-- mismatch) or the sum leaves i64 (is_counter = true: overflow) - nothing
-- is changed then; NO row when the refusing row could not be read here
-- (the caller retries, as for put_if_absent.sql, whose argument applies
-- unchanged: the refused row stays locked by this statement).
--
-- A counter is the canonical text of an i64: `0`, or an optional `-` and a
-- non-zero digit followed by at most 18 more digits, within i64's range.
-- The text is tested on `encode(value, 'escape')`, which leaves digits and
-- `-` as they are and turns every other byte (non-ASCII, control,
-- backslash) into an escape the pattern cannot match, so no value - not
-- even invalid UTF-8 - can make the statement fail. CASE guards every
-- numeric cast, so only text that passed the pattern is ever cast.
--
-- An absent or expired key is (re)created at 0 + delta, version 1, with
-- the given TTL; a live counter keeps its deadline (a fixed window).
--
-- Expiry is decided on `clock_timestamp()`, with the row locked (see
-- put_always.sql for why not `now()`). The SET reads the clock once, so
-- its three columns agree on one decision. The WHERE, read a moment
-- earlier, only lets through a row that is expired or a valid counter; if
-- the row expires between the two, the SET starts a new window, which is
-- right at the SET's instant.
WITH {{fence:$5,$6}} written AS (
    INSERT INTO {{entries}} AS e (space, id, value, version, expires_at)
    SELECT $1::text, $2::text, convert_to($3::bigint::text, 'UTF8'), 1,
           clock_timestamp() + $4::float8 * interval '1 millisecond'
    WHERE {{held}}
    ON CONFLICT (space, id) DO UPDATE
    SET (value, version, expires_at) = (
        SELECT CASE WHEN moment.expired THEN excluded.value
                    ELSE convert_to((encode(e.value, 'escape')::numeric + $3::bigint)::text, 'UTF8') END,
               CASE WHEN moment.expired THEN 1 ELSE e.version + 1 END,
               CASE WHEN moment.expired THEN moment.now + $4::float8 * interval '1 millisecond'
                    ELSE e.expires_at END
        FROM (SELECT e.expires_at IS NOT NULL AND e.expires_at <= clock.now AS expired, clock.now
              FROM (SELECT clock_timestamp() AS now) AS clock) AS moment
    )
    WHERE (e.expires_at IS NOT NULL AND e.expires_at <= clock_timestamp())
       OR CASE WHEN length(e.value) > 20 THEN false
               WHEN encode(e.value, 'escape') !~ '^(0|-?[1-9][0-9]{0,18})$' THEN false
               ELSE encode(e.value, 'escape')::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
                    AND encode(e.value, 'escape')::numeric + $3::bigint
                        BETWEEN -9223372036854775808 AND 9223372036854775807
          END
    RETURNING e.value, e.version
), found AS (
    SELECT value
    FROM {{entries}}
    WHERE space = $1 AND id = $2 AND {{held}} AND NOT EXISTS (SELECT 1 FROM written)
    FOR UPDATE
)
SELECT true AS written, value, version, NULL::boolean AS is_counter, true AS held
FROM written
UNION ALL
SELECT false, NULL, NULL,
       CASE WHEN length(value) > 20 THEN false
            WHEN encode(value, 'escape') !~ '^(0|-?[1-9][0-9]{0,18})$' THEN false
            ELSE encode(value, 'escape')::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
       END,
       true
FROM found
UNION ALL
SELECT NULL, NULL, NULL, NULL, false
WHERE NOT {{held}}
