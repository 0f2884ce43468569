-- alters-legacy
-- The line above tells the migrator that this file alters the backend team's tables: it runs only with
-- `ingest db migrate --alter-legacy` and otherwise stays pending (reported by `ingest db status`).
--
-- Unique filtered indexes that make the database enforce our invariants (DESIGN §2): one active alert per
-- sensor, one active DELTA_SPIKE event per sensor, one reading per (sensor, dedup key), one device key per kid.
-- SQL Server unique indexes treat NULLs as equal, hence `WHERE ... IS NOT NULL` on the nullable keys.
--
-- Before using --alter-legacy, check with the backend team:
--  * the backend's comment says "one active alert per (sensor_id, severity)": if it opens one active alert per
--    severity, ux_alerts_one_active makes its second insert fail;
--  * every session writing these tables must run with ANSI_NULLS, ANSI_PADDING, ANSI_WARNINGS, ARITHABORT,
--    CONCAT_NULL_YIELDS_NULL and QUOTED_IDENTIFIER ON and NUMERIC_ROUNDABORT OFF, and the procedures writing them
--    (sp_insert_reading_and_check_threshold) must have been created with QUOTED_IDENTIFIER and ANSI_NULLS ON,
--    or their INSERT/UPDATE fails with error 1934 once a filtered index exists;
--  * building ux_sensor_readings_dedup reads the whole of sensor_readings and blocks its writers meanwhile:
--    run it in a maintenance window.
-- Each index is preceded by a check that refuses, with a count and a way out, when existing rows would violate
-- it (instead of a bare duplicate-key error 1505); RETURN ends the batch so the CREATE never runs after it.

IF EXISTS (SELECT sensor_id FROM dbo.alerts WHERE status = 'active' GROUP BY sensor_id HAVING COUNT(*) > 1)
BEGIN
  DECLARE @alerts int = (SELECT COUNT(*) FROM (SELECT sensor_id FROM dbo.alerts WHERE status = 'active' GROUP BY sensor_id HAVING COUNT(*) > 1) AS d);
  RAISERROR(N'cannot create ux_alerts_one_active: %d sensor(s) have more than one active alert in dbo.alerts. Resolve the extra ones (keep the newest per sensor) and run "ingest db migrate --alter-legacy" again.', 16, 1, @alerts);
  RETURN;
END
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ux_alerts_one_active' AND object_id = OBJECT_ID(N'dbo.alerts'))
  CREATE UNIQUE NONCLUSTERED INDEX ux_alerts_one_active ON dbo.alerts (sensor_id) WHERE status = 'active';
GO

IF EXISTS (SELECT sensor_id FROM dbo.ml_events WHERE status = 'active' AND event_code = 'DELTA_SPIKE' GROUP BY sensor_id HAVING COUNT(*) > 1)
BEGIN
  DECLARE @events int = (SELECT COUNT(*) FROM (SELECT sensor_id FROM dbo.ml_events WHERE status = 'active' AND event_code = 'DELTA_SPIKE' GROUP BY sensor_id HAVING COUNT(*) > 1) AS d);
  RAISERROR(N'cannot create ux_ml_events_one_active_delta_spike: %d sensor(s) have more than one active DELTA_SPIKE event in dbo.ml_events. Resolve the extra ones (keep the newest per sensor) and run "ingest db migrate --alter-legacy" again.', 16, 1, @events);
  RETURN;
END
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ux_ml_events_one_active_delta_spike' AND object_id = OBJECT_ID(N'dbo.ml_events'))
  CREATE UNIQUE NONCLUSTERED INDEX ux_ml_events_one_active_delta_spike ON dbo.ml_events (sensor_id) WHERE status = 'active' AND event_code = 'DELTA_SPIKE';
GO

IF EXISTS (SELECT sensor_id FROM dbo.sensor_readings WHERE dedup_key IS NOT NULL GROUP BY sensor_id, dedup_key HAVING COUNT(*) > 1)
BEGIN
  DECLARE @readings int = (SELECT COUNT(*) FROM (SELECT sensor_id FROM dbo.sensor_readings WHERE dedup_key IS NOT NULL GROUP BY sensor_id, dedup_key HAVING COUNT(*) > 1) AS d);
  RAISERROR(N'cannot create ux_sensor_readings_dedup: %d (sensor_id, dedup_key) pair(s) occur more than once in dbo.sensor_readings. Delete the duplicate readings or set their dedup_key to NULL, and run "ingest db migrate --alter-legacy" again.', 16, 1, @readings);
  RETURN;
END
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ux_sensor_readings_dedup' AND object_id = OBJECT_ID(N'dbo.sensor_readings'))
  CREATE UNIQUE NONCLUSTERED INDEX ux_sensor_readings_dedup ON dbo.sensor_readings (sensor_id, dedup_key) WHERE dedup_key IS NOT NULL;
GO

IF EXISTS (SELECT kid FROM dbo.device_api_keys WHERE kid IS NOT NULL GROUP BY kid HAVING COUNT(*) > 1)
BEGIN
  DECLARE @keys int = (SELECT COUNT(*) FROM (SELECT kid FROM dbo.device_api_keys WHERE kid IS NOT NULL GROUP BY kid HAVING COUNT(*) > 1) AS d);
  RAISERROR(N'cannot create ux_device_api_keys_kid: %d kid value(s) occur more than once in dbo.device_api_keys. Revoke and delete the duplicate keys, and run "ingest db migrate --alter-legacy" again.', 16, 1, @keys);
  RETURN;
END
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ux_device_api_keys_kid' AND object_id = OBJECT_ID(N'dbo.device_api_keys'))
  CREATE UNIQUE NONCLUSTERED INDEX ux_device_api_keys_kid ON dbo.device_api_keys (kid) WHERE kid IS NOT NULL;
GO
