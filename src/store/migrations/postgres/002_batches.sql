-- Schema 2: one list sent by several hosts at once (src/store/queue.rs, src/batch/shared.rs).
-- A batch is one list: its set of recipients, the kind of code and whether it replaces what
-- they hold. Each recipient of it is an item that one send run at a time claims, for a lease
-- that the run's heartbeat keeps extending; a run that stops beating loses its claims to the
-- others. Times here are the database server's clock, so the hosts' clocks need not agree.

CREATE TABLE send_runs (
    id        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch     BIGINT,
    host      TEXT        NOT NULL,
    pid       BIGINT      NOT NULL,
    -- How long the run's claims and `sending` records outlive its last heartbeat.
    lease_ms  BIGINT      NOT NULL CHECK (lease_ms > 0),
    started   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished  TIMESTAMPTZ
);

CREATE TABLE batches (
    id       BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Hex SHA-256 of the recipient set, the kind and --resend (see src/batch/shared.rs).
    identity TEXT        NOT NULL UNIQUE,
    kind     TEXT        NOT NULL CHECK (kind IN ('otp', 'key')),
    resend   BOOLEAN     NOT NULL,
    total    BIGINT      NOT NULL,
    created  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- When the last item was settled (NULL while any is open).
    finished TIMESTAMPTZ
);

ALTER TABLE send_runs
    ADD FOREIGN KEY (batch) REFERENCES batches (id) ON DELETE SET NULL;

CREATE TABLE batch_items (
    batch       BIGINT      NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    recipient   TEXT        NOT NULL,
    -- Line in the list of the run that made the batch; claims go in this order.
    line        BIGINT      NOT NULL,
    name        TEXT,
    state       TEXT        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'claimed', 'sent', 'skipped', 'failed')),
    claimed_by  BIGINT      REFERENCES send_runs (id) ON DELETE SET NULL,
    lease_until TIMESTAMPTZ,
    sent_by     BIGINT      REFERENCES send_runs (id) ON DELETE SET NULL,
    PRIMARY KEY (batch, recipient)
);
CREATE INDEX batch_items_open ON batch_items (batch, line) WHERE state IN ('pending', 'claimed');

-- The run that issued a code (NULL for codes issued before schema 2).
ALTER TABLE codes ADD COLUMN run BIGINT REFERENCES send_runs (id) ON DELETE SET NULL;
