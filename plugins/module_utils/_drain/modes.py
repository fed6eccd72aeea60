# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the choices of the drain options, apart from the drain's planner so that
# validating a policy (every module run, every runner pass) does not load the drain code. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DEFAULT_ROWS_MODES = ("window", "drain")
GAPS_MODES = ("report", "fill")
LIST_NEW_VALUES_MODES = ("ignore", "create")
