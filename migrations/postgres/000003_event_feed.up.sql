-- The global event feed (GET /v1/events; docs/decisions/0015-event-feed.md).
--
-- txid is the id of the transaction that appended the event. A DEFAULT, so no write
-- needs to name it. The feed is ordered by (txid, gid) and returns only events whose
-- transaction is below the oldest one still running (pg_snapshot_xmin), so no event
-- can commit later behind a position a reader has passed. Events written before this
-- migration all take its transaction's id, older than any later one, and keep their
-- gid order.
ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_feed ON events (txid, gid);
