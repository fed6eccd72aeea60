-- Sample tables of a health-data API for `make demo` (scripts/demo loads this once, into a new database).
-- Six monthly time-series tables already hold 30 months of history, partitioned by hand (or by an older tool);
-- the policy adopts those partitions, creates the months ahead and, where it has a retention, removes the oldest.
-- An appointments table LIST-partitioned by is_completed and one HASH-partitioned in 4 start without partitions;
-- a users table LIST-partitioned by role starts with every row in its default partition, which the policy's LIST
-- partitions take over (the rows move into them), all but a dozen auditors, a role the policy does not list: they
-- stay in the default partition, and the report shows them.

SET TIME ZONE 'UTC';

CREATE TABLE raw_ingestions (id bigint GENERATED ALWAYS AS IDENTITY, received_at timestamptz NOT NULL,
    source text NOT NULL, payload jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (id, received_at))
    PARTITION BY RANGE (received_at);
CREATE INDEX raw_ingestions_received_at_brin ON raw_ingestions USING brin (received_at);
CREATE TABLE audit_log (id bigint GENERATED ALWAYS AS IDENTITY, created_at timestamptz NOT NULL,
    actor text NOT NULL, action text NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE heart_rate_metrics (user_id int NOT NULL, recorded_at timestamptz NOT NULL, bpm smallint NOT NULL)
    PARTITION BY RANGE (recorded_at);
CREATE INDEX ON heart_rate_metrics (user_id, recorded_at);
CREATE TABLE blood_pressure_metrics (user_id int NOT NULL, recorded_at timestamptz NOT NULL,
    systolic smallint NOT NULL, diastolic smallint NOT NULL) PARTITION BY RANGE (recorded_at);
CREATE TABLE activity_metrics (user_id int NOT NULL, recorded_at timestamptz NOT NULL, steps int NOT NULL)
    PARTITION BY RANGE (recorded_at);
CREATE TABLE sleep_metrics (user_id int NOT NULL, sleep_date date NOT NULL, minutes smallint NOT NULL)
    PARTITION BY RANGE (sleep_date);

CREATE TABLE appointments (id bigint NOT NULL, patient_id int NOT NULL, starts_at timestamptz NOT NULL,
    is_completed boolean NOT NULL) PARTITION BY LIST (is_completed);
CREATE TABLE users (id int NOT NULL, role text NOT NULL, name text NOT NULL) PARTITION BY LIST (role);
CREATE TABLE users_default PARTITION OF users DEFAULT;
CREATE TABLE appointments_by_patient (id bigint NOT NULL, patient_id int NOT NULL, starts_at timestamptz NOT NULL)
    PARTITION BY HASH (patient_id);

-- The 30 months of history: one partition per month (UTC), named as the collection names them.
DO $$
DECLARE
    parent text;
    month timestamptz;
BEGIN
    FOREACH parent IN ARRAY ARRAY['raw_ingestions', 'audit_log', 'heart_rate_metrics', 'blood_pressure_metrics',
                                  'activity_metrics']
    LOOP
        FOR back IN 0..29 LOOP
            month := date_trunc('month', now()) - make_interval(months => back);
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           parent || '_' || to_char(month, 'YYYY_MM'), parent, month, month + interval '1 month');
        END LOOP;
    END LOOP;
    FOR back IN 0..29 LOOP
        month := date_trunc('month', now()) - make_interval(months => back);
        EXECUTE format('CREATE TABLE %I PARTITION OF sleep_metrics FOR VALUES FROM (%L) TO (%L)',
                       'sleep_metrics_' || to_char(month, 'YYYY_MM'), month::date, (month + interval '1 month')::date);
    END LOOP;
END $$;

-- About 330,000 rows spread over those months, up to now.
CREATE TEMPORARY TABLE history AS SELECT date_trunc('month', now()) - interval '29 months' AS start, now() AS stop;
INSERT INTO raw_ingestions (received_at, source, payload)
    SELECT start + random() * (stop - start), (ARRAY['ios', 'android', 'web'])[1 + n % 3], jsonb_build_object('batch', n)
    FROM history, generate_series(1, 100000) AS n;
INSERT INTO audit_log (created_at, actor, action)
    SELECT start + random() * (stop - start), 'user' || n % 500, (ARRAY['login', 'export', 'update'])[1 + n % 3]
    FROM history, generate_series(1, 50000) AS n;
INSERT INTO heart_rate_metrics (user_id, recorded_at, bpm)
    SELECT n % 1000, start + random() * (stop - start), 50 + (random() * 90)::int
    FROM history, generate_series(1, 100000) AS n;
INSERT INTO blood_pressure_metrics (user_id, recorded_at, systolic, diastolic)
    SELECT n % 1000, start + random() * (stop - start), 100 + (random() * 60)::int, 60 + (random() * 30)::int
    FROM history, generate_series(1, 30000) AS n;
INSERT INTO activity_metrics (user_id, recorded_at, steps)
    SELECT n % 1000, start + random() * (stop - start), (random() * 20000)::int
    FROM history, generate_series(1, 30000) AS n;
INSERT INTO sleep_metrics (user_id, sleep_date, minutes)
    SELECT n % 1000, (start + random() * (stop - start))::date, 300 + (random() * 240)::int
    FROM history, generate_series(1, 20000) AS n;
INSERT INTO users (id, role, name)
    SELECT n, (ARRAY['patient', 'patient', 'patient', 'clinician', 'admin'])[1 + n % 5], 'user ' || n
    FROM generate_series(1, 5000) AS n;
INSERT INTO users (id, role, name) SELECT n, 'auditor', 'auditor ' || n FROM generate_series(5001, 5012) AS n;
ANALYZE;
