-- Lines of lock waiters: one row per `acquire` call that found its lock
-- held or someone before it in line (see queries/lock_try_acquire.sql). A
-- free lock goes to the live waiter with the smallest (ticket, waiter); a
-- waiter is live until `live_until`, which each of its attempts moves on.
-- A granted waiter deletes its row; a waiter that gave up deletes it
-- (lock_leave.sql); the rows of waiters that died are deleted by the next
-- grant of the same lock.
CREATE TABLE {{lock_waiters}} (
    name       text COLLATE "C" NOT NULL,
    waiter     text COLLATE "C" NOT NULL,
    ticket     bigint NOT NULL,
    live_until timestamptz NOT NULL,
    PRIMARY KEY (name, waiter)
);
