-- Where a live interview stands (the interviewer's state as JSON, sealed like the transcripts), written after
-- each answer and when the server stops, so the candidate resumes after a restart.
ALTER TABLE interviews ADD COLUMN resume_state TEXT;
