-- usage(spaces = $1, lock_prefix = $2): the rows this store holds for the
-- kit's storage checks: entry rows of the spaces (expired ones the reaper
-- has not deleted yet included) and lock rows whose names start with the
-- prefix (one per name ever locked: the row keeps the fencing counter).
SELECT (SELECT count(*) FROM {{entries}} WHERE space = ANY ($1)) AS records,
       (SELECT count(*) FROM {{locks}} WHERE starts_with(name, $2)) AS lock_records
