-- ingest schema, SQL Server: ADDITIVE ONLY.
-- SQL Server holds only the IoT store: the legacy dbo tables (reference §5.3) that belong to the backend team.
-- This file creates our own tables when they are missing and adds our columns to the legacy tables as NULLABLE
-- columns without defaults (a metadata-only change: no table rewrite, no long lock). Code reading them treats
-- NULL as the default (consecutive_readings 1, resolve_after_readings 3, cooldown_sec 300, min_readings 5,
-- max_gap_sec 600). Indexes on legacy tables live in 0002 and need `ingest db migrate --alter-legacy`.
-- One statement per batch: a column added in a batch cannot be referenced later in the same batch, and every
-- step is guarded, so a database the backend team already prepared by hand is fine.

-- The legacy tables must exist (ingest never creates the backend's tables, except the two it alone defines
-- below): fail with their names rather than with "Invalid object name" halfway through.
DECLARE @missing nvarchar(2000);
SELECT @missing = COALESCE(@missing + N', ', N'') + N'dbo.' + t.name
FROM (VALUES (N'devices'), (N'sensors'), (N'sensor_readings'), (N'sensor_readings_latest'), (N'alert_thresholds'),
             (N'alerts'), (N'alert_notifications'), (N'ml_events'), (N'ml_models'), (N'predictions'),
             (N'device_api_keys')) AS t(name)
WHERE OBJECT_ID(N'dbo.' + t.name, N'U') IS NULL;
IF @missing IS NOT NULL
BEGIN
  RAISERROR(N'legacy IoT tables missing: %s. They belong to the backend team: point MSSQL_URL/DB_NAME at the IoT database, or create them first.', 16, 1, @missing);
  RETURN;
END
GO

-- ---------------------------------------------------------------- our own tables
-- Per-sensor rule state, updated in the same transaction as the readings (DESIGN §2). JSON text.
IF OBJECT_ID(N'dbo.sensor_rule_state', N'U') IS NULL
CREATE TABLE dbo.sensor_rule_state (
  sensor_id  bigint NOT NULL CONSTRAINT pk_sensor_rule_state PRIMARY KEY,
  state      nvarchar(max) NOT NULL,
  updated_at datetime2 NOT NULL CONSTRAINT df_sensor_rule_state_updated_at DEFAULT SYSUTCDATETIME()
);
GO

-- delta_thresholds has no backend entity (the backend queries it raw), so some sites lack it: create it whole.
-- No foreign key to dbo.sensors: our table must never block the backend team's deletes.
IF OBJECT_ID(N'dbo.delta_thresholds', N'U') IS NULL
CREATE TABLE dbo.delta_thresholds (
  id            bigint IDENTITY(1,1) NOT NULL CONSTRAINT pk_delta_thresholds PRIMARY KEY,
  sensor_id     bigint NOT NULL,
  abs_delta     float NULL,
  rel_delta     float NULL,
  abs_slope     float NULL,
  rel_slope     float NULL,
  severity      varchar(50) NOT NULL CONSTRAINT df_delta_thresholds_severity DEFAULT 'warning'
                CONSTRAINT ck_delta_thresholds_severity CHECK (severity IN ('info', 'warning', 'critical')),
  is_active     bit NOT NULL CONSTRAINT df_delta_thresholds_is_active DEFAULT 1,
  cooldown_sec  int NULL,
  min_delta_abs float NULL,
  min_readings  int NULL,
  max_gap_sec   int NULL,
  created_at    datetime2 NOT NULL CONSTRAINT df_delta_thresholds_created_at DEFAULT SYSUTCDATETIME(),
  updated_at    datetime2 NULL
);
GO

-- Watermarks of `batch predict` (reference §5.3 †: not every site has it).
IF OBJECT_ID(N'dbo.ml_watermarks', N'U') IS NULL
CREATE TABLE dbo.ml_watermarks (
  sensor_id         bigint NOT NULL CONSTRAINT pk_ml_watermarks PRIMARY KEY,
  last_reading_id   bigint NULL,
  last_processed_at datetime2 NOT NULL CONSTRAINT df_ml_watermarks_last_processed_at DEFAULT SYSUTCDATETIME()
);
GO

-- ---------------------------------------------------------------- our columns on legacy tables (nullable)
-- sensor_readings: `timestamp` is the server's ingest time, `device_timestamp` the device's; dedup_key decides
-- duplicates (its unique index is in 0002); reason_codes is JSON text.
IF COL_LENGTH(N'dbo.sensor_readings', N'device_timestamp') IS NULL ALTER TABLE dbo.sensor_readings ADD device_timestamp datetime2(6) NULL;
GO
IF COL_LENGTH(N'dbo.sensor_readings', N'dedup_key') IS NULL ALTER TABLE dbo.sensor_readings ADD dedup_key nvarchar(300) NULL;
GO
IF COL_LENGTH(N'dbo.sensor_readings', N'sequence') IS NULL ALTER TABLE dbo.sensor_readings ADD sequence bigint NULL;
GO
IF COL_LENGTH(N'dbo.sensor_readings', N'classification') IS NULL ALTER TABLE dbo.sensor_readings ADD classification varchar(20) NULL;
GO
IF COL_LENGTH(N'dbo.sensor_readings', N'reason_codes') IS NULL ALTER TABLE dbo.sensor_readings ADD reason_codes nvarchar(max) NULL;
GO
IF COL_LENGTH(N'dbo.sensor_readings', N'transport') IS NULL ALTER TABLE dbo.sensor_readings ADD transport varchar(16) NULL;
GO

-- The reading that set the latest value, so "latest" can order by (time, id) like every other engine.
IF COL_LENGTH(N'dbo.sensor_readings_latest', N'reading_id') IS NULL ALTER TABLE dbo.sensor_readings_latest ADD reading_id bigint NULL;
GO

IF COL_LENGTH(N'dbo.sensors', N'resolve_after_readings') IS NULL ALTER TABLE dbo.sensors ADD resolve_after_readings int NULL;
GO

IF COL_LENGTH(N'dbo.alert_thresholds', N'consecutive_readings') IS NULL ALTER TABLE dbo.alert_thresholds ADD consecutive_readings int NULL;
GO

-- A delta_thresholds table the backend created may lack the SP-only columns.
IF COL_LENGTH(N'dbo.delta_thresholds', N'cooldown_sec') IS NULL ALTER TABLE dbo.delta_thresholds ADD cooldown_sec int NULL;
GO
IF COL_LENGTH(N'dbo.delta_thresholds', N'min_delta_abs') IS NULL ALTER TABLE dbo.delta_thresholds ADD min_delta_abs float NULL;
GO
IF COL_LENGTH(N'dbo.delta_thresholds', N'min_readings') IS NULL ALTER TABLE dbo.delta_thresholds ADD min_readings int NULL;
GO
IF COL_LENGTH(N'dbo.delta_thresholds', N'max_gap_sec') IS NULL ALTER TABLE dbo.delta_thresholds ADD max_gap_sec int NULL;
GO

-- `kid` is the public lookup id of ingd_ device keys; legacy keys (no kid) are found by hash.
IF COL_LENGTH(N'dbo.device_api_keys', N'kid') IS NULL ALTER TABLE dbo.device_api_keys ADD kid varchar(32) NULL;
GO
