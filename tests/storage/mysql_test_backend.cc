#include "tests/storage/mysql_test_backend.h"

#include <utility>

namespace lumo::testing {

absl::StatusOr<std::unique_ptr<MysqlTestBackend>> MysqlTestBackend::Create() {
  std::unique_ptr<MysqlTestBackend> out(new MysqlTestBackend);
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
  if (!db.ok()) return db.status();
  out->db_ = *std::move(db);
  absl::StatusOr<std::unique_ptr<storage::MysqlBackend>> backend =
      storage::MysqlBackend::Open(out->db_->options());
  if (!backend.ok()) return backend.status();
  out->backend_ = *std::move(backend);
  return out;
}

MysqlTestBackend::~MysqlTestBackend() {
  backend_.reset();
  db_.reset();
}

std::unique_ptr<storage::MysqlBackend> MysqlTestBackend::TakeBackend(
    storage::MysqlBackend** raw) {
  if (raw != nullptr) *raw = backend_.get();
  return std::move(backend_);
}

}  // namespace lumo::testing
