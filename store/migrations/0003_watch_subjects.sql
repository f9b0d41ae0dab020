-- Every watched subject once, with its latest check from whichever list made it: what the
-- regulators' statistics over all watched subjects count (contract §9), by index alone.

CREATE TABLE watch_subjects (
  uscc TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  status TEXT,
  credit_class TEXT,
  checked_at TEXT
);

CREATE INDEX watch_subjects_status ON watch_subjects (status);
CREATE INDEX watch_subjects_class ON watch_subjects (credit_class);
CREATE INDEX watch_subjects_region ON watch_subjects (region);
CREATE INDEX watch_members_by_code ON watch_members (uscc, checked_at);

INSERT INTO watch_subjects (uscc, region)
SELECT uscc, MIN(region) FROM watch_members GROUP BY uscc;

UPDATE watch_subjects SET
  status = (SELECT m.status FROM watch_members m WHERE m.uscc = watch_subjects.uscc
            AND m.status IS NOT NULL ORDER BY m.checked_at DESC LIMIT 1),
  credit_class = (SELECT m.credit_class FROM watch_members m WHERE m.uscc = watch_subjects.uscc
            AND m.status IS NOT NULL ORDER BY m.checked_at DESC LIMIT 1),
  checked_at = (SELECT MAX(m.checked_at) FROM watch_members m WHERE m.uscc = watch_subjects.uscc)
