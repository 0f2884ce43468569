-- ingest schema, SQL Server: ADDITIVE ONLY (same rules as 0001: guarded CREATE of our own table, nullable ADDs).
--
-- Dedup keys of the readings handed to dbo.sp_insert_reading_and_check_threshold (IOT_MSSQL_PROCEDURE=1):
-- the procedure writes dbo.sensor_readings itself without our dedup_key, so the keys live beside it, written
-- in the same transaction as the EXEC. Unused (and empty) when the rules engine writes the readings.
-- Rows are never pruned by ingest; a site may delete rows older than its replay horizon.
IF OBJECT_ID(N'dbo.ingest_reading_keys', N'U') IS NULL
CREATE TABLE dbo.ingest_reading_keys (
  sensor_id  bigint NOT NULL,
  dedup_key  nvarchar(300) NOT NULL,
  created_at datetime2 NOT NULL CONSTRAINT df_ingest_reading_keys_created_at DEFAULT SYSUTCDATETIME(),
  CONSTRAINT pk_ingest_reading_keys PRIMARY KEY (sensor_id, dedup_key)
);
GO

-- `ingest apply` writes created_at on insert and updated_at on update of every registry row, but a
-- delta_thresholds table created by the backend team (reference §5.3: no backend entity) may have neither.
IF COL_LENGTH(N'dbo.delta_thresholds', N'created_at') IS NULL ALTER TABLE dbo.delta_thresholds ADD created_at datetime2 NULL;
GO
IF COL_LENGTH(N'dbo.delta_thresholds', N'updated_at') IS NULL ALTER TABLE dbo.delta_thresholds ADD updated_at datetime2 NULL;
GO
