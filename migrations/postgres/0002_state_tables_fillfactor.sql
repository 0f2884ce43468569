-- ingest schema, PostgreSQL: room for HOT updates in the two tables every flush rewrites.
--
-- Each group-commit flush updates one sensor_rule_state row and one sensor_readings_latest row per sensor
-- it touches. With full pages every update writes a new index entry too; with free space on the page the
-- update is HOT (heap-only: no index write, and the old version is pruned on the page). Both tables hold
-- one row per sensor, so the space this costs is small. Existing pages keep their layout until rewritten
-- (VACUUM FULL sensor_rule_state, sensor_readings_latest applies it at once; not needed for correctness).
ALTER TABLE sensor_rule_state SET (fillfactor = 50);
ALTER TABLE sensor_readings_latest SET (fillfactor = 50);
