"""A private three-node MariaDB Galera cluster for the end-to-end tests
(tools/dev/galera.sh with a temporary run folder and free loopback ports),
which a test may kill, restart and wipe node by node. Not thread-safe.

    cluster = GaleraCluster()
    cluster.start()                  # bootstrap node 1, join 2 and 3
    dsn = cluster.admin_dsn(2)       # mysql://lumo_admin:PW@127.0.0.1:P2/
    cluster.kill9(3); cluster.start_node(3)
    cluster.destroy()                # stops every node, removes the folder
"""

import os
import shutil
import socket
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


def _free_port_bases(count, width):
    """`count` bases each starting `width` free consecutive loopback ports
    (galera.sh numbers a node's ports base + node - 1)."""
    bases = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        start = s.getsockname()[1]
    candidate = min(start, 60000 - count * width * 4)
    while len(bases) < count and candidate < 65000:
        block = range(candidate, candidate + width)
        if _ports_free(block):
            bases.append(candidate)
            candidate += width
        else:
            candidate += 1
    if len(bases) < count:
        raise HarnessError("no free loopback ports for a Galera cluster")
    return bases


class GaleraCluster:
    NODES = (1, 2, 3)

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lumo-galera-")
        # Run as root, the nodes run as the mysql account, which must reach
        # the run folder.
        os.chmod(self.dir, 0o755)
        client, wsrep, ist, sst = _free_port_bases(4, len(self.NODES))
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
                               f"{result.stdout}{result.stderr}")
        return result.stdout

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
