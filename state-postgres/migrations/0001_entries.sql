-- The entries of every space: one row per key, live or expired-not-yet-reaped.
--
-- `space` and `id` compare with COLLATE "C", i.e. by bytes: scans list ids
-- in byte order (which for UTF-8 is code point order) whatever the
-- database's locale, and the primary key index serves the keyset
-- pagination of `scan` directly.
--
-- `expires_at` is NULL for entries without a TTL. It is a deadline on the
-- server's clock; every statement treats a row with
-- `expires_at <= now()` as absent.
CREATE TABLE {{entries}} (
    space      text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    value      bytea NOT NULL,
    version    bigint NOT NULL CHECK (version > 0),
    expires_at timestamptz,
    PRIMARY KEY (space, id)
);

-- Lets the reaper find expired rows without scanning the table. Partial:
-- entries without a TTL (the common case) do not pay for it.
CREATE INDEX "{{prefix}}_entries_expiry" ON {{entries}} (expires_at) WHERE expires_at IS NOT NULL;
