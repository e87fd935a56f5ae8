// The benchmark store on a real MariaDB (server/storage/bench_store.h): the
// raw baselines read and write what they say, and the bulk key loader puts
// a tenant's keys in one transaction, refusing unknown tenants and taken
// ids without writing anything.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/storage/mysql/mysql_backend.h"
#include "tests/storage/mysql_test_backend.h"
#include "tests/storage/status_testing.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::MysqlTestBackend;

NewKey BenchKey(absl::string_view name) {
  NewKey key;
  key.id = core::GenerateKeyId().value_or("");
  key.name = std::string(name);
  key.scopes = {"admin:read"};
  key.created_by_type = "system";
  key.created_by_id = "bench";
  key.secret = {core::Sha256(name), 1};
  return key;
}

class MysqlBenchStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MysqlTestBackend>> backend =
        MysqlTestBackend::Create();
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }
  BenchStore& bench() { return backend_->backend()->bench(); }
  std::string Value(absl::string_view sql) {
    absl::StatusOr<std::string> v = backend_->db().QueryValue(sql);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.value_or("");
  }

  std::unique_ptr<MysqlTestBackend> backend_;
};

TEST_F(MysqlBenchStoreTest, TheBaselinesReadAndWriteWhatTheySay) {
  ASSERT_OK(bench().EnsureTable());
  ASSERT_OK(bench().EnsureTable());  // already there: nothing to do
  absl::StatusOr<uint64_t> rows = bench().InsertCommit();
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 1u);
  ASSERT_TRUE(bench().InsertCommit().ok());
  EXPECT_EQ(Value("SELECT COUNT(*) FROM bench_rows"), "2");

  absl::StatusOr<Tenant> tenant =
      backend_->backend()->keys().CreateTenant("bench", "Bench", nullptr, {});
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  NewKey key = BenchKey("point");
  key.tenant_id = tenant->id;
  storage::AuditEvent created;
  created.action = "api_key.created";
  created.category = "configuration";
  created.actor_type = "system";
  created.actor_id = "bench";
  created.metadata_json = "{}";
  ASSERT_TRUE(backend_->backend()->keys().InsertKey(key, created).ok());
  absl::StatusOr<bool> found = bench().PointSelect(key.id);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(*found);
  found = bench().PointSelect("keyNOSUCHKEY");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(*found);

  // The same read through the C client: the same answers, on connections
  // it keeps between calls; the id is a bound parameter (quotes and NUL
  // bytes are data, never SQL).
  for (int i = 0; i < 3; ++i) {
    found = bench().PointSelectCClient(key.id);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(*found);
    found = bench().PointSelectCClient("keyNOSUCHKEY");
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_FALSE(*found);
  }
  found = bench().PointSelectCClient(std::string("x' OR '1'='1\0", 13));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(*found);
}

TEST_F(MysqlBenchStoreTest, KeysLoadInBulkOrNotAtAll) {
  ASSERT_TRUE(backend_->backend()
                  ->keys()
                  .CreateTenant("load", "Load", nullptr, {})
                  .ok());
  // More than one INSERT's worth of rows.
  std::vector<NewKey> keys;
  for (int i = 0; i < 1203; ++i) keys.push_back(BenchKey(absl::StrCat("k", i)));
  ASSERT_OK(bench().LoadKeys("load", keys));
  EXPECT_EQ(Value("SELECT COUNT(*) FROM api_keys k JOIN tenants t"
                  " ON t.id = k.tenant_id WHERE t.slug = 'load'"),
            "1203");
  absl::StatusOr<bool> found = bench().PointSelect(keys[1202].id);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(*found);

  std::vector<NewKey> more = {BenchKey("fresh"), keys[7]};
  EXPECT_EQ(bench().LoadKeys("load", more).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(bench().LoadKeys("no-such-tenant", {BenchKey("x")}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Value("SELECT COUNT(*) FROM api_keys"), "1203");
}

}  // namespace
}  // namespace lumo::storage
