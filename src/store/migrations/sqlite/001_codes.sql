CREATE TABLE IF NOT EXISTS codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('otp', 'key')),
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    state      TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    last_step  INTEGER,
    message_id TEXT,
    otp_algorithm TEXT,
    otp_digits    INTEGER,
    otp_period    INTEGER,
    updated    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS codes_by_recipient ON codes (recipient, id);
