-- Which dead letters `vecsync dlq replay` has put back, so a second run replays nothing twice.

-- Up Migration

CREATE TABLE vecsync.dlq_replays (
  dlq_topic text NOT NULL,
  dlq_partition integer NOT NULL,
  dlq_offset bigint NOT NULL,
  replayed_to text NOT NULL,
  replayed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

-- Down Migration

DROP TABLE vecsync.dlq_replays;
