// The AuditStore contract (server/storage/audit_store.h): batched appends,
// the hash chain check, and the read side, run against every
// implementation.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/storage/audit_chain.h"
#include "server/storage/audit_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

template <typename Impl>
class AuditStoreConformanceTest : public SharedStoreTest<Impl> {
 protected:
  // Appends one event per action to the tenant's chain, in one batch.
  void Append(int64_t tenant_id, const std::vector<std::string>& actions) {
    std::vector<storage::PendingAuditEvent> batch;
    for (const std::string& action : actions) {
      storage::PendingAuditEvent e;
      e.tenant_id = tenant_id;
      e.event = Event(action);
      batch.push_back(std::move(e));
    }
    ASSERT_TRUE(this->f().audit().AppendEvents(batch).ok());
  }
  std::vector<storage::StoredAuditEvent> All(int64_t tenant_id) {
    storage::AuditQuery q;
    q.limit = 100;
    q.oldest_first = true;
    absl::StatusOr<storage::AuditPage> page =
        this->f().audit().ListEvents(tenant_id, q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->events : std::vector<storage::StoredAuditEvent>();
  }
  storage::ChainVerification Verify(int64_t tenant_id) {
    absl::StatusOr<storage::ChainVerification> v =
        this->f().audit().VerifyChain(tenant_id);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.value_or(storage::ChainVerification());
  }
};
TYPED_TEST_SUITE(AuditStoreConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(AuditStoreConformanceTest, AppendedEventsReadBackChainedInOrder) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->Append(tenant.id, {"a.one", "a.two", "a.three"});
  std::vector<storage::StoredAuditEvent> events = this->All(tenant.id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].event.action, "a.one");
  EXPECT_EQ(events[2].event.action, "a.three");
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].tenant_id, tenant.id);
    EXPECT_EQ(events[i].lane, storage::kWriterChainLane);
    EXPECT_EQ(events[i].event.actor_id, "conformance");
    EXPECT_EQ(events[i].event.outcome, "success");
    if (i > 0) {
      EXPECT_EQ(events[i].seq, events[i - 1].seq + 1);
      EXPECT_GT(events[i].id, events[i - 1].id);
      EXPECT_GE(events[i].created_at, events[i - 1].created_at);
    }
  }
  absl::StatusOr<storage::StoredAuditEvent> one =
      f.audit().GetEvent(tenant.id, events[1].id);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->event.action, "a.two");
  EXPECT_EQ(one->created_at, events[1].created_at);

  const storage::ChainVerification v = this->Verify(tenant.id);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.rows_checked, 3);
  EXPECT_EQ(v.last_seq, events[2].seq);
}

TYPED_TEST(AuditStoreConformanceTest, EventsAreStoredAsNormalized) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::PendingAuditEvent e;
  e.tenant_id = tenant.id;
  e.event = Event("a.normalized");
  e.event.user_agent = "curl/8\x01\n\xc3\xa9";
  e.event.metadata_json = "";
  e.event.suspicious = true;
  ASSERT_TRUE(f.audit().AppendEvents({e}).ok());
  std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant.id, "a.normalized");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.user_agent, "curl/8????");
  EXPECT_EQ(events[0].event.metadata_json, "{}");
  EXPECT_TRUE(events[0].event.suspicious);
  const storage::ChainVerification v = this->Verify(tenant.id);
  EXPECT_TRUE(v.ok) << v.problem;
}

TYPED_TEST(AuditStoreConformanceTest, SlugsResolveAndUnknownOnesGoToPlatform) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::string known = Unique("a.by-slug.");
  const std::string unknown = Unique("a.unknown-slug.");
  storage::PendingAuditEvent by_slug;
  by_slug.tenant_slug = tenant.slug;
  by_slug.event = Event(known);
  storage::PendingAuditEvent nowhere;
  nowhere.tenant_slug = Unique("no-such-tenant");
  nowhere.event = Event(unknown);
  ASSERT_TRUE(f.audit().AppendEvents({by_slug, nowhere}).ok());
  EXPECT_EQ(EventsOf(f, tenant.id, known).size(), 1u);
  EXPECT_EQ(EventsOf(f, 0, unknown).size(), 1u);
  EXPECT_EQ(EventsOf(f, tenant.id, unknown).size(), 0u);
  EXPECT_TRUE(this->Verify(0).ok);
}

TYPED_TEST(AuditStoreConformanceTest, ATamperedRowIsNamed) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  this->Append(tenant.id, {"t.1", "t.2", "t.3", "t.4"});
  this->Append(other.id, {"o.1"});
  const std::vector<storage::StoredAuditEvent> events = this->All(tenant.id);
  ASSERT_EQ(events.size(), 4u);
  f.TamperAuditRow(events[2].id, "203.0.113.9");
  const storage::ChainVerification v = this->Verify(tenant.id);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken_id, events[2].id) << v.problem;
  EXPECT_EQ(v.broken_seq, events[2].seq);
  EXPECT_EQ(v.broken_lane, storage::kWriterChainLane);
  EXPECT_FALSE(v.problem.empty());
  EXPECT_TRUE(this->Verify(other.id).ok);
}

TYPED_TEST(AuditStoreConformanceTest, ADeletedRowBreaksTheChainAtTheNext) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->Append(tenant.id, {"d.1", "d.2", "d.3"});
  const std::vector<storage::StoredAuditEvent> events = this->All(tenant.id);
  ASSERT_EQ(events.size(), 3u);
  f.DeleteAuditRow(events[1].id);
  const storage::ChainVerification v = this->Verify(tenant.id);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken_id, events[2].id) << v.problem;
}

TYPED_TEST(AuditStoreConformanceTest, ADeletedLastRowBreaksTheHead) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->Append(tenant.id, {"h.1", "h.2"});
  const std::vector<storage::StoredAuditEvent> events = this->All(tenant.id);
  ASSERT_EQ(events.size(), 2u);
  f.DeleteAuditRow(events[1].id);
  const storage::ChainVerification v = this->Verify(tenant.id);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken_id, 0) << v.problem;
  EXPECT_EQ(v.broken_lane, storage::kWriterChainLane);
}

TYPED_TEST(AuditStoreConformanceTest, LifecycleEventsChainOnTransactionLanes) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        f.keys().InsertKey(NewKey(tenant.id), Event("api_key.created")).ok());
  }
  this->Append(tenant.id, {"usage"});
  const std::vector<storage::StoredAuditEvent> created =
      EventsOf(f, tenant.id, "api_key.created");
  ASSERT_EQ(created.size(), 3u);
  for (const storage::StoredAuditEvent& e : created) {
    EXPECT_GE(e.lane, 1);
    EXPECT_LE(e.lane, storage::kTransactionChainLanes);
    EXPECT_GE(e.seq, 1);
  }
  const storage::ChainVerification v = this->Verify(tenant.id);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.rows_checked, 4);
}

TYPED_TEST(AuditStoreConformanceTest, ACursorReturnsExactlyWhatCameAfter) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->Append(tenant.id, {"c.before"});
  storage::AuditQuery first;
  first.limit = 0;
  first.want_cursor = true;
  absl::StatusOr<storage::AuditPage> start =
      f.audit().ListEvents(tenant.id, first);
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->total, 1);
  EXPECT_TRUE(start->events.empty());
  ASSERT_TRUE(start->next_cursor.has_value());
  ASSERT_EQ(start->next_cursor->lane_seqs.size(),
            static_cast<size_t>(storage::kChainLaneCount));

  this->Append(tenant.id, {"c.after1", "c.after2"});
  ASSERT_TRUE(f.keys().InsertKey(NewKey(tenant.id), Event("c.lifecycle")).ok());
  storage::AuditQuery next;
  next.limit = 100;
  next.after_cursor = start->next_cursor;
  absl::StatusOr<storage::AuditPage> after =
      f.audit().ListEvents(tenant.id, next);
  ASSERT_TRUE(after.ok()) << after.status();
  std::vector<std::string> actions;
  for (const auto& e : after->events) actions.push_back(e.event.action);
  std::sort(actions.begin(), actions.end());
  EXPECT_EQ(actions,
            (std::vector<std::string>{"c.after1", "c.after2", "c.lifecycle"}));
  ASSERT_TRUE(after->next_cursor.has_value());

  next.after_cursor = after->next_cursor;
  absl::StatusOr<storage::AuditPage> nothing =
      f.audit().ListEvents(tenant.id, next);
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_TRUE(nothing->events.empty());

  storage::AuditQuery bad;
  bad.after_cursor = storage::AuditCursor{{1, 2, 3}};
  EXPECT_EQ(f.audit().ListEvents(tenant.id, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(AuditStoreConformanceTest, ListPagesWithPositionsAndCapsTheCount) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  std::vector<storage::PendingAuditEvent> batch;
  for (int i = 0; i < 9; ++i) {
    storage::PendingAuditEvent e;
    e.tenant_id = tenant.id;
    e.event = Event(i % 3 == 0 ? "p.third" : "p.other");
    batch.push_back(e);
  }
  ASSERT_TRUE(f.audit().AppendEvents(batch).ok());
  for (bool oldest_first : {false, true}) {
    for (const std::string action : {"", "p.other"}) {
      storage::AuditQuery all;
      all.oldest_first = oldest_first;
      all.action = action;
      all.limit = 100;
      absl::StatusOr<storage::AuditPage> whole =
          f.audit().ListEvents(tenant.id, all);
      ASSERT_TRUE(whole.ok()) << whole.status();
      EXPECT_FALSE(whole->has_more);
      std::vector<int64_t> expected;
      for (const auto& e : whole->events) expected.push_back(e.id);
      ASSERT_EQ(expected.size(), action.empty() ? 9u : 6u);
      for (int limit : {1, 2, 4}) {
        storage::AuditQuery walk = all;
        walk.limit = limit;
        walk.count.wanted = false;
        std::vector<int64_t> ids;
        for (int pages = 0; pages < 20; ++pages) {
          absl::StatusOr<storage::AuditPage> page =
              f.audit().ListEvents(tenant.id, walk);
          ASSERT_TRUE(page.ok()) << page.status();
          EXPECT_EQ(page->total_kind, storage::TotalKind::kNotCounted);
          for (const auto& e : page->events) ids.push_back(e.id);
          if (!page->has_more) break;
          ASSERT_EQ(page->events.size(), static_cast<size_t>(limit));
          walk.after_position = page->events.back().id;
        }
        EXPECT_EQ(ids, expected) << "oldest_first " << oldest_first
                                 << " action " << action << " limit " << limit;
      }
    }
  }
  storage::AuditQuery capped;
  capped.limit = 2;
  capped.count.cap = 4;
  absl::StatusOr<storage::AuditPage> page =
      f.audit().ListEvents(tenant.id, capped);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 4);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kAtLeast);
  EXPECT_TRUE(page->has_more);
  capped.count.cap = 9;
  page = f.audit().ListEvents(tenant.id, capped);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 9);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kExact);
  capped.page = 2;
  capped.after_position = page->events.back().id;
  EXPECT_EQ(f.audit().ListEvents(tenant.id, capped).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(AuditStoreConformanceTest, FiltersCountsAndPaging) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  std::vector<storage::PendingAuditEvent> batch;
  for (int i = 0; i < 5; ++i) {
    storage::PendingAuditEvent e;
    e.tenant_id = tenant.id;
    e.event = Event(i % 2 == 0 ? "f.even" : "f.odd");
    e.event.suspicious = i < 2;
    e.event.outcome = i == 4 ? "failure" : "success";
    e.event.target_id = absl::StrCat("target-", i);
    batch.push_back(e);
  }
  ASSERT_TRUE(f.audit().AppendEvents(batch).ok());

  storage::AuditQuery even;
  even.action = "f.even";
  absl::StatusOr<storage::AuditPage> page =
      f.audit().ListEvents(tenant.id, even);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 3);
  EXPECT_EQ(page->suspicious_total, 1);
  ASSERT_EQ(page->events.size(), 3u);
  // Newest first by default.
  EXPECT_EQ(page->events[0].event.target_id, "target-4");
  EXPECT_EQ(page->events[2].event.target_id, "target-0");

  storage::AuditQuery paged;
  paged.limit = 2;
  paged.page = 3;
  page = f.audit().ListEvents(tenant.id, paged);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 5);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].event.target_id, "target-0");

  storage::AuditQuery narrow;
  narrow.outcome = "failure";
  narrow.target_id = "target-4";
  page = f.audit().ListEvents(tenant.id, narrow);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 1);
  storage::AuditQuery suspicious;
  suspicious.suspicious = true;
  page = f.audit().ListEvents(tenant.id, suspicious);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 2);
  page = f.audit().ListEvents(other.id, storage::AuditQuery());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 0);

  const std::vector<storage::StoredAuditEvent> all = this->All(tenant.id);
  ASSERT_EQ(all.size(), 5u);
  storage::AuditQuery after;
  after.after_id = all[2].id;
  page = f.audit().ListEvents(tenant.id, after);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 2);
  EXPECT_EQ(f.audit().GetEvent(other.id, all[0].id).status().code(),
            absl::StatusCode::kNotFound);

  storage::AuditQuery bad;
  bad.limit = 101;
  EXPECT_EQ(f.audit().ListEvents(tenant.id, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.limit = 10;
  bad.page = 0;
  EXPECT_EQ(f.audit().ListEvents(tenant.id, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(AuditStoreConformanceTest, ExportHonoursTheRangeAndTheCap) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  this->Append(tenant.id, {"x.1", "x.2"});
  f.LetTimePass(absl::Milliseconds(5));
  this->Append(tenant.id, {"x.3"});
  const std::vector<storage::StoredAuditEvent> all = this->All(tenant.id);
  ASSERT_EQ(all.size(), 3u);
  ASSERT_GT(all[2].created_at, all[1].created_at);

  absl::StatusOr<std::vector<storage::StoredAuditEvent>> early =
      f.audit().ExportEvents(tenant.id, std::nullopt, all[2].created_at, 100);
  ASSERT_TRUE(early.ok()) << early.status();
  ASSERT_EQ(early->size(), 2u);
  EXPECT_EQ((*early)[0].event.action, "x.1");
  absl::StatusOr<std::vector<storage::StoredAuditEvent>> late =
      f.audit().ExportEvents(tenant.id, all[2].created_at, std::nullopt, 100);
  ASSERT_TRUE(late.ok()) << late.status();
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].event.action, "x.3");
  absl::StatusOr<std::vector<storage::StoredAuditEvent>> capped =
      f.audit().ExportEvents(tenant.id, std::nullopt, std::nullopt, 2);
  ASSERT_TRUE(capped.ok()) << capped.status();
  ASSERT_EQ(capped->size(), 2u);
  EXPECT_EQ((*capped)[1].event.action, "x.2");
}

TYPED_TEST(AuditStoreConformanceTest, UseMovesLastUsedAtForward) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  storage::PendingAuditEvent use;
  use.tenant_id = tenant.id;
  use.event = Event("api_key.verified");
  use.used_key_id = key.id;
  ASSERT_TRUE(f.audit().AppendEvents({use}).ok());
  absl::StatusOr<storage::ApiKeyRecord> first =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->last_used_at.has_value());
  const std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant.id, "api_key.verified");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_GE(*first->last_used_at, events[0].created_at);

  f.LetTimePass(absl::Milliseconds(5));
  ASSERT_TRUE(f.audit().AppendEvents({use}).ok());
  absl::StatusOr<storage::ApiKeyRecord> second =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(second->last_used_at.has_value());
  EXPECT_GT(*second->last_used_at, *first->last_used_at);
}

}  // namespace
}  // namespace lumo::testing
