"""Fixtures of the fleet fault tests: the fleet the molecule `fleet` scenario built (tests/fleet/fleet.py), reached
from its controller network namespace, and the collection's playbooks run against it (tests/fleet/harness.py).

The scenario's verify step runs these tests with PGFLEET_FLEET_DIR (the fleet) and PGFLEET_INVENTORY (its inventory)
set, after converge; elsewhere they skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fleet import fleet as fleet_lib
from tests.fleet.harness import Playbooks


@pytest.fixture(scope="session")
def fleet() -> fleet_lib.Fleet:
    fleet_dir, inventory = os.environ.get("PGFLEET_FLEET_DIR"), os.environ.get("PGFLEET_INVENTORY")
    if not fleet_dir or not inventory or not (Path(fleet_dir) / "state.json").exists():
        pytest.skip("the fleet tests run in the verify step of `molecule test -s fleet`, which builds the fleet "
                    "and sets PGFLEET_FLEET_DIR and PGFLEET_INVENTORY")
    built = fleet_lib.Fleet(Path(fleet_dir))
    built.enter_controller_namespace()
    return built


@pytest.fixture(scope="session")
def playbooks(fleet) -> Playbooks:
    return Playbooks(os.environ["PGFLEET_INVENTORY"])
