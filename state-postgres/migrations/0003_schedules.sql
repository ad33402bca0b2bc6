-- Schedules: one row per item. An item is waiting (owner NULL) or claimed
-- (owner and claimed_until set); a claim whose claimed_until has passed on
-- the server's clock counts as waiting again. Ids and spaces compare as
-- bytes (COLLATE "C"), the contract's order.
CREATE TABLE {{schedules}} (
    space         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    due_at        bigint NOT NULL CHECK (due_at >= 0),
    payload       bytea NOT NULL,
    owner         text,
    claimed_until timestamptz,
    PRIMARY KEY (space, id),
    CHECK ((owner IS NULL) = (claimed_until IS NULL))
);
-- The waiting items of a space in due order: `due` and `claim` read the
-- first few, whatever the schedule holds.
CREATE INDEX "{{prefix}}_schedules_waiting" ON {{schedules}} (space, due_at, id) WHERE owner IS NULL;
-- The claimed items of a space by lease deadline: the expired ones are
-- found without walking the live ones.
CREATE INDEX "{{prefix}}_schedules_claimed" ON {{schedules}} (space, claimed_until) WHERE owner IS NOT NULL;
