# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # How DDL waits for its locks; _ansible/argspec.py LOCKING_OPTIONS mirrors it (sanity checks they agree).
    DOCUMENTATION = r"""
options:
  lock_timeout:
    description:
      - C(lock_timeout) for each transaction or statement that takes locks, as a PostgreSQL duration such as
        C(3s), C(500ms) or C(1min). A statement that waits longer gives up and is retried, so that writers queued
        behind it wait at most this long per attempt.
    type: str
    default: 3s
  retries:
    description:
      - How often a transaction that could not get its locks is retried, with exponential backoff and jitter.
    type: int
    default: 5
"""

    # For the modules that serialize their runs on a table with an advisory lock.
    RUN_LOCK = r"""
options:
  run_lock_wait:
    description:
      - Seconds to wait for another run on the same table to finish before reporting a skip.
    type: int
    default: 60
"""
