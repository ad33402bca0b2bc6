-- One step of the background sweeper over one space (see sweeper.rs):
-- unindexes up to ARGV[2] ids whose entry has expired, with index.lua's
-- sweep_expired, the function creations use with a budget of a few.
--
-- KEYS[1]  the space's index
-- KEYS[2]  the space's expiry schedule
-- ARGV[1]  the entry-key prefix of the space; entry key = ARGV[1] .. id
-- ARGV[2]  the most ids to examine
-- Returns  {due, unindexed}: ids examined (fewer than ARGV[2]: the space
--          has none left that are due) and ids removed from the index.
local due, unindexed = sweep_expired(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
return {due, unindexed}
