#include "tests/storage/mysql_grammar/statement_capture.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::testing {
namespace {

struct Recorded {
  absl::Mutex mu;
  std::set<std::string> statements ABSL_GUARDED_BY(mu);
};

Recorded& TheRecord() {
  static Recorded* record = new Recorded();  // never destroyed
  return *record;
}

thread_local int ignore_depth = 0;

void Record(const std::string& sql) {
  if (ignore_depth > 0) return;
  Recorded& record = TheRecord();
  absl::MutexLock lock(&record.mu);
  record.statements.insert(sql);
}

}  // namespace

StatementCapture::StatementCapture()
    : previous_(storage::internal::statement_observer.exchange(&Record)) {}

StatementCapture::~StatementCapture() {
  storage::internal::statement_observer.store(previous_);
}

std::set<std::string> StatementCapture::Statements() const {
  Recorded& record = TheRecord();
  absl::MutexLock lock(&record.mu);
  return record.statements;
}

IgnoreStatements::IgnoreStatements() { ++ignore_depth; }

IgnoreStatements::~IgnoreStatements() { --ignore_depth; }

}  // namespace lumo::testing
