"""Running one of the collection's modules in this process, as Ansible would run it, and reading its result."""

from __future__ import annotations

import importlib
import io
import json
from contextlib import contextmanager, redirect_stdout

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 has no helper: the arguments go where AnsibleModule reads them.
    @contextmanager
    def patch_module_args(args: dict):
        from ansible.module_utils import basic

        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


def run_module(name: str, args: dict, check_mode: bool = False, diff: bool = False) -> dict:
    """Run one of the collection's modules in this process and return its result (failed ones too)."""
    module = importlib.import_module(f"ansible_collections.pgfleet.partitions.plugins.modules.{name}")
    full_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    stdout = io.StringIO()
    with patch_module_args(full_args), redirect_stdout(stdout):
        try:
            module.main()
        except SystemExit:
            pass
    output = stdout.getvalue()
    try:
        return json.loads(output[output.index("{"):])
    except ValueError:
        raise AssertionError(f"module {name} printed no JSON result: {output!r}")
