-- The fleet's sample database, created on every primary by tests/fleet/host-init (a standby gets it by replication).
-- app.samples: monthly; five months from 8 to 4 months ago exist already, with rows, as if the table was older than
--   its policy. The converge adds the recent and coming months; a retention rollout removes the old ones.
-- app.readings: daily, with a default partition holding the rows of yesterday to three days ahead; the converge
--   creates those days' partitions and moves the rows into them.
SET client_min_messages = warning;
CREATE DATABASE fleet;
\connect fleet
SET timezone = 'UTC';
CREATE SCHEMA app;

CREATE TABLE app.samples (ts timestamptz NOT NULL, device int NOT NULL, value double precision)
    PARTITION BY RANGE (ts);
CREATE INDEX samples_ts_brin ON app.samples USING brin (ts);
DO $$
DECLARE
    month_start timestamptz;
BEGIN
    FOR months_back IN 4..8 LOOP
        month_start := date_trunc('month', now()) - make_interval(months => months_back);
        EXECUTE format('CREATE TABLE app.%I PARTITION OF app.samples FOR VALUES FROM (%L) TO (%L)',
                       'samples_' || to_char(month_start, 'YYYY_MM'), month_start, month_start + interval '1 month');
    END LOOP;
END
$$;
INSERT INTO app.samples
SELECT ts, device, random()
FROM generate_series(date_trunc('month', now()) - interval '8 months',
                     date_trunc('month', now()) - interval '3 months' - interval '1 hour', interval '6 hours') ts,
     generate_series(1, 2) device;

CREATE TABLE app.readings (ts timestamptz NOT NULL, sensor int NOT NULL, reading numeric)
    PARTITION BY RANGE (ts);
CREATE TABLE app.readings_default PARTITION OF app.readings DEFAULT;
INSERT INTO app.readings
SELECT ts, sensor, sensor * 1.5
FROM generate_series(date_trunc('day', now()) - interval '1 day',
                     date_trunc('day', now()) + interval '4 days' - interval '1 hour', interval '1 hour') ts,
     generate_series(1, 3) sensor;
