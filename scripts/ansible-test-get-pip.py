"""Stand-in for the get-pip bootstrap script that ansible-test downloads from a host these machines cannot reach.

scripts/test-all copies it to $HOME/.ansible/test/cache/get_pip_<version with _>.py (HOME private to the run),
where ansible-test looks before downloading. ansible-test runs it inside each new, empty sanity venv as
`python quiet_pip.py [pip options] pip==<version> [other packages] [--no-setuptools --no-wheel]` with GET_PIP
pointing here. The pip version comes from this file's own name (get_pip_25_2.py installs pip 25.2), the name
ansible-test looks it up by, so one copy serves every ansible-core release.

ensurepip runs in a separate process: run in-process it sets PIP_CONFIG_FILE=/dev/null, and the pip install that
follows would then lose the machine's pip configuration (mirrors, certificates).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")
CACHE_NAME = re.compile(r"get_pip_(\d+(?:_\d+)*)")


def pip_version_from_name(path: str) -> str:
    """get_pip_25_2.py -> 25.2: the version ansible-test encoded in the cache file name."""
    match = CACHE_NAME.fullmatch(Path(path).stem)
    if not match:
        sys.exit(f"{path}: cannot tell the pip version from this file name; expected get_pip_<version with _>.py")
    return match.group(1).replace("_", ".")


def main() -> None:
    pip_version = pip_version_from_name(__file__)
    # ansible-test names pip==<version> too; the file name is the one source, so its own pip requirement goes.
    pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS and not arg.startswith("pip==")]
    env = {name: value for name, value in os.environ.items() if name != "GET_PIP"}
    subprocess.run([sys.executable, "-m", "ensurepip"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", *pip_args, f"pip=={pip_version}"], check=True, env=env)


if __name__ == "__main__":
    main()
