-- The learning path as a checklist: the competencies of the steps the candidate has ticked, as a JSON array.
ALTER TABLE learning_paths ADD COLUMN done TEXT NOT NULL DEFAULT '[]';
