// BENCHMARK ONLY: the raw database baselines that tools/bench compares the
// key service with, and its bulk key loader (docs/benchmarks.md). Served by
// the App only with --bench_service; never used by a request path.
//
// Error contract as key_store.h (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL).
#ifndef LUMOKEYS_SERVER_STORAGE_BENCH_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_BENCH_STORE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// Thread-safe.
class BenchStore {
 public:
  virtual ~BenchStore() = default;

  // Creates what InsertCommit writes to, if missing (not part of the
  // schema: it needs rights the runtime account may lack).
  virtual absl::Status EnsureTable() = 0;

  // The cheapest read of one key by id: true when a key row with the id
  // exists.
  virtual absl::StatusOr<bool> PointSelect(absl::string_view id) = 0;

  // The same read through the database's own C client library, where the
  // backend has one (the connector's cost, measured); UNIMPLEMENTED where
  // it has not.
  virtual absl::StatusOr<bool> PointSelectCClient(absl::string_view id) = 0;

  // The cheapest durable write: one row in its own committed transaction.
  // Returns the rows written (1).
  virtual absl::StatusOr<uint64_t> InsertCommit() = 0;

  // Round trips to the database made so far by the backend's request
  // stores (a statement batch counts once).
  virtual uint64_t queries_executed() const = 0;
  // Statements sent so far by the backend's request stores, every
  // statement of a batch counted.
  virtual uint64_t statements_executed() const = 0;

  // Inserts `keys` into the tenant `tenant_slug` (each key's tenant_id is
  // ignored) in one transaction, without audit events or change-feed rows:
  // a benchmark's key population, far faster than InsertKey. NOT_FOUND for
  // an unknown tenant; ALREADY_EXISTS when an id is taken.
  virtual absl::Status LoadKeys(absl::string_view tenant_slug,
                                const std::vector<NewKey>& keys) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_BENCH_STORE_H_
