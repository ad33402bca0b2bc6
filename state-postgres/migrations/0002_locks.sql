-- Locks: one row per lock name ever acquired. Rows are never deleted:
-- `fencing` must keep increasing across releases and expiries, so
-- forgetting a row would reissue old tokens. A free lock has owner and
-- expires_at NULL (released) or expires_at in the past (abandoned).
CREATE TABLE {{locks}} (
    name       text COLLATE "C" PRIMARY KEY,
    owner      text,
    fencing    bigint NOT NULL CHECK (fencing > 0),
    expires_at timestamptz,
    CHECK ((owner IS NULL) = (expires_at IS NULL))
);
