# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The options of a partition policy (postgres_partition, postgres_partition_convert); _ansible/argspec.py
    # PARTITION_POLICY_OPTIONS mirrors it (sanity checks they agree).
    DOCUMENTATION = r"""
options:
  interval:
    description:
      - RANGE tables only. For a C(date), C(timestamp), C(timestamptz) or C(uuid) (UUIDv7) key one of C(hour),
        C(day), C(week), C(month), C(quarter), C(year), or a positive count of one unit as PostgreSQL writes
        intervals, such as C(15 minutes), C(2 hours), C(3 days), C(2 weeks), C(3 months) or C(2 years)
        (minutes and hours not for C(date) keys).
      - For an integer key (C(smallint), C(integer), C(bigint), C(numeric)) a positive integer step, or a time
        interval together with O(epoch) when the key holds Unix time.
      - For a C(uuid) key the bounds are the smallest UUIDv7 of each interval start's millisecond, so every
        UUIDv7 made in an interval falls in its partition and a lookup by id prunes to one partition.
      - Adopting an existing set infers nothing from partition names, only from bounds. Every bound must start
        an interval of the grid, else nothing is done and the error names the first partition off the grid and
        the O(interval_anchor) that would fit it.
    type: str
  interval_anchor:
    description:
      - Where the grid of a time O(interval) is counted from, as local wall time in O(timezone). Whole minutes for
        minutes and hours, a midnight for days and weeks (a Tuesday midnight for weeks from Tuesday to Tuesday),
        the first day of a month at midnight for months and years (C(2024-04-01) for fiscal years from April).
      - Default the epoch C(1970-01-01 00:00), and its first Monday C(1970-01-05) for weeks, so the words keep
        their calendar meaning (C(quarter) starts in January, April, July and October).
      - The word C(hour) floors to the local hour; a count of minutes or hours and an anchored hour step in
        absolute time from the anchor.
    type: raw
  epoch:
    description:
      - The integer key holds Unix time in these units; O(interval) is then a time interval.
    type: str
    choices: [seconds, milliseconds, microseconds, nanoseconds]
  premake:
    description:
      - RANGE partitions to ensure after the one holding the reference time.
    type: int
    default: 12
  backfill:
    description:
      - RANGE partitions to ensure before the one holding the reference time.
    type: int
    default: 0
  reference_time:
    description:
      - Overrides "now", the server's C(now()). An ISO date or date-time (a naive one is read in O(timezone)),
        or an integer for integer keys.
      - For integer keys without O(epoch) the default is the highest key in the table (0 when it is empty).
    type: raw
  timezone:
    description:
      - IANA zone whose local midnights (or hours) bound C(timestamptz) and epoch partitions. A monthly
        partition in C(Europe/Berlin) starts at local midnight on both sides of a DST change.
      - Hourly partitions are refused in a zone whose UTC offset changes by a fraction of an hour within two years
        of the reference (C(Australia/Lord_Howe) moves by 30 minutes), where local hours cannot all start on the
        hour. A day the zone skipped (C(Pacific/Apia) on 2011-12-30) gets no partition.
    type: str
    default: UTC
  name_template:
    description:
      - Python format template for partition names. Fields C({parent}), C({suffix}), and for time intervals
        C({year}), C({month}), C({day}), C({hour}), C({minute}), C({isoyear}), C({week}), C({quarter}); for
        integer steps
        C({lower}).
      - The default C({parent}_{suffix}) gives suffixes C(YYYY_MM), C(YYYY_MM_DD), C(YYYY_MM_DD_HH),
        C(YYYY_MM_DD_HHMI) (minutes), C(IYYY_wIW) (the word C(week); counted weeks are named by their first day),
        C(YYYY_qN), C(YYYY) or C(p<lower>). Names over 63 bytes are shortened in the parent part,
        with a hash that keeps them unique, never in the suffix.
    type: str
  default_partition:
    description:
      - Ensure the default partition C(<parent>_default) exists (RANGE and LIST only).
    type: bool
    default: false
  list_partitions:
    description:
      - "LIST tables only. A mapping of name suffix to the list of values of that partition, for example
        C({active: [false], completed: [true]})."
    type: dict
  hash_modulus:
    description:
      - HASH tables only. Ensure remainders C(0) to C(N-1), named C(<parent>_hash_<r>).
    type: int
  tablespace:
    description:
      - Tablespace for new partitions. Without it they go where the parent's tablespace says, as with
        C(CREATE TABLE ... PARTITION OF), else in the database's default tablespace.
    type: str
  template_table:
    description:
      - C([schema.]name) of a plain table (pg_partman's template table idea) whose storage parameters
        (reloptions such as C(fillfactor=70) or C(autovacuum_vacuum_scale_factor=0.01)), indexes and privileges are
        also given to each new partition, in its creation transaction.
      - PostgreSQL refuses storage parameters on a partitioned table (C(cannot specify storage parameters for a
        partitioned table)), so they are set on the template. Indexes the parent cannot have, such as a unique index
        without the partition key, go there too, and each partition gets its own.
      - Its columns must be the parent's (names and types, in any order), for example C(CREATE TABLE
        events_template (LIKE events)); otherwise nothing is changed and the difference is reported. Its own owner's
        privileges are not copied. Indexes of exclusion constraints are not copied (an index alone does not carry
        the constraint).
    type: str
"""
