-- ingest schema, SQLite (embedded default): every table. Times are ISO-8601 UTC text with milliseconds
-- (sortable), booleans 0/1, JSON text. The legacy table and column names (reference §5.3, §8.6, §2.3) without dbo.,
-- corrected: values are REAL, times are TEXT (UTC), JSON is TEXT, one-active rules are
-- unique partial indexes. Holds universal + operations, and IoT unless SQL Server is configured.

-- ---------------------------------------------------------------- legacy IoT tables
CREATE TABLE devices (
  id                      INTEGER PRIMARY KEY,
  device_uuid             TEXT NOT NULL UNIQUE,
  name                    TEXT,
  device_type             TEXT,
  status                  TEXT NOT NULL DEFAULT 'draft',
  provisioning_code       TEXT UNIQUE,
  last_connection         TEXT,
  metadata                TEXT,
  created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at              TEXT,
  deleted_at              TEXT,
  activation_attempts     INTEGER NOT NULL DEFAULT 0,
  last_activation_attempt TEXT,
  activated_from_ip       TEXT
);

CREATE TABLE sensors (
  id                      INTEGER PRIMARY KEY,
  device_id               INTEGER NOT NULL REFERENCES devices(id),
  sensor_uuid             TEXT NOT NULL,
  sensor_type             TEXT,
  name                    TEXT,
  unit                    TEXT,
  status                  TEXT NOT NULL DEFAULT 'draft',
  claim_token             TEXT UNIQUE,
  claim_token_expires     TEXT,
  reserved_by_user_id     INTEGER,
  reserved_at             TEXT,
  require_qr_confirmation INTEGER NOT NULL DEFAULT 0,
  api_key_hash            TEXT,
  api_key_prefix          TEXT,
  activated_at            TEXT,
  activated_by_user_id    INTEGER,
  activated_from_ip       TEXT,
  confirm_attempts        INTEGER NOT NULL DEFAULT 0,
  last_confirm_attempt    TEXT,
  is_active               INTEGER NOT NULL DEFAULT 1,
  operational_state       TEXT NOT NULL DEFAULT 'INITIALIZING',
  valid_readings_count    INTEGER NOT NULL DEFAULT 0,
  min_readings_for_normal INTEGER NOT NULL DEFAULT 10,
  resolve_after_readings  INTEGER NOT NULL DEFAULT 3,
  state_changed_at        TEXT,
  created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at              TEXT,
  is_deleted              INTEGER NOT NULL DEFAULT 0,
  deleted_at              TEXT,
  CONSTRAINT sensors_device_sensor_uuid UNIQUE (device_id, sensor_uuid)
);
CREATE INDEX idx_sensors_uuid ON sensors (sensor_uuid);

-- `timestamp` is the server's ingest time, `device_timestamp` the device's; `dedup_key` decides duplicates.
CREATE TABLE sensor_readings (
  id               INTEGER PRIMARY KEY,
  sensor_id        INTEGER NOT NULL,
  value            REAL NOT NULL,
  "timestamp"      TEXT NOT NULL,
  device_timestamp TEXT,
  dedup_key        TEXT,
  sequence         INTEGER,
  classification   TEXT,
  reason_codes     TEXT,
  transport        TEXT
);
CREATE UNIQUE INDEX ux_sensor_readings_dedup ON sensor_readings (sensor_id, dedup_key);
CREATE INDEX idx_sensor_readings_sensor_time ON sensor_readings (sensor_id, (COALESCE(device_timestamp, "timestamp")), id);

CREATE TABLE sensor_readings_latest (
  sensor_id        INTEGER PRIMARY KEY,
  latest_value     REAL NOT NULL,
  latest_timestamp TEXT NOT NULL,
  reading_id       INTEGER
);

CREATE TABLE alert_thresholds (
  id                   INTEGER PRIMARY KEY,
  sensor_id            INTEGER NOT NULL REFERENCES sensors(id),
  name                 TEXT,
  condition_type       TEXT NOT NULL CHECK (condition_type IN ('greater_than', 'less_than', 'equal_to', 'out_of_range')),
  threshold_value_min  REAL,
  threshold_value_max  REAL,
  severity             TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
  is_active            INTEGER NOT NULL DEFAULT 1,
  consecutive_readings INTEGER NOT NULL DEFAULT 1,
  created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at           TEXT
);
CREATE INDEX idx_alert_thresholds_sensor ON alert_thresholds (sensor_id) WHERE is_active = 1;

CREATE TABLE delta_thresholds (
  id            INTEGER PRIMARY KEY,
  sensor_id     INTEGER NOT NULL REFERENCES sensors(id),
  abs_delta     REAL,
  rel_delta     REAL,
  abs_slope     REAL,
  rel_slope     REAL,
  severity      TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
  is_active     INTEGER NOT NULL DEFAULT 1,
  cooldown_sec  INTEGER NOT NULL DEFAULT 300,
  min_delta_abs REAL,
  min_readings  INTEGER NOT NULL DEFAULT 5,
  max_gap_sec   INTEGER NOT NULL DEFAULT 600,
  created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at    TEXT
);
CREATE INDEX idx_delta_thresholds_sensor ON delta_thresholds (sensor_id) WHERE is_active = 1;

CREATE TABLE alerts (
  id              INTEGER PRIMARY KEY,
  threshold_id    INTEGER,
  sensor_id       INTEGER NOT NULL,
  device_id       INTEGER NOT NULL,
  severity        TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'active',
  triggered_value REAL NOT NULL,
  triggered_at    TEXT NOT NULL,
  acknowledged_at TEXT,
  acknowledged_by INTEGER,
  resolved_at     TEXT,
  resolved_by     INTEGER
);
CREATE UNIQUE INDEX ux_alerts_one_active ON alerts (sensor_id) WHERE status = 'active';

CREATE TABLE alert_notifications (
  id              INTEGER PRIMARY KEY,
  source          TEXT NOT NULL,
  source_event_id INTEGER NOT NULL,
  severity        TEXT NOT NULL,
  title           TEXT NOT NULL,
  message         TEXT,
  is_read         INTEGER NOT NULL DEFAULT 0,
  created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  read_at         TEXT,
  sensor_id       INTEGER,
  device_id       INTEGER,
  triggered_value REAL,
  event_type      TEXT,
  snapshot_data   TEXT
);
CREATE INDEX idx_alert_notifications_source ON alert_notifications (source, source_event_id);

CREATE TABLE ml_events (
  id              INTEGER PRIMARY KEY,
  device_id       INTEGER NOT NULL,
  sensor_id       INTEGER,
  prediction_id   INTEGER,
  event_type      TEXT NOT NULL,
  event_code      TEXT NOT NULL,
  title           TEXT NOT NULL,
  message         TEXT,
  status          TEXT NOT NULL DEFAULT 'active',
  created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  acknowledged_at TEXT,
  acknowledged_by INTEGER,
  resolved_at     TEXT,
  resolved_by     INTEGER,
  payload         TEXT
);
CREATE UNIQUE INDEX ux_ml_events_one_active_delta_spike ON ml_events (sensor_id) WHERE status = 'active' AND event_code = 'DELTA_SPIKE';
CREATE INDEX idx_ml_events_sensor_code ON ml_events (sensor_id, event_code, created_at DESC);

CREATE TABLE ml_models (
  id         INTEGER PRIMARY KEY,
  sensor_id  INTEGER NOT NULL,
  model_name TEXT NOT NULL,
  model_type TEXT NOT NULL,
  version    TEXT NOT NULL,
  is_active  INTEGER NOT NULL DEFAULT 0,
  trained_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  accuracy   REAL,
  metadata   TEXT
);
CREATE INDEX idx_ml_models_sensor ON ml_models (sensor_id, model_type);

CREATE TABLE predictions (
  id               INTEGER PRIMARY KEY,
  model_id         INTEGER NOT NULL REFERENCES ml_models(id),
  sensor_id        INTEGER NOT NULL,
  device_id        INTEGER NOT NULL,
  predicted_value  REAL NOT NULL,
  confidence       REAL NOT NULL,
  predicted_at     TEXT NOT NULL,
  target_timestamp TEXT NOT NULL,
  horizon_minutes  INTEGER,
  trend            TEXT,
  window_points    INTEGER,
  is_anomaly       INTEGER,
  anomaly_score    REAL,
  risk_level       TEXT,
  severity         TEXT,
  status           TEXT,
  explanation      TEXT
);
CREATE INDEX idx_predictions_sensor_time ON predictions (sensor_id, predicted_at DESC);
CREATE INDEX idx_predictions_anomaly ON predictions (anomaly_score DESC) WHERE is_anomaly = 1 AND explanation IS NULL;

CREATE TABLE ml_watermarks (
  sensor_id         INTEGER PRIMARY KEY,
  last_reading_id   INTEGER,
  last_processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Device keys: `kid` is the public lookup id of ingd_ keys; legacy keys (no prefix) are found by hash.
CREATE TABLE device_api_keys (
  id           INTEGER PRIMARY KEY,
  device_id    INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  api_key_hash TEXT NOT NULL,
  key_name     TEXT,
  kid          TEXT UNIQUE,
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  last_used_at TEXT,
  expires_at   TEXT,
  revoked_at   TEXT,
  is_active    INTEGER NOT NULL DEFAULT 1,
  metadata     TEXT
);
CREATE UNIQUE INDEX ux_device_api_keys_hash ON device_api_keys (api_key_hash);

-- Per-sensor rule state, updated in the same transaction as the readings (DESIGN §2).
CREATE TABLE sensor_rule_state (
  sensor_id  INTEGER PRIMARY KEY,
  state      TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- ---------------------------------------------------------------- universal tables
CREATE TABLE stream_configs (
  id                   INTEGER PRIMARY KEY,
  stream_id            TEXT NOT NULL,
  source_id            TEXT NOT NULL,
  domain               TEXT NOT NULL DEFAULT 'generic',
  display_name         TEXT,
  unit                 TEXT,
  enable_ml_prediction INTEGER NOT NULL DEFAULT 1,
  enable_alerting      INTEGER NOT NULL DEFAULT 1,
  domain_metadata      TEXT NOT NULL DEFAULT '{}',
  created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  CONSTRAINT stream_configs_key UNIQUE (stream_id, source_id, domain)
);
CREATE INDEX idx_stream_configs_domain ON stream_configs (domain);
CREATE INDEX idx_stream_configs_source ON stream_configs (source_id, domain);

CREATE TABLE value_constraints (
  id                              INTEGER PRIMARY KEY,
  stream_config_id                INTEGER NOT NULL UNIQUE REFERENCES stream_configs(id) ON DELETE CASCADE,
  physical_min                    REAL,
  physical_max                    REAL,
  operational_min                 REAL,
  operational_max                 REAL,
  warning_min                     REAL,
  warning_max                     REAL,
  critical_min                    REAL,
  critical_max                    REAL,
  max_abs_delta                   REAL,
  max_rel_delta                   REAL,
  noise_abs_threshold             REAL,
  z_score_threshold               REAL NOT NULL DEFAULT 3.0,
  consecutive_violations_required INTEGER NOT NULL DEFAULT 1,
  cooldown_seconds                INTEGER NOT NULL DEFAULT 300,
  store_out_of_physical           INTEGER NOT NULL DEFAULT 0,
  created_at                      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at                      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE data_points (
  id              INTEGER PRIMARY KEY,
  stream_id       TEXT NOT NULL,
  source_id       TEXT NOT NULL,
  domain          TEXT NOT NULL,
  value           REAL NOT NULL,
  "timestamp"     TEXT NOT NULL,
  classification  TEXT NOT NULL DEFAULT 'normal',
  sequence        INTEGER NOT NULL DEFAULT -1,
  domain_metadata TEXT NOT NULL DEFAULT '{}',
  ingested_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  CONSTRAINT data_points_key UNIQUE (domain, source_id, stream_id, "timestamp", sequence)
);
CREATE INDEX idx_dp_stream_time ON data_points (stream_id, source_id, "timestamp" DESC);
CREATE INDEX idx_dp_classification ON data_points (classification) WHERE classification <> 'normal';

CREATE TABLE stream_rule_state (
  series_id  TEXT PRIMARY KEY,
  state      TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE stream_alerts (
  id                 INTEGER PRIMARY KEY,
  stream_id          TEXT NOT NULL,
  source_id          TEXT NOT NULL,
  domain             TEXT NOT NULL,
  severity           TEXT NOT NULL,
  value              REAL NOT NULL,
  threshold_violated TEXT,
  message            TEXT,
  triggered_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  resolved_at        TEXT,
  is_active          INTEGER NOT NULL DEFAULT 1,
  resolution_reason  TEXT
);
CREATE UNIQUE INDEX ux_stream_alerts_one_active ON stream_alerts (domain, source_id, stream_id) WHERE is_active = 1;

CREATE TABLE csv_import_jobs (
  id             TEXT PRIMARY KEY,
  source_id      TEXT,
  domain         TEXT,
  filename       TEXT,
  status         TEXT NOT NULL DEFAULT 'pending',
  total_rows     INTEGER NOT NULL DEFAULT 0,
  processed_rows INTEGER NOT NULL DEFAULT 0,
  inserted_rows  INTEGER NOT NULL DEFAULT 0,
  rejected_rows  INTEGER NOT NULL DEFAULT 0,
  error          TEXT,
  created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at     TEXT,
  completed_at   TEXT
);
CREATE INDEX idx_csv_jobs_status ON csv_import_jobs (status, created_at DESC);

-- ---------------------------------------------------------------- operations tables
-- Role keys ingk_<kid>_...: stored as SHA-256, looked up by kid. No seed row (the legacy seed hash was a placeholder).
CREATE TABLE api_keys (
  id                INTEGER PRIMARY KEY,
  kid               TEXT NOT NULL UNIQUE,
  key_hash          TEXT NOT NULL UNIQUE,
  key_prefix        TEXT NOT NULL,
  name              TEXT,
  role              TEXT NOT NULL DEFAULT 'source_writer' CHECK (role IN ('admin', 'source_writer', 'read_only')),
  allowed_source_id TEXT,
  allowed_domains   TEXT NOT NULL DEFAULT '[]',
  is_active         INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  expires_at        TEXT,
  revoked_at        TEXT,
  last_used_at      TEXT,
  created_by        TEXT,
  CONSTRAINT chk_admin_permissions CHECK (role = 'admin' OR role = 'read_only' OR (role = 'source_writer' AND allowed_source_id IS NOT NULL))
);

CREATE TABLE ingestion_audit_log (
  id             INTEGER PRIMARY KEY,
  series_id      TEXT NOT NULL,
  domain         TEXT NOT NULL,
  source_id      TEXT NOT NULL,
  value          REAL,
  classification TEXT,
  transport      TEXT NOT NULL,
  api_key_hash   TEXT,
  client_ip      TEXT,
  data_timestamp TEXT NOT NULL,
  ingested_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  status         TEXT NOT NULL,
  error_message  TEXT,
  metadata       TEXT
);
CREATE INDEX idx_audit_timestamp ON ingestion_audit_log (ingested_at DESC);

CREATE TABLE security_audit_log (
  id          INTEGER PRIMARY KEY,
  ts          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  event_type  TEXT NOT NULL,
  outcome     TEXT NOT NULL,
  actor_type  TEXT NOT NULL,
  actor_kid   TEXT,
  actor_role  TEXT,
  source_ip   TEXT,
  transport   TEXT,
  request_id  TEXT,
  target_type TEXT,
  target_id   TEXT,
  reason_code TEXT,
  details     TEXT
);
CREATE INDEX idx_security_audit_ts ON security_audit_log (ts DESC);

-- The audit tables are append-only: updates and deletes are refused by the database.
CREATE TRIGGER trg_ingestion_audit_no_update BEFORE UPDATE ON ingestion_audit_log BEGIN SELECT RAISE(ABORT, 'audit tables are append-only'); END;
CREATE TRIGGER trg_ingestion_audit_no_delete BEFORE DELETE ON ingestion_audit_log BEGIN SELECT RAISE(ABORT, 'audit tables are append-only'); END;
CREATE TRIGGER trg_security_audit_no_update BEFORE UPDATE ON security_audit_log BEGIN SELECT RAISE(ABORT, 'audit tables are append-only'); END;
CREATE TRIGGER trg_security_audit_no_delete BEFORE DELETE ON security_audit_log BEGIN SELECT RAISE(ABORT, 'audit tables are append-only'); END;

CREATE TABLE idempotency_keys (
  scope        TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'in_flight',
  http_status  INTEGER,
  response     TEXT,
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  expires_at   TEXT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idx_idempotency_expires ON idempotency_keys (expires_at);

CREATE TABLE job_runs (
  id         INTEGER PRIMARY KEY,
  job        TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'running',
  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  ended_at   TEXT,
  counts     TEXT NOT NULL DEFAULT '{}',
  options    TEXT NOT NULL DEFAULT '{}',
  error      TEXT,
  host       TEXT
);
CREATE INDEX idx_job_runs_job ON job_runs (job, started_at DESC);

CREATE TABLE dead_letters (
  id              INTEGER PRIMARY KEY,
  entry_id        TEXT NOT NULL UNIQUE,
  transport       TEXT NOT NULL,
  stage           TEXT NOT NULL,
  error_class     TEXT NOT NULL,
  error           TEXT NOT NULL,
  payload         TEXT NOT NULL,
  sensor_id       INTEGER,
  series_id       TEXT,
  msg_id          TEXT,
  status          TEXT NOT NULL DEFAULT 'pending',
  attempts        INTEGER NOT NULL DEFAULT 0,
  first_failed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  last_failed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  replayed_at     TEXT
);
CREATE INDEX idx_dead_letters_status ON dead_letters (status, first_failed_at);
