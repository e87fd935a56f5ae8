"""Verifications hammering every replica while secrets are killed: the
shared instrument of the replica tests (docs/replication.md).

One thread per replica verifies the watched secrets continuously (mostly
the newest: the ones just killed) and records when each verification
started and what it answered. A test marks a secret killed when the call
that killed it (revoke, rotate, delete, a restricting edit, disable)
returned; `after_kill()` are the verifications that started after that,
none of which may accept the secret.

    with VerifyHammer(3, verify) as hammer:   # verify(replica, secret)
        hammer.watch(secret)
        ... kill it ...
        hammer.killed(secret)
        hammer.check_now(secret)               # each replica, directly
    accepted = [r for r in hammer.after_kill() if r[3] == "VALID"]
"""

import random
import threading
import time

import grpc


class VerifyHammer:
    def __init__(self, replicas, verify):
        self.replicas = replicas
        self.verify = verify
        self.lock = threading.Lock()
        self.watched = []    # secrets the verifiers pick from
        self.killed_at = {}  # secret -> monotonic time its killing call returned
        self.records = []    # (replica, secret, started, reason)
        self.errors = []     # (replica, code, details) of failed calls
        self._stop = threading.Event()
        self._threads = []

    def __enter__(self):
        self._threads = [threading.Thread(target=self._run, args=(i,))
                         for i in range(self.replicas)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()
        return False

    def _run(self, replica):
        rng = random.Random(replica)
        while not self._stop.is_set():
            with self.lock:
                pick = (self.watched[-1 - min(len(self.watched) - 1,
                                              int(rng.expovariate(0.5)))]
                        if self.watched else None)
            if pick is None:
                time.sleep(0.005)
                continue
            started = time.monotonic()
            try:
                reason = self.verify(replica, pick)
            except grpc.RpcError as e:
                with self.lock:
                    self.errors.append((replica, e.code(), e.details()))
                continue
            with self.lock:
                self.records.append((replica, pick, started, reason))

    def watch(self, secret):
        with self.lock:
            self.watched.append(secret)

    def killed(self, secret, successor=None):
        """The call killing `secret` returned now; `successor` (the secret a
        rotation issued) is watched from now on."""
        returned = time.monotonic()
        with self.lock:
            self.killed_at[secret] = returned
            if successor is not None:
                self.watched.append(successor)

    def check_now(self, secret):
        """Asks every replica directly, recording the answers."""
        for replica in range(self.replicas):
            started = time.monotonic()
            reason = self.verify(replica, secret)
            with self.lock:
                self.records.append((replica, secret, started, reason))

    def after_kill(self):
        """The verifications of killed secrets that started after the kill."""
        with self.lock:
            return [(r, s, t, reason) for (r, s, t, reason) in self.records
                    if s in self.killed_at and t > self.killed_at[s]]

    def accepted_by(self, replica):
        """Whether `replica` accepted some secret at some point (the test is
        not vacuous)."""
        with self.lock:
            return any(r == replica and reason == "VALID"
                       for (r, _, _, reason) in self.records)
