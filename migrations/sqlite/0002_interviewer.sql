-- The interviewer: which brain produced each score, and the whole report as a JSON document (the columns of
-- `reports` keep the headline figures for listing and progress).
ALTER TABLE answer_scores ADD COLUMN brain TEXT NOT NULL DEFAULT 'built_in';
ALTER TABLE reports ADD COLUMN impact REAL NOT NULL DEFAULT 0;
ALTER TABLE reports ADD COLUMN document TEXT NOT NULL DEFAULT '{}';
