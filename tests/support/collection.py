"""The collection as Python and Ansible find it: a directory holding ansible_collections/pgfleet/partitions that
points at a checkout, on sys.path and in ANSIBLE_COLLECTIONS_PATH. Tests and bench import this first."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def collection_root(checkout: Path = REPO) -> Path:
    """A directory holding ansible_collections/pgfleet/partitions -> `checkout` (the checkout's own parents when it
    already sits at such a path), removed at exit when made here."""
    checkout = checkout.resolve()
    if checkout.parent.name == "pgfleet" and checkout.parent.parent.name == "ansible_collections":
        return checkout.parent.parent.parent
    root = Path(tempfile.mkdtemp(prefix="pgfleet-collections-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    (root / "ansible_collections" / "pgfleet").mkdir(parents=True)
    (root / "ansible_collections" / "pgfleet" / "partitions").symlink_to(checkout)
    return root


def install(checkout: Path = REPO) -> Path:
    """Make `checkout` the collection this process imports and the ansible commands it starts find."""
    root = collection_root(checkout)
    sys.path.insert(0, str(root))
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(root)
    return root


# The checkout measured or tested: this one, or (for the bench) the one PGFLEET_BENCH_COLLECTION names.
COLLECTIONS_ROOT = install(Path(os.environ.get("PGFLEET_BENCH_COLLECTION") or REPO))
