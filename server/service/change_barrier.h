// What a mutation that kills a secret or changes a key's record (an edit,
// a disable or enable) waits on before it reports success
// (docs/replication.md). KeyService calls it after the commit and the local
// cache eviction; ReplicaSync implements it.
#ifndef LUMOKEYS_SERVER_SERVICE_CHANGE_BARRIER_H_
#define LUMOKEYS_SERVER_SERVICE_CHANGE_BARRIER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lumo::service {

// The committed change, as written to key_changes.
struct ChangeRef {
  int64_t tenant_id = 0;
  std::string key_id;
  std::string change_type;  // rotated, revoked, deleted, updated, disabled,
                            // enabled
  int64_t key_version = 0;
  // False when the mutation changed nothing (the key was revoked / deleted
  // already, typically by an earlier attempt whose wait failed). That
  // attempt's feed row may have been abandoned by the tailers, so the
  // change is announced afresh and the wait is for the announcement.
  bool wrote_feed_row = true;
};

// Thread-safe.
class ChangeBarrier {
 public:
  virtual ~ChangeBarrier() = default;

  // Returns OK once every other live replica has applied `change` (evicted
  // the key from its cache), or once every replica that has not is past its
  // lease. `mutation_took` is the local monotonic time from before the
  // store call that wrote the change until it returned (an upper bound on
  // how long its feed row was allocated but uncommitted). On failure the
  // change has still committed and stands: UNAVAILABLE when the
  // acknowledgement could not be established within the bounded wait or
  // the database could not be asked; DEADLINE_EXCEEDED when the caller's
  // deadline (storage::CurrentCallDeadline) passed first.
  virtual absl::Status AwaitChange(const ChangeRef& change,
                                   absl::Duration mutation_took) = 0;

  // Announces each of `changes` afresh (as AwaitChange does for a change
  // that wrote no feed row) and returns OK once every other live replica
  // has applied all of them; errors as AwaitChange. For a change that
  // affects several keys without writing their feed rows. The default
  // waits for one after the other.
  virtual absl::Status AwaitAnnouncements(
      const std::vector<ChangeRef>& changes) {
    for (const ChangeRef& change : changes) {
      ChangeRef announced = change;
      announced.wrote_feed_row = false;
      if (absl::Status s = AwaitChange(announced, absl::ZeroDuration());
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_CHANGE_BARRIER_H_
