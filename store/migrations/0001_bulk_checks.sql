-- Bulk checks (contract §8). Portable SQL: SQLite and PostgreSQL run this file as it is.
-- Times a person reads are ISO 8601 text with their offset; times compared (due, leases)
-- are seconds since the epoch, the same on every replica.

CREATE TABLE bulk_checks (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  label TEXT,
  scenario TEXT,
  state TEXT NOT NULL,
  total INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  created_seq BIGINT NOT NULL,
  finished_at TEXT
);

CREATE INDEX bulk_checks_by_client ON bulk_checks (client_id, created_seq);

-- One row per submitted position: the code as sent, its normal form, or why it is invalid.
CREATE TABLE bulk_items (
  check_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  uscc TEXT NOT NULL,
  code TEXT,
  error TEXT,
  message TEXT,
  PRIMARY KEY (check_id, idx)
);

-- One row per distinct valid code: the work, its lease, and once final its frozen result.
CREATE TABLE bulk_codes (
  check_id TEXT NOT NULL,
  code TEXT NOT NULL,
  first_idx INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  due_at DOUBLE PRECISION NOT NULL,
  first_failed_at DOUBLE PRECISION,
  lease_owner TEXT,
  lease_until DOUBLE PRECISION,
  status TEXT,
  result TEXT,
  PRIMARY KEY (check_id, code)
);

CREATE INDEX bulk_codes_work ON bulk_codes (state, due_at);
