ALTER TABLE codes ADD COLUMN next_attempt INTEGER;
CREATE TABLE attempts (
    id        INTEGER PRIMARY KEY,
    recipient TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX attempts_by_recipient ON attempts (recipient, at);
