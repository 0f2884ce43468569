-- ingest schema, PostgreSQL: the per-sensor time index also carries the columns `batch predict` reads.
--
-- The window query of `ingest batch predict` (the newest readings of a sensor by
-- COALESCE(device_timestamp, "timestamp") DESC, id DESC) read one heap page per reading: readings of many
-- sensors arrive interleaved, so a 60-reading window touched ~60 pages. With value, device_timestamp and
-- "timestamp" in the index (INCLUDE: stored in the leaf entries, not part of the key) the window is an
-- index-only scan of one or two leaf pages once the visibility map is set (autovacuum does that for
-- insert-only tables). The key is unchanged, so every query the old index served is served the same way;
-- it replaces the old index rather than adding one, so ingestion maintains the same number of indexes
-- (each entry is 24 bytes wider). On a large existing table this build locks writes to sensor_readings
-- for its duration: apply it in a quiet window, or first create the index by hand with CREATE INDEX
-- CONCURRENTLY under this name (IF NOT EXISTS then skips the build).
CREATE INDEX IF NOT EXISTS idx_sensor_readings_sensor_time_cov ON sensor_readings (sensor_id, (COALESCE(device_timestamp, "timestamp")), id) INCLUDE (value, device_timestamp, "timestamp");
DROP INDEX IF EXISTS idx_sensor_readings_sensor_time;
