// An in-memory PepperUsageStore (server/storage/pepper_usage_store.h) that
// counts the keys, retired secrets and client secrets of a FakeDatabase,
// held to the contract by the pepper usage conformance suite. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_PEPPER_USAGE_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_PEPPER_USAGE_STORE_H_

#include <memory>
#include <vector>

#include "server/storage/pepper_usage_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakePepperUsageStore : public storage::PepperUsageStore {
 public:
  explicit FakePepperUsageStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::StatusOr<std::vector<storage::PepperVersionUsage>> PepperUsage()
      override;

 private:
  const std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_PEPPER_USAGE_STORE_H_
