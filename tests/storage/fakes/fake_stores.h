// Every in-memory fake store over one FakeDatabase, the way the MySQL
// backend builds every store over one database: what the conformance
// suites run against beside MySQL. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_STORES_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_STORES_H_

#include <memory>

#include "tests/storage/fakes/fake_audit_store.h"
#include "tests/storage/fakes/fake_change_feed_store.h"
#include "tests/storage/fakes/fake_client_store.h"
#include "tests/storage/fakes/fake_counter_store.h"
#include "tests/storage/fakes/fake_database.h"
#include "tests/storage/fakes/fake_key_store.h"
#include "tests/storage/fakes/fake_pepper_usage_store.h"
#include "tests/storage/fakes/fake_portal_store.h"
#include "tests/storage/fakes/fake_user_store.h"
#include "tests/storage/fakes/fake_webhook_store.h"

namespace lumo::testing {

struct FakeStores {
  // A new, empty database with a running clock.
  FakeStores()
      : db(std::make_shared<FakeDatabase>()),
        keys(db),
        users(db),
        clients(db),
        audit(db),
        feed(db),
        portal(db),
        pepper_usage(db),
        webhooks(db),
        counters(db) {}

  const std::shared_ptr<FakeDatabase> db;
  FakeKeyStore keys;
  FakeUserStore users;
  FakeClientStore clients;
  FakeAuditStore audit;
  FakeChangeFeedStore feed;
  FakePortalStore portal;
  FakePepperUsageStore pepper_usage;
  FakeWebhookStore webhooks;
  FakeCounterStore counters;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_STORES_H_
