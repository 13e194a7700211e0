-- Recordings as written: whose voice (the candidate's or the interviewer's), the container, the data key that
-- seals the file (wrapped by the master key named), where the file starts on the session's clock, how long it
-- runs, and whether it was finished (a crash leaves it readable up to its last sealed chunk). `nonce` names the
-- nonce scheme: each chunk's nonce is its index under the recording's own key.
ALTER TABLE recordings ADD COLUMN source TEXT NOT NULL DEFAULT 'candidate';
ALTER TABLE recordings ADD COLUMN media_type TEXT NOT NULL DEFAULT 'audio/ogg';
ALTER TABLE recordings ADD COLUMN data_key TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN master_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN offset_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN duration_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN finished_at BIGINT;
-- Where the sealed file is: `local` (under the data directory) or `object` (the configured object store).
ALTER TABLE recordings ADD COLUMN location TEXT NOT NULL DEFAULT 'local';
CREATE INDEX recordings_by_interview ON recordings (interview_id);

-- The candidate's separate consent to have the interview (anonymised) in training-data exports.
ALTER TABLE interviews ADD COLUMN dataset_consent_at BIGINT;

-- A user's own retention for recordings, in days; unset: the server's default.
ALTER TABLE users ADD COLUMN recording_retention_days BIGINT;

-- Data keys that are not a recording's: `fields` seals sensitive text columns. Wrapped by the master key named.
CREATE TABLE vault_keys (
    name          TEXT PRIMARY KEY,
    data_key      TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
