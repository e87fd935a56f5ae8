"""An exhaustively checked model of the revocation protocol.

docs/replication.md, "The protocol, checked": writers, feed tailers,
heartbeats, leases and verify caches of two replicas and two keys, explored
breadth-first over every interleaving of their steps and of the passing of
time. The invariant is the product's contract:

    no accept after an acknowledged change: once the Revoke of key k has
    returned OK, no replica whose cache is trusted holds k as valid
    (a verification may start at any moment, so a state in which one would
    accept is a violation).

Two designs are modelled: OLD (a successful heartbeat renews cache trust
unconditionally) and NEW (a heartbeat that returns at or after the trust
bound that was in force first drops the whole cache), and, as a check that
the model sees the cache fills, NEW without the verifier's eviction epoch. The checker finds the
stale-read counterexample in OLD and shows NEW safe: every reachable state,
over unbounded time, satisfies the invariant.

Abstractions (each an over-approximation or justified in the doc):
- One clock for everyone, in integer ticks; the margin absorbs rate
  differences between the replicas' monotonic clocks and the database clock.
- A committed change is visible to every later feed read; its seq is its
  position in the feed (the gap-tracking cursor guarantees this for the
  seqs a writer waits for; it is tested on its own).
- A writer waits for the seq of its own change (the product waits for the
  feed head read after its commit, which is at least that: more waiting).
- Cache entries and fills that say "revoked" are the same as none (they can
  never accept); a fill that read "valid" is installed unless an eviction of
  its key (or of everything) happened after its read (the eviction epoch).
- A round may skip its heartbeat and a heartbeat may fail: more behaviours.

Python 3 standard library only.
"""

import collections

OLD = "old"
NEW = "new"

KEYS = 2
REPLICAS = 2
# Writer k runs on replica k (it excludes itself and evicts locally).

# Tailer program counter.
IDLE, READ, APPLIED, SENT, COMMITTED = range(5)
PC_NAMES = ("idle", "read", "applied", "sent", "committed")


class Model:
    """Parameters: lease and margin in ticks, and the design.

    Times are kept relative to now and capped where larger values behave
    the same (a lease older than `lease` is expired however old; a trust
    bound in the past is in the past), so the state space is finite and the
    search covers every behaviour over unbounded time.
    """

    def __init__(self, design, lease=3, margin=1, epoch=True):
        assert design in (OLD, NEW)
        assert 0 < margin < lease
        self.design = design
        # False: a variant without the verifier's eviction epoch (a fill
        # that read before an eviction is installed after it).
        self.epoch = epoch
        self.lease = lease
        self.margin = margin
        self.trust = lease - margin  # how long a heartbeat's trust lasts

    # State: (revoked, feed, writers, replicas, rows)
    #   revoked:  tuple of 0/1 per key (the database)
    #   feed:     tuple of key indices in seq order (seq = index + 1)
    #   writers:  per key: 0 idle, 1 committed and waiting, 2 returned OK
    #   replicas: per replica (cache, fills, trust_left, pc, read_upto,
    #             applied, sent_age): cache / fills are bit sets of the keys
    #             held / being filled as valid; trust_left is how long the
    #             cache stays trusted (0: not trusted); sent_age is how long
    #             ago the pending heartbeat was sent (capped at `trust`)
    #   rows:     per replica (heartbeat_age, applied_seq) as writers see it;
    #             heartbeat_age >= lease means expired
    def initial(self):
        full = (1 << KEYS) - 1
        # Every replica has just heartbeated and has every key cached.
        replica = (full, 0, self.trust, IDLE, 0, 0, 0)
        return ((0,) * KEYS, (), (0,) * KEYS, (replica,) * REPLICAS,
                ((0, 0),) * REPLICAS)

    def violation(self, state):
        """A description of the broken invariant, or None. Also checked: the
        lease composition the contract rests on (a replica that writers
        consider expired does not trust its cache)."""
        _, _, writers, replicas, rows = state
        for r, (cache, _, trust_left, *_rest) in enumerate(replicas):
            if trust_left > 0 and rows[r][0] >= self.lease:
                return (f"replica {r} trusts its cache although writers "
                        "consider its lease expired")
            for k in range(KEYS):
                if writers[k] == 2 and trust_left > 0 and cache >> k & 1:
                    return (f"replica {r} trusts its cache and holds key {k} "
                            f"as valid after the Revoke of key {k} returned OK")
        return None

    def fills_after(self, fills, evicted):
        """The fills still to be installed after evicting the keys in
        `evicted`: with the epoch, a fill that read before the eviction is
        not installed."""
        return fills & ~evicted if self.epoch else fills

    def tick(self, state):
        revoked, feed, writers, replicas, rows = state
        aged = []
        for cache, fills, trust_left, pc, read_upto, applied, sent_age in \
                replicas:
            if pc in (SENT, COMMITTED):
                sent_age = min(sent_age + 1, self.trust)
            aged.append((cache, fills, max(trust_left - 1, 0), pc, read_upto,
                         applied, sent_age))
        return (revoked, feed, writers, tuple(aged),
                tuple((min(age + 1, self.lease), seq) for age, seq in rows))

    def successors(self, state):
        """Yields (action, next_state)."""
        revoked, feed, writers, replicas, rows = state

        def with_replica(r, value):
            return replicas[:r] + (value,) + replicas[r + 1:]

        yield "tick", self.tick(state)

        for k in range(KEYS):
            host = k % REPLICAS
            if writers[k] == 0:
                # COMMIT of the Revoke, then the local eviction.
                cache, fills, *rest = replicas[host]
                yield (f"writer {k}: commit revoke (replica {host} evicts)",
                       (revoked[:k] + (1,) + revoked[k + 1:], feed + (k,),
                        writers[:k] + (1,) + writers[k + 1:],
                        with_replica(host, (cache & ~(1 << k),
                                            self.fills_after(fills, 1 << k),
                                            *rest)),
                        rows))
            elif writers[k] == 1:
                target = feed.index(k) + 1
                acked = all(
                    rows[o][0] >= self.lease or rows[o][1] >= target
                    for o in range(REPLICAS) if o != host)
                if acked:
                    yield (f"writer {k}: every live replica acknowledged; "
                           "returns OK",
                           (revoked, feed, writers[:k] + (2,) + writers[k + 1:],
                            replicas, rows))

        for r in range(REPLICAS):
            cache, fills, trust_left, pc, read_upto, applied, sent_age = \
                replicas[r]
            for k in range(KEYS):
                bit = 1 << k
                if not revoked[k] and not fills & bit:
                    yield (f"replica {r}: cache fill reads key {k} (valid)",
                           (revoked, feed, writers,
                            with_replica(r, (cache, fills | bit, trust_left,
                                             pc, read_upto, applied, sent_age)),
                            rows))
                if fills & bit:
                    yield (f"replica {r}: cache fill installs key {k}",
                           (revoked, feed, writers,
                            with_replica(r, (cache | bit, fills & ~bit,
                                             trust_left, pc, read_upto,
                                             applied, sent_age)),
                            rows))
            steps = []
            if pc == IDLE:
                steps.append(("read the feed",
                              (cache, fills, trust_left, READ, len(feed),
                               applied, 0), rows))
            elif pc == READ:
                dropped = 0
                for seq in range(applied + 1, read_upto + 1):
                    dropped |= 1 << feed[seq - 1]
                steps.append(("evict what the read returned",
                              (cache & ~dropped, self.fills_after(fills, dropped),
                               trust_left, APPLIED, 0, read_upto, 0), rows))
            elif pc == APPLIED:
                steps.append(("send heartbeat",
                              (cache, fills, trust_left, SENT, 0, applied, 0),
                              rows))
                steps.append(("skip the heartbeat (not due)",
                              (cache, fills, trust_left, IDLE, 0, applied, 0),
                              rows))
            elif pc == SENT:
                steps.append((f"heartbeat commits (applied_seq={applied})",
                              (cache, fills, trust_left, COMMITTED, 0,
                               applied, sent_age),
                              rows[:r] + ((0, applied),) + rows[r + 1:]))
                steps.append(("heartbeat fails",
                              (cache, fills, trust_left, IDLE, 0, applied, 0),
                              rows))
            elif pc == COMMITTED:
                what = "heartbeat returns"
                if self.design == NEW and trust_left == 0:
                    # Returned at or after the trust bound in force: writers
                    # may have stopped waiting for us. Drop everything first.
                    cache, fills = 0, self.fills_after(fills, fills)
                    what += " after the trust bound: evict all"
                renewed = self.trust - sent_age
                steps.append((f"{what}; trusted for {renewed} more",
                              (cache, fills, renewed, IDLE, 0, applied, 0),
                              rows))
            for what, value, new_rows in steps:
                yield (f"replica {r}: {what}",
                       (revoked, feed, writers, with_replica(r, value),
                        new_rows))


def _swap_bits(bits):
    return (bits & 1) << 1 | (bits >> 1) & 1


def mirrored(state):
    """The same state with replicas 0 and 1 swapped, and keys 0 and 1 (writer
    k runs on replica k, so the swap maps the system onto itself)."""
    revoked, feed, writers, replicas, rows = state
    return (revoked[::-1], tuple(1 - k for k in feed), writers[::-1],
            tuple((_swap_bits(c), _swap_bits(f), *rest)
                  for c, f, *rest in replicas[::-1]),
            rows[::-1])


Result = collections.namedtuple("Result", "states transitions trace")


def check(model, symmetry=True):
    """Breadth-first search of every reachable state (with `symmetry`, of one
    state per mirrored pair: the invariant is symmetric too). Returns the
    number of states and transitions explored and, when the invariant breaks, a
    shortest trace to the violation (the steps with the time they were taken
    at, then the broken invariant); trace is None when the model is safe."""
    assert KEYS == 2 and REPLICAS == 2

    def canonical(state):
        return min(state, mirrored(state)) if symmetry else state

    start = canonical(model.initial())
    parent = {start: None}
    queue = collections.deque([start])
    transitions = 0
    while queue:
        state = queue.popleft()
        broken = model.violation(state)
        if broken is not None and symmetry:
            # Traces through mirrored states are hard to read: search again
            # without the reduction.
            return check(model, symmetry=False)
        if broken is not None:
            actions = []
            while parent[state] is not None:
                state, action = parent[state]
                actions.append(action)
            actions.reverse()
            trace, now = [], 0
            for action in actions:
                if action == "tick":
                    now += 1
                else:
                    trace.append(f"t={now}: {action}")
            trace.append(f"VIOLATION at t={now}: {broken}")
            return Result(len(parent), transitions, trace)
        for action, nxt in model.successors(state):
            transitions += 1
            nxt = canonical(nxt)
            if nxt not in parent:
                parent[nxt] = (state, action)
                queue.append(nxt)
    return Result(len(parent), transitions, None)
