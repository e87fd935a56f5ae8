"""A private three-node MariaDB Galera cluster for the end-to-end tests
(tools/dev/galera.sh with a temporary run folder and free loopback ports),
which a test may kill, restart and wipe node by node. Not thread-safe.

    cluster = GaleraCluster()
    cluster.start()                  # bootstrap node 1, join 2 and 3
    dsn = cluster.admin_dsn(2)       # mysql://lumo_admin:PW@127.0.0.1:P2/
    cluster.kill9(3); cluster.start_node(3)
    cluster.destroy()                # stops every node, removes the folder
"""

import fcntl
import os
import random
import shutil
import socket
import stat
import subprocess
import tempfile

from harness.env import HarnessError, TIME_SCALE, source_dir


def _ports_free(ports):
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _ephemeral_low():
    """The lowest port the kernel hands out on its own (to bind(port 0) and
    to outgoing connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_LOCK_DIR = os.path.join(tempfile.gettempdir(), "lumo-galera-ports")


def _reserve_port_block(width):
    """(base, lock file) for `width` consecutive loopback ports that are free
    and stay ours: below the kernel's ephemeral range, so no outgoing
    connection and no bind(port 0) of any process can take one of them
    between now and the moment a node binds it (a node's client port taken
    by someone's outgoing connection made a start fail), and locked against
    other clusters of this harness in other processes for as long as the
    lock file stays open."""
    high = _ephemeral_low()
    low = max(1024, high - 10000)
    os.makedirs(_LOCK_DIR, exist_ok=True)
    bases = list(range(low, high - width, width))
    random.shuffle(bases)
    for base in bases:
        lock = open(os.path.join(_LOCK_DIR, f"{base}.lock"), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if _ports_free(range(base, base + width)):
            return base, lock
        lock.close()
    raise HarnessError("no free loopback ports for a Galera cluster")


def _searchable_by_others(path):
    """Whether every folder from / down to `path` lets other accounts pass
    through (o+x)."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _cluster_parent():
    """The folder to make the cluster's folder in: the temporary folder,
    unless the tests run as root and it is closed to other accounts (TMPDIR
    inside a private `mktemp -d` folder, say): the nodes then run as the
    mysql account, which must reach their data, so /tmp instead."""
    base = tempfile.gettempdir()
    if os.geteuid() != 0 or _searchable_by_others(base):
        return base
    return "/tmp"


class GaleraCluster:
    NODES = (1, 2, 3)

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lumo-galera-",
                                    dir=_cluster_parent())
        # Run as root, the nodes run as the mysql account, which must reach
        # the run folder (galera.sh opens the folders it makes below it).
        os.chmod(self.dir, 0o755)
        n = len(self.NODES)
        base, self._port_lock = _reserve_port_block(4 * n)
        client, wsrep, ist, sst = (base + i * n for i in range(4))
        self.env = dict(os.environ,
                        LUMO_RUN_DIR=os.path.join(self.dir, "run"),
                        LUMO_GALERA_PORT=str(client),
                        LUMO_GALERA_WSREP_PORT=str(wsrep),
                        LUMO_GALERA_IST_PORT=str(ist),
                        LUMO_GALERA_SST_PORT=str(sst))
        self._script = os.path.join(source_dir(), "tools", "dev", "galera.sh")

    def _run(self, *args, timeout=300):
        result = subprocess.run([self._script, *args], env=self.env,
                                capture_output=True, text=True,
                                timeout=timeout * TIME_SCALE)
        if result.returncode != 0:
            raise HarnessError(f"galera.sh {' '.join(args)} failed:\n"
                               f"{result.stdout}{result.stderr}"
                               f"{self._node_logs()}")
        return result.stdout

    def _node_logs(self, lines=40):
        """The last lines of every node's error log (the cluster folder is
        removed by destroy(), so a failure carries its evidence)."""
        out = []
        for node in self.NODES:
            path = os.path.join(self.dir, "run", "galera", f"node{node}",
                                "mysqld.err")
            try:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError as e:
                tail = [f"({e.strerror})\n"]
            out.append(f"--- node {node}: {path}\n{''.join(tail)}")
        return "\n" + "".join(out)

    def start(self):
        """Bootstraps node 1 and joins 2 and 3 (state transfer); returns when
        every node is Synced in one primary component of three."""
        self._run("start", timeout=600)

    def start_node(self, node):
        """Starts a stopped or killed node; returns when it is Synced."""
        self._run("start-node", str(node))

    def stop_node(self, node):
        self._run("stop-node", str(node))

    def kill9(self, node):
        """SIGKILL of the node's mariadbd; returns when it is gone."""
        self._run("kill-node", str(node))

    def admin_dsn(self, node):
        return self._run("admin-dsn", str(node)).strip()

    def port(self, node):
        return int(self._run("port", str(node)).strip())

    def destroy(self):
        """Stops every node and removes the folder. Safe to repeat."""
        if self.dir is None:
            return
        subprocess.run([self._script, "wipe"], env=self.env,
                       capture_output=True, timeout=600)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        self._port_lock.close()
