"""Stand-in for the get-pip bootstrap script that ansible-test downloads from a host these machines cannot reach.

scripts/test-all copies it to $HOME/.ansible/test/cache/get_pip_<version>.py (HOME private to the run), where
ansible-test looks before downloading. ansible-test runs it inside each new, empty sanity venv as
`python quiet_pip.py [pip options] pip==<version> --no-setuptools --no-wheel` with GET_PIP pointing here.

ensurepip runs in a separate process: run in-process it sets PIP_CONFIG_FILE=/dev/null, and the pip install that
follows would then lose the machine's pip configuration (mirrors, certificates).
"""

import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def main() -> None:
    pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    env = {name: value for name, value in os.environ.items() if name != "GET_PIP"}
    subprocess.run([sys.executable, "-m", "ensurepip"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", *pip_args], check=True, env=env)


if __name__ == "__main__":
    main()
