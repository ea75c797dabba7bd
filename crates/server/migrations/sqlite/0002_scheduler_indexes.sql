-- The scheduler's reads each round go through indexes instead of scanning:
-- active runs in creation order (not every run ever made), and the queue timeout's oldest
-- queued job (not every queued job).
DROP INDEX runs_active;
CREATE INDEX runs_active ON runs (created_ms, id) WHERE status <> 'completed';
CREATE INDEX jobs_queued_since ON jobs (queued_ms) WHERE status = 'queued';
