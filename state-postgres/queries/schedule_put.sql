-- Puts or moves a schedule item (replace by id); a claim of it ends.
-- $1 space, $2 id, $3 due_at (ms since the epoch), $4 payload.
INSERT INTO {{schedules}} AS s (space, id, due_at, payload, owner, claimed_until)
VALUES ($1, $2, $3, $4, NULL, NULL)
ON CONFLICT (space, id) DO UPDATE
SET due_at = excluded.due_at, payload = excluded.payload, owner = NULL, claimed_until = NULL
