-- Candor's whole data model (DESIGN.md "Data model"). Times are Unix milliseconds (BIGINT); ids are UUID text;
-- structured values (word timings, metric samples, strengths) are JSON text. SQLite has the same schema.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('candidate', 'coach', 'admin')),
    target_role      TEXT,
    experience_level TEXT CHECK (experience_level IN ('intern', 'junior', 'mid', 'senior', 'staff')),
    interview_quota  BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- Rotating refresh tokens. Only a SHA-256 of each token is kept. Rotation marks the old token spent; presenting
-- a spent token again revokes its whole family (every token descended from one login).
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    spent_at    BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE interviews (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 TEXT NOT NULL,
    interview_type       TEXT NOT NULL CHECK (interview_type IN ('behavioral', 'technical', 'hr', 'mixed')),
    experience_level     TEXT NOT NULL CHECK (experience_level IN ('intern', 'junior', 'mid', 'senior', 'staff')),
    status               TEXT NOT NULL CHECK (status IN ('scheduled', 'in_progress', 'completed', 'abandoned')),
    question_count       BIGINT NOT NULL,
    job_description      TEXT,
    recording_consent_at BIGINT,
    overall_score        DOUBLE PRECISION,
    created_at           BIGINT NOT NULL,
    started_at           BIGINT,
    ended_at             BIGINT
);
CREATE INDEX interviews_by_user ON interviews (user_id, created_at);

-- Coaches a candidate lets observe an interview live.
CREATE TABLE interview_shares (
    interview_id     TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    observer_user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (interview_id, observer_user_id)
);

CREATE TABLE rounds (
    id           TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    title        TEXT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT,
    UNIQUE (interview_id, position)
);

CREATE TABLE questions (
    id           TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    round_id     TEXT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    text         TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('bank', 'llm', 'follow_up')),
    parent_id    TEXT REFERENCES questions (id) ON DELETE CASCADE,
    asked_at     BIGINT,
    created_at   BIGINT NOT NULL,
    UNIQUE (round_id, position)
);

-- What was said, by whom; times are milliseconds since the session started.
CREATE TABLE turns (
    id           TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    question_id  TEXT REFERENCES questions (id) ON DELETE SET NULL,
    speaker      TEXT NOT NULL CHECK (speaker IN ('candidate', 'interviewer')),
    text         TEXT NOT NULL,
    start_ms     BIGINT NOT NULL,
    end_ms       BIGINT NOT NULL,
    interrupted  BIGINT NOT NULL DEFAULT 0,
    words        TEXT,
    metrics      TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX turns_by_interview ON turns (interview_id, start_ms);

-- One compact JSON sample per second and kind (speech, vision).
CREATE TABLE metric_samples (
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    t_ms         BIGINT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (interview_id, kind, t_ms)
);

CREATE TABLE answer_scores (
    id           TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    question_id  TEXT NOT NULL UNIQUE REFERENCES questions (id) ON DELETE CASCADE,
    scores       TEXT NOT NULL,
    notes        TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE reports (
    interview_id    TEXT PRIMARY KEY REFERENCES interviews (id) ON DELETE CASCADE,
    overall         DOUBLE PRECISION NOT NULL,
    technical_depth DOUBLE PRECISION NOT NULL,
    communication   DOUBLE PRECISION NOT NULL,
    structure       DOUBLE PRECISION NOT NULL,
    confidence      DOUBLE PRECISION NOT NULL,
    presence        DOUBLE PRECISION NOT NULL,
    strengths       TEXT NOT NULL,
    improvements    TEXT NOT NULL,
    summary         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE learning_paths (
    interview_id TEXT PRIMARY KEY REFERENCES interviews (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roadmap      TEXT NOT NULL,
    resources    TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Media files are AES-256-GCM encrypted on disk; the row says where, with which nonce, and until when.
CREATE TABLE recordings (
    id           TEXT PRIMARY KEY,
    interview_id TEXT NOT NULL REFERENCES interviews (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
    path         TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE INDEX recordings_by_expiry ON recordings (expires_at);

-- Who did what, when, from where, with which outcome. Rows are only ever appended.
CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor_user_id TEXT,
    action        TEXT NOT NULL,
    target        TEXT,
    ip            TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    detail        TEXT
);
CREATE INDEX audit_log_by_actor ON audit_log (actor_user_id, at);
