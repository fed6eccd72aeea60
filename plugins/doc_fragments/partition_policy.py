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
      - RANGE tables only. For a C(date), C(timestamp) or C(timestamptz) key one of C(hour), C(day), C(week),
        C(month), C(quarter), C(year).
      - For an integer key (C(smallint), C(integer), C(bigint), C(numeric)) a positive integer step, or a time
        word together with O(epoch) when the key holds Unix time.
    type: str
  epoch:
    description:
      - The integer key holds Unix time in these units; O(interval) is then a time word.
    type: str
    choices: [seconds, milliseconds]
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
        C({year}), C({month}), C({day}), C({hour}), C({isoyear}), C({week}), C({quarter}); for integer steps
        C({lower}).
      - The default C({parent}_{suffix}) gives suffixes C(YYYY_MM), C(YYYY_MM_DD), C(YYYY_MM_DD_HH),
        C(IYYY_wIW), C(YYYY_qN), C(YYYY) or C(p<lower>). Names over 63 bytes are shortened in the parent part,
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
