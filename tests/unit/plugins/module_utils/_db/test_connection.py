from __future__ import annotations

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.argspec import argument_spec
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.connection import connection_kwargs

CASES = [
    pytest.param(
        dict(login_host="db1", port=5433, login_user="u", login_password="", login_db="app"),
        dict(host="db1", port=5433, user="u", dbname="app"),
        id="an empty password is left to libpq so a password file can answer",
    ),
    pytest.param(
        dict(login_host="", login_unix_socket="/run/pg", port=5432, login_user="u", login_db="d"),
        dict(host="/run/pg", port=5432, user="u", dbname="d"),
        id="the unix socket directory is the host when no host is given",
    ),
    pytest.param(
        dict(login_host="h", login_unix_socket="/run/pg", port=1, login_user="u", login_db="d",
             ssl_mode="verify-full", ca_cert="/ca.pem", connect_params={"connect_timeout": 3}),
        dict(host="h", port=1, user="u", dbname="d", sslmode="verify-full", sslrootcert="/ca.pem",
             connect_timeout=3),
        id="a host wins over the socket and connect_params pass through",
    ),
]


@pytest.mark.parametrize("params, expected", CASES)
def test_connection_kwargs(params, expected):
    assert connection_kwargs(params) == expected


def test_argument_spec_adds_module_options_without_sharing_dicts():
    first = argument_spec(table=dict(type="str", required=True))
    first["port"]["default"] = 1
    assert argument_spec()["port"]["default"] == 5432
    assert first["table"] == dict(type="str", required=True)
    assert argument_spec()["login_password"]["no_log"] is True
