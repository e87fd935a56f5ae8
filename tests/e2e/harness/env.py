"""Where the build is, how long a test may wait, and small process helpers.

Thread-safe: nothing here keeps state beyond constants read at import.
"""

import os
import socket
import subprocess
import sys
import threading
import time

# Factor for waits that bound how long a test lets the product take (never
# for assertions about the product's own deadlines). 1 normally;
# tools/dev/test-loaded.sh and tools/dev/sanitize.sh raise it through
# LUMO_TEST_TIME_SCALE because loaded or instrumented processes are slower.
TIME_SCALE = max(1, int(os.environ.get("LUMO_TEST_TIME_SCALE", "1") or "1"))

# The repository this package belongs to (tests/e2e/harness/env.py).
_REPOSITORY = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class HarnessError(Exception):
    """The test environment is incomplete or a process did not come up."""


def require_env(name, hint):
    """The value of environment variable `name`; HarnessError saying `hint`
    when it is unset or empty (a test fails, never skips, without it)."""
    value = os.environ.get(name, "")
    if not value:
        raise HarnessError(f"{name} is not set: {hint}")
    return value


def source_dir():
    """The source tree: LUMO_SOURCE_DIR, else this repository."""
    return os.environ.get("LUMO_SOURCE_DIR") or _REPOSITORY


def binary_dir():
    """The CMake build directory: LUMO_BINARY_DIR, else <source>/build (where
    tools/dev/build.sh builds)."""
    return os.environ.get("LUMO_BINARY_DIR") or os.path.join(
        source_dir(), "build")


def built_program(*parts):
    """The path of a program of the build (e.g. "server", "lumokeys-server");
    HarnessError when it has not been built."""
    path = os.path.join(binary_dir(), *parts)
    if not os.access(path, os.X_OK):
        raise HarnessError(f"{path} does not exist or is not executable; "
                           "build it first (tools/dev/build.sh)")
    return path


def free_loopback_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_secret(path, content):
    """Creates `path` (which must not exist) with mode 0600 holding exactly
    `content`; returns the path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    return path


def run_as_prefix(uid):
    """The command prefix that runs a program as `uid` (and gid `uid`, no
    supplementary groups): setpriv when the harness is root, nothing
    otherwise (the program then runs as the harness's user)."""
    if uid is None or os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def dies_with_harness_prefix():
    """The command prefix that kills a program when the harness process
    dies (setpriv --pdeathsig), so a test killed by ctest's timeout leaves
    no server behind. The kernel sends the signal when the thread that
    started the program ends, so only programs started on the main thread
    get it: a program started from a worker thread keeps running after
    that thread and is stopped by its test as before."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return ["setpriv", "--pdeathsig", "SIGKILL", "--"]


def wait_for(condition, what, timeout_s=20, interval_s=0.1):
    """Polls `condition()` until it returns something true and returns that.
    AssertionError naming `what` after `timeout_s` x TIME_SCALE seconds: the
    deadline only bounds a failing test, a passing one returns as soon as the
    condition holds."""
    deadline = time.monotonic() + timeout_s * TIME_SCALE
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)


def stop_process(process, grace_s=10):
    """SIGTERM, then SIGKILL if `process` (a Popen) is still running after
    `grace_s` x TIME_SCALE seconds. Returns the exit code and whether it had
    to be killed. Safe on a process that already exited."""
    if process.poll() is not None:
        return process.returncode, False
    process.terminate()
    try:
        return process.wait(timeout=grace_s * TIME_SCALE), False
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(), True


def read_log(path, missing="(no log)"):
    """The text of a log file (undecodable bytes replaced), or `missing`."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return missing


def figure(name, **values):
    """Prints one `FIGURE name k=v ...` line to stderr: a measured figure
    that a test reports but never asserts (docs/testing.md)."""
    print("FIGURE %s %s" % (name, " ".join(
        "%s=%s" % kv for kv in values.items())), file=sys.stderr, flush=True)
