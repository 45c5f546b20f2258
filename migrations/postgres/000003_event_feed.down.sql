DROP INDEX events_feed;
ALTER TABLE events DROP COLUMN txid;
