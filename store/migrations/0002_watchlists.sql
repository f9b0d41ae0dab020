-- Watchlists, their members' latest checks, the changes found and their webhook deliveries
-- (contract §9). Portable SQL, as 0001. Booleans are 0/1 integers.

CREATE TABLE watchlists (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  name TEXT NOT NULL,
  webhook_url TEXT,
  webhook_secret TEXT,
  created_at TEXT NOT NULL,
  created_seq BIGINT NOT NULL
);

CREATE INDEX watchlists_by_client ON watchlists (client_id, created_seq);

-- One row per member: when it is due, who holds it, and its latest check. `state` is the
-- change detector's JSON (resolvers/changes.py); `phase` spreads refreshes over the interval.
CREATE TABLE watch_members (
  watchlist_id TEXT NOT NULL,
  uscc TEXT NOT NULL,
  added_seq BIGINT NOT NULL,
  region TEXT NOT NULL,
  phase DOUBLE PRECISION NOT NULL,
  due_at DOUBLE PRECISION NOT NULL,
  lease_owner TEXT,
  lease_until DOUBLE PRECISION,
  name TEXT,
  status TEXT,
  complete INTEGER,
  credit_class TEXT,
  since TEXT,
  checked_at TEXT,
  state TEXT,
  PRIMARY KEY (watchlist_id, uscc)
);

CREATE INDEX watch_members_due ON watch_members (due_at);
CREATE INDEX watch_members_order ON watch_members (watchlist_id, added_seq, uscc);
CREATE INDEX watch_members_status ON watch_members (watchlist_id, status);
CREATE INDEX watch_members_class ON watch_members (watchlist_id, credit_class);
CREATE INDEX watch_members_region ON watch_members (watchlist_id, region);

-- The active listings of each member's latest check, for the listing statistics.
CREATE TABLE watch_listings (
  watchlist_id TEXT NOT NULL,
  uscc TEXT NOT NULL,
  record_id TEXT NOT NULL,
  department TEXT NOT NULL,
  kind TEXT NOT NULL,
  listed_month TEXT,
  PRIMARY KEY (watchlist_id, uscc, record_id)
);

CREATE INDEX watch_listings_kind ON watch_listings (watchlist_id, kind);
CREATE INDEX watch_listings_month ON watch_listings (watchlist_id, listed_month);
CREATE INDEX watch_listings_department ON watch_listings (watchlist_id, department);

-- Numbers handed out in commit order (a row lock on PostgreSQL): a change's seq.
CREATE TABLE counters (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);

INSERT INTO counters (name, value) VALUES ('changes', 0);

-- Every change found, kept when its watchlist is deleted. `record` is the CreditRecord JSON.
CREATE TABLE changes (
  seq BIGINT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  watchlist_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  uscc TEXT NOT NULL,
  name TEXT,
  kind TEXT NOT NULL,
  record TEXT,
  previous_status TEXT,
  status TEXT,
  at TEXT NOT NULL
);

CREATE INDEX changes_by_list ON changes (watchlist_id, seq);
CREATE INDEX changes_by_client ON changes (client_id, seq);

-- One delivery per change of a list with a webhook: retried until a 2xx or give_up_at.
CREATE TABLE webhook_deliveries (
  change_seq BIGINT PRIMARY KEY,
  watchlist_id TEXT NOT NULL,
  url TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  due_at DOUBLE PRECISION NOT NULL,
  give_up_at DOUBLE PRECISION NOT NULL,
  lease_owner TEXT,
  lease_until DOUBLE PRECISION,
  delivered_at TEXT,
  last_error TEXT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered_at, due_at);
