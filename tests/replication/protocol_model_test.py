"""Exhaustive check of the revocation protocol model (protocol_model.py).

The old design (a successful heartbeat renews cache trust unconditionally)
must break "no accept after an acknowledged change" with the stale-read
schedule; the current design must keep it in every reachable state. The
safe result must not be vacuous: the states the invariant speaks about
(a Revoke returned OK while a replica trusts a cache that holds valid
entries) are reachable.

    python3 -m unittest -v protocol_model_test      (in tests/replication)
"""

import collections
import sys
import unittest

import protocol_model as pm

# Lease 2 ticks with a 1-tick margin: the smallest durations in which a
# heartbeat can be sent, commit and return on either side of the trust
# bound. A longer lease only repeats the same orderings (3 ticks: 3.4 M
# states, minutes in Python).
LEASE, MARGIN = 2, 1


def reachable(model, predicate):
    """True when some reachable state satisfies `predicate`."""
    start = model.initial()
    seen = {start}
    queue = collections.deque([start])
    while queue:
        state = queue.popleft()
        if predicate(state):
            return True
        for _, nxt in model.successors(state):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return False


class ProtocolModelTest(unittest.TestCase):
    def test_old_design_accepts_after_an_acknowledged_revoke(self):
        result = pm.check(pm.Model(pm.OLD, LEASE, MARGIN))
        print(f"\nold design: {result.states} states, {result.transitions} "
              "transitions explored before the counterexample:\n  "
              + "\n  ".join(result.trace), file=sys.stderr)
        self.assertIsNotNone(result.trace, "the stale-read hole was not found")
        steps = result.trace
        self.assertTrue(steps[-1].startswith("VIOLATION"))
        # The schedule of the finding: replica X reads the feed, a Revoke
        # commits after that read and returns OK (X's lease ran out), then
        # X's heartbeat returns and renews trust in the stale cache.
        victim = steps[-1].split("replica ")[1].split(" ")[0]
        mine = [i for i, s in enumerate(steps) if f"replica {victim}:" in s]
        read = next(i for i in mine if "read the feed" in steps[i])
        commit = next(i for i, s in enumerate(steps) if "commit revoke" in s)
        ok = next(i for i, s in enumerate(steps) if "returns OK" in s)
        renew = next(i for i in mine if "heartbeat returns" in steps[i])
        self.assertLess(read, commit)
        self.assertLess(commit, ok)
        self.assertLess(ok, renew)
        self.assertNotIn("evict all", steps[renew])

    def test_old_design_with_a_longer_lease_too(self):
        result = pm.check(pm.Model(pm.OLD, lease=3, margin=1))
        self.assertIsNotNone(result.trace)

    def test_current_design_never_accepts_after_an_acknowledged_revoke(self):
        model = pm.Model(pm.NEW, LEASE, MARGIN)
        result = pm.check(model)
        print(f"\ncurrent design: {result.states} states (one per mirrored "
              f"pair), {result.transitions} transitions explored, invariant "
              "holds in every one", file=sys.stderr)
        self.assertIsNone(result.trace, "\n".join(result.trace or []))
        self.assertGreater(result.states, 100000)

    def test_without_the_eviction_epoch_a_raced_fill_breaks_it(self):
        result = pm.check(pm.Model(pm.NEW, LEASE, MARGIN, epoch=False))
        self.assertIsNotNone(result.trace)
        commit = next(i for i, s in enumerate(result.trace)
                      if "commit revoke" in s)
        self.assertTrue(any("cache fill installs" in s
                            for s in result.trace[commit:]), result.trace)

    def test_the_invariant_is_not_vacuous(self):
        model = pm.Model(pm.NEW, LEASE, MARGIN)

        def acked_while_other_trusts_valid(state):
            _, _, writers, replicas, _ = state
            for k in range(pm.KEYS):
                other = 1 - k  # not the writer's own replica
                cache, _, trust_left, *_ = replicas[other]
                if writers[k] == 2 and trust_left > 0 and cache & ~(1 << k):
                    return True
            return False

        def both_revoked_and_acknowledged(state):
            return state[2] == (2, 2)

        self.assertTrue(reachable(model, acked_while_other_trusts_valid))
        self.assertTrue(reachable(model, both_revoked_and_acknowledged))


if __name__ == "__main__":
    unittest.main()
