DROP TABLE webhooks;
DROP TABLE timers;
DROP TABLE effect_attempts;
DROP TABLE effects;
DROP TABLE inputs;
DROP TABLE events;
DROP TABLE instances;
DROP TABLE definitions;
