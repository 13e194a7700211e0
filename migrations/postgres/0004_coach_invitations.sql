-- A candidate invites a coach by email to watch an interview: the link carries a secret token (only its sha256
-- is kept); accepting it shares the interview with the accepting account.
CREATE TABLE coach_invitations (
    id           TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    accepted_at  BIGINT
);
CREATE INDEX coach_invitations_interview ON coach_invitations (interview_id);
