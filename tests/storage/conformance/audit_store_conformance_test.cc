// The AuditStore contract (server/storage/audit_store.h): batched appends,
// the hash chain check, and the read side, run against every
// implementation.
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/storage/audit_chain.h"
#include "server/storage/audit_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

// Appends one event per action to the tenant's chain, in one batch.
void AppendActions(StoreFixture& f, int64_t tenant_id,
                   const std::vector<std::string>& actions) {
  std::vector<storage::PendingAuditEvent> batch;
  for (const std::string& action : actions) {
    storage::PendingAuditEvent e;
    e.tenant_id = tenant_id;
    e.event = Event(action);
    batch.push_back(std::move(e));
  }
  ASSERT_TRUE(f.audit().AppendEvents(batch).ok());
}

// The tenant's first 100 events, oldest first.
std::vector<storage::StoredAuditEvent> FirstEvents(StoreFixture& f,
                                                   int64_t tenant_id) {
  storage::AuditQuery q;
  q.limit = 100;
  q.oldest_first = true;
  absl::StatusOr<storage::AuditPage> page = f.audit().ListEvents(tenant_id, q);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? page->events : std::vector<storage::StoredAuditEvent>();
}

template <typename Impl>
class AuditStoreConformanceTest : public SharedStoreTest<Impl> {
 protected:
  void Append(int64_t tenant_id, const std::vector<std::string>& actions) {
    AppendActions(this->f(), tenant_id, actions);
  }
  std::vector<storage::StoredAuditEvent> All(int64_t tenant_id) {
    return FirstEvents(this->f(), tenant_id);
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

TYPED_TEST(AuditStoreConformanceTest,
           ExportPagesStopAtTheBoundAndCarryTheChain) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  ASSERT_TRUE(
      f.keys().InsertKey(NewKey(tenant.id), Event("api_key.created")).ok());
  this->Append(tenant.id, {"x.1", "x.2"});
  f.LetTimePass(absl::Milliseconds(5));
  this->Append(tenant.id, {"x.3"});
  this->Append(other.id, {"x.other"});
  absl::StatusOr<storage::ExportBound> bound =
      f.audit().ReadExportBound(tenant.id);
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_EQ(bound->lanes.lane_seqs.size(),
            static_cast<size_t>(storage::kChainLaneCount));
  EXPECT_EQ(bound->lanes.lane_seqs[0], 3);
  // Committed after the bound was read: not exported, on any lane.
  this->Append(tenant.id, {"x.after"});
  ASSERT_TRUE(
      f.keys().InsertKey(NewKey(tenant.id), Event("api_key.created")).ok());

  const std::vector<storage::StoredAuditEvent> all = this->All(tenant.id);
  // Every page of an export, from the first to the one that is done.
  auto export_all = [&](const storage::AuditQuery& q, int limit) {
    std::vector<storage::StoredChainRow> rows;
    int64_t after = 0;
    for (int pages = 0; pages < 100; ++pages) {
      absl::StatusOr<storage::ExportPageRows> page =
          f.audit().ExportPage(tenant.id, q, *bound, after, limit);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->rows.size(), static_cast<size_t>(limit));
      EXPECT_GT(page->next_after_id, after);
      rows.insert(rows.end(), page->rows.begin(), page->rows.end());
      if (page->done) return rows;
      after = page->next_after_id;
    }
    ADD_FAILURE() << "the export never ended";
    return rows;
  };
  // Paged by id: every row up to the bound, oldest first, none twice.
  std::vector<storage::StoredChainRow> rows =
      export_all(storage::AuditQuery(), 2);
  std::vector<std::string> actions;
  for (const storage::StoredChainRow& r : rows) {
    actions.push_back(r.row.event.action);
    EXPECT_EQ(r.row.tenant_id, tenant.id);
  }
  EXPECT_EQ(all.size(), rows.size() + 2);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "api_key.created"), 1);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "x.after"), 0);
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_LT(rows[i - 1].row.id, rows[i].row.id);
  }
  // The chain fields: x.2 links to x.1 on lane 0.
  std::map<std::string, storage::StoredChainRow> by_action;
  for (const storage::StoredChainRow& r : rows) {
    by_action[r.row.event.action] = r;
  }
  ASSERT_TRUE(by_action["x.1"].hash.has_value());
  ASSERT_TRUE(by_action["x.2"].prev_hash.has_value());
  EXPECT_EQ(*by_action["x.2"].prev_hash, *by_action["x.1"].hash);
  EXPECT_EQ(by_action["x.2"].row.seq, by_action["x.1"].row.seq + 1);
  EXPECT_EQ(by_action["x.2"].hash_version,
            static_cast<int>(storage::kCurrentAuditHashVersion));

  // Filters and the range apply as in ListEvents.
  storage::AuditQuery range;
  range.start = by_action["x.1"].row.created_at;
  range.end = by_action["x.3"].row.created_at;
  std::vector<storage::StoredChainRow> ranged = export_all(range, 100);
  ASSERT_EQ(ranged.size(), 2u);
  EXPECT_EQ(ranged[0].row.event.action, "x.1");
  EXPECT_EQ(ranged[1].row.event.action, "x.2");
  storage::AuditQuery by_name;
  by_name.action = "x.3";
  std::vector<storage::StoredChainRow> named = export_all(by_name, 100);
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].row.event.action, "x.3");

  EXPECT_EQ(f.audit()
                .ExportPage(tenant.id, storage::AuditQuery(), *bound, 0, 0)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  storage::ExportBound short_bound = *bound;
  short_bound.lanes.lane_seqs.pop_back();
  EXPECT_EQ(
      f.audit()
          .ExportPage(tenant.id, storage::AuditQuery(), short_bound, 0, 10)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
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

// A usage-counting event (the shape the usage auditor enqueues).
storage::PendingAuditEvent UsageEvent(int64_t tenant_id,
                                      absl::string_view key_id,
                                      absl::string_view channel,
                                      absl::string_view outcome,
                                      int64_t count) {
  storage::PendingAuditEvent e;
  e.tenant_id = tenant_id;
  e.event = Event("usage.counted");
  e.usage = storage::UsageCount{std::string(key_id), std::string(channel),
                                std::string(outcome), count};
  return e;
}

// Sums of rows by "channel/outcome".
std::map<std::string, int64_t> ByOutcome(
    const std::vector<storage::UsageRow>& rows) {
  std::map<std::string, int64_t> sums;
  for (const storage::UsageRow& r : rows) {
    sums[absl::StrCat(r.channel, "/", r.outcome)] += r.count;
  }
  return sums;
}

// The query covering every bucket the tenant's "usage.counted" events fell
// in (their hours or days), key filter unset.
storage::UsageQuery CoveringQuery(StoreFixture& f, int64_t tenant_id,
                                  storage::UsageGranularity g) {
  const std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant_id, "usage.counted");
  storage::UsageQuery q;
  q.granularity = g;
  if (events.empty()) return q;
  q.from = storage::UsageBucketStart(events.front().created_at, g);
  q.to = storage::UsageBucketStart(events.back().created_at, g) +
         storage::UsageBucketLength(g);
  return q;
}

TYPED_TEST(AuditStoreConformanceTest, UsageCountsAddUpPerKeyChannelAndOutcome) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  storage::PendingAuditEvent plain;
  plain.tenant_id = tenant.id;
  plain.event = Event("usage.not-counted");
  ASSERT_TRUE(
      f.audit()
          .AppendEvents(
              {UsageEvent(tenant.id, "keyAAAAAAAAA", "verify", "valid", 5),
               UsageEvent(tenant.id, "keyAAAAAAAAA", "verify", "revoked", 1),
               UsageEvent(tenant.id, "keyBBBBBBBBB", "api", "valid", 2),
               UsageEvent(tenant.id, "", "verify", "not_found", 3), plain,
               UsageEvent(other.id, "keyAAAAAAAAA", "verify", "valid", 100)})
          .ok());
  f.LetTimePass(absl::Milliseconds(5));
  ASSERT_TRUE(f.audit()
                  .AppendEvents({UsageEvent(tenant.id, "keyAAAAAAAAA", "verify",
                                            "valid", 4)})
                  .ok());

  for (storage::UsageGranularity g :
       {storage::UsageGranularity::kHour, storage::UsageGranularity::kDay}) {
    SCOPED_TRACE(g == storage::UsageGranularity::kDay ? "day" : "hour");
    storage::UsageQuery q = CoveringQuery(f, tenant.id, g);
    absl::StatusOr<std::vector<storage::UsageRow>> all =
        f.audit().ReadUsage(tenant.id, q);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_EQ(ByOutcome(*all),
              (std::map<std::string, int64_t>{{"api/valid", 2},
                                              {"verify/not_found", 3},
                                              {"verify/revoked", 1},
                                              {"verify/valid", 9}}));
    for (size_t i = 1; i < all->size(); ++i) {
      const storage::UsageRow& a = (*all)[i - 1];
      const storage::UsageRow& b = (*all)[i];
      EXPECT_TRUE(std::tie(a.bucket_start, a.channel, a.outcome) <
                  std::tie(b.bucket_start, b.channel, b.outcome));
    }
    for (const storage::UsageRow& r : *all) {
      EXPECT_EQ(r.bucket_start, storage::UsageBucketStart(r.bucket_start, g));
    }
    q.key_id = "keyAAAAAAAAA";
    absl::StatusOr<std::vector<storage::UsageRow>> one =
        f.audit().ReadUsage(tenant.id, q);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(ByOutcome(*one),
              (std::map<std::string, int64_t>{{"verify/revoked", 1},
                                              {"verify/valid", 9}}));
    // Before the first bucket: nothing.
    storage::UsageQuery before = q;
    before.to = q.from;
    before.from = q.from - storage::UsageBucketLength(g);
    absl::StatusOr<std::vector<storage::UsageRow>> none =
        f.audit().ReadUsage(tenant.id, before);
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_TRUE(none->empty());
  }

  // Each row is counted in the bucket of its own timestamp.
  const std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant.id, "usage.counted");
  ASSERT_EQ(events.size(), 5u);
  storage::UsageQuery last_hour;
  last_hour.from = storage::UsageBucketStart(events.back().created_at,
                                             storage::UsageGranularity::kHour);
  last_hour.to = last_hour.from + absl::Hours(1);
  last_hour.key_id = "keyAAAAAAAAA";
  absl::StatusOr<std::vector<storage::UsageRow>> hour =
      f.audit().ReadUsage(tenant.id, last_hour);
  ASSERT_TRUE(hour.ok()) << hour.status();
  int64_t expected_valid = 4;
  if (storage::UsageBucketStart(events.front().created_at,
                                storage::UsageGranularity::kHour) ==
      last_hour.from) {
    expected_valid += 5;
  }
  EXPECT_EQ(ByOutcome(*hour)["verify/valid"], expected_valid);

  storage::UsageQuery empty;
  empty.from = empty.to = last_hour.from;
  EXPECT_EQ(f.audit().ReadUsage(tenant.id, empty).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// An api_key.used event of `key_id` by a previous secret of its rotation at
// `rotated_at`, from `ip` with `agent`, standing for `count` uses.
storage::PendingAuditEvent PreviousSecretEvent(
    int64_t tenant_id, absl::string_view key_id, absl::Time rotated_at,
    absl::string_view ip, absl::string_view agent, int64_t count) {
  storage::PendingAuditEvent e;
  e.tenant_id = tenant_id;
  e.event = Event("previous.used");
  e.event.ip_address = std::string(ip);
  e.event.user_agent = std::string(agent);
  e.previous_secret_use =
      storage::PreviousSecretUse{std::string(key_id), rotated_at, count};
  return e;
}

TYPED_TEST(AuditStoreConformanceTest,
           PreviousSecretUsesAreTalliedPerRotationAndClient) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  const std::string key = "keyPPPPPPPPP";
  // Microseconds survive the round trip (a key's rotated_at is DATETIME(6)).
  const absl::Time first = absl::FromUnixMicros(1796543210123456);
  const absl::Time second = first + absl::Hours(1);
  storage::PendingAuditEvent current_secret =
      PreviousSecretEvent(tenant.id, key, first, "10.0.0.9", "current/1", 1);
  current_secret.previous_secret_use.reset();
  ASSERT_TRUE(
      f.audit()
          .AppendEvents(
              {PreviousSecretEvent(tenant.id, key, first, "10.0.0.1", "a/1", 3),
               PreviousSecretEvent(tenant.id, key, first, "10.0.0.2", "b/2", 2),
               PreviousSecretEvent(tenant.id, key, second, "10.0.0.1", "a/1",
                                   7),
               PreviousSecretEvent(other.id, key, first, "10.0.0.3", "c/3", 5),
               current_secret})
          .ok());
  f.LetTimePass(absl::Milliseconds(5));
  ASSERT_TRUE(f.audit()
                  .AppendEvents({PreviousSecretEvent(tenant.id, key, first,
                                                     "10.0.0.1", "a/1", 1)})
                  .ok());
  const std::vector<storage::StoredAuditEvent> events =
      EventsOf(f, tenant.id, "previous.used");
  ASSERT_EQ(events.size(), 5u);

  absl::StatusOr<std::vector<storage::PreviousSecretUser>> users =
      f.audit().ListPreviousSecretUsers(tenant.id, key, first, 50);
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->size(), 2u);
  // The most recently seen first; counts add up per client.
  EXPECT_EQ((*users)[0].ip_address, "10.0.0.1");
  EXPECT_EQ((*users)[0].user_agent, "a/1");
  EXPECT_EQ((*users)[0].count, 4);
  EXPECT_EQ((*users)[0].last_seen_at, events.back().created_at);
  EXPECT_EQ((*users)[1].ip_address, "10.0.0.2");
  EXPECT_EQ((*users)[1].user_agent, "b/2");
  EXPECT_EQ((*users)[1].count, 2);
  EXPECT_EQ((*users)[1].last_seen_at, events[1].created_at);

  absl::StatusOr<std::vector<storage::PreviousSecretUser>> one =
      f.audit().ListPreviousSecretUsers(tenant.id, key, first, 1);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].ip_address, "10.0.0.1");

  // Another rotation of the key is another list; another tenant sees none
  // of this tenant's tallies.
  absl::StatusOr<std::vector<storage::PreviousSecretUser>> later =
      f.audit().ListPreviousSecretUsers(tenant.id, key, second, 50);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].count, 7);
  absl::StatusOr<std::vector<storage::PreviousSecretUser>> theirs =
      f.audit().ListPreviousSecretUsers(other.id, key, first, 50);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_EQ(theirs->size(), 1u);
  EXPECT_EQ((*theirs)[0].ip_address, "10.0.0.3");
  absl::StatusOr<std::vector<storage::PreviousSecretUser>> none =
      f.audit().ListPreviousSecretUsers(tenant.id, "keyNNNNNNNNN", first, 50);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  for (int bad : {0, 101}) {
    EXPECT_EQ(f.audit()
                  .ListPreviousSecretUsers(tenant.id, key, first, bad)
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TYPED_TEST(AuditStoreConformanceTest, SuspiciousEventsAreCountedPerDay) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  std::vector<storage::PendingAuditEvent> batch;
  for (const auto& [tenant_id, suspicious] :
       std::vector<std::pair<int64_t, bool>>{{tenant.id, true},
                                             {tenant.id, true},
                                             {tenant.id, false},
                                             {other.id, true}}) {
    storage::PendingAuditEvent e;
    e.tenant_id = tenant_id;
    e.event = Event("auth.api_key.failed");
    e.event.suspicious = suspicious;
    batch.push_back(std::move(e));
  }
  ASSERT_TRUE(f.audit().AppendEvents(batch).ok());
  const std::vector<storage::StoredAuditEvent> all = this->All(tenant.id);
  ASSERT_FALSE(all.empty());
  const absl::Time day = storage::UsageBucketStart(
      all.back().created_at, storage::UsageGranularity::kDay);
  absl::StatusOr<std::vector<storage::DayCount>> days =
      f.audit().CountSuspiciousPerDay(tenant.id, day - absl::Hours(48),
                                      day + absl::Hours(48));
  ASSERT_TRUE(days.ok()) << days.status();
  ASSERT_EQ(days->size(), 1u);
  EXPECT_EQ((*days)[0].day_start, day);
  EXPECT_EQ((*days)[0].count, 2);
  // Days outside the range are not counted.
  days = f.audit().CountSuspiciousPerDay(tenant.id, day + absl::Hours(24),
                                         day + absl::Hours(48));
  ASSERT_TRUE(days.ok()) << days.status();
  EXPECT_TRUE(days->empty());
  EXPECT_EQ(f.audit()
                .CountSuspiciousPerDay(tenant.id, day + absl::Hours(1),
                                       day + absl::Hours(48))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      f.audit().CountSuspiciousPerDay(tenant.id, day, day).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(AuditStoreConformanceTest, TopUsageKeysRankByCallsOrFailures) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  ASSERT_TRUE(
      f.audit()
          .AppendEvents(
              {UsageEvent(tenant.id, "keyAAAAAAAAA", "verify", "valid", 10),
               UsageEvent(tenant.id, "keyAAAAAAAAA", "verify", "rate_limited",
                          1),
               UsageEvent(tenant.id, "keyBBBBBBBBB", "api", "valid", 3),
               UsageEvent(tenant.id, "keyBBBBBBBBB", "api",
                          "insufficient_scope", 4),
               UsageEvent(tenant.id, "keyCCCCCCCCC", "verify", "valid", 7),
               UsageEvent(tenant.id, "", "verify", "malformed", 2)})
          .ok());
  const storage::UsageQuery q =
      CoveringQuery(f, tenant.id, storage::UsageGranularity::kDay);
  absl::StatusOr<std::vector<storage::KeyUsageTotal>> calls =
      f.audit().TopUsageKeys(tenant.id, q, /*by_failures=*/false, 10);
  ASSERT_TRUE(calls.ok()) << calls.status();
  std::vector<std::string> order;
  for (const storage::KeyUsageTotal& t : *calls) order.push_back(t.key_id);
  // B and C tie at 7 calls: by key id.
  EXPECT_EQ(order, (std::vector<std::string>{"keyAAAAAAAAA", "keyBBBBBBBBB",
                                             "keyCCCCCCCCC", ""}));
  EXPECT_EQ((*calls)[0].calls, 11);
  EXPECT_EQ((*calls)[0].failures, 1);
  EXPECT_EQ((*calls)[3].calls, 2);
  EXPECT_EQ((*calls)[3].failures, 2);

  absl::StatusOr<std::vector<storage::KeyUsageTotal>> failures =
      f.audit().TopUsageKeys(tenant.id, q, /*by_failures=*/true, 2);
  ASSERT_TRUE(failures.ok()) << failures.status();
  ASSERT_EQ(failures->size(), 2u);
  EXPECT_EQ((*failures)[0].key_id, "keyBBBBBBBBB");
  EXPECT_EQ((*failures)[0].failures, 4);
  EXPECT_EQ((*failures)[1].key_id, "");
  EXPECT_EQ((*failures)[1].failures, 2);

  absl::StatusOr<std::vector<storage::KeyUsageTotal>> only_failing =
      f.audit().TopUsageKeys(tenant.id, q, /*by_failures=*/true, 10);
  ASSERT_TRUE(only_failing.ok()) << only_failing.status();
  EXPECT_EQ(only_failing->size(), 3u);  // C never failed
  EXPECT_EQ(f.audit().TopUsageKeys(tenant.id, q, false, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Retention runs over the whole database: a fresh one per test.
template <typename Impl>
class AuditPurgeConformanceTest : public FreshStoreTest<Impl> {};
TYPED_TEST_SUITE(AuditPurgeConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(AuditPurgeConformanceTest,
           RowsPastTheRetentionGoAndTheRestStillVerify) {
  StoreFixture& f = this->f();
  const storage::Tenant old_tenant = NewTenant(f);
  const storage::Tenant new_tenant = NewTenant(f);
  auto append = [&](int64_t tenant_id, std::vector<std::string> actions) {
    AppendActions(f, tenant_id, actions);
  };
  auto all = [&](int64_t tenant_id) { return FirstEvents(f, tenant_id); };
  // On the writer lane and on a transaction lane (a key's creation).
  append(old_tenant.id, {"old.1", "old.2", "old.3"});
  ASSERT_TRUE(
      f.keys().InsertKey(NewKey(old_tenant.id), Event("api_key.created")).ok());
  const size_t aged = all(old_tenant.id).size();
  ASSERT_GE(aged, 4u);
  f.AgeAuditRows(old_tenant.id, absl::Hours(24 * 10));
  append(old_tenant.id, {"new.1", "new.2"});
  append(new_tenant.id, {"other.1"});
  const size_t other_rows = all(new_tenant.id).size();

  EXPECT_EQ(f.PurgeAudit(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(all(old_tenant.id).size(), aged + 2);  // nothing went
  absl::StatusOr<int64_t> purged = f.PurgeAudit(7);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, static_cast<int64_t>(aged));

  std::vector<std::string> left;
  for (const storage::StoredAuditEvent& e : all(old_tenant.id)) {
    left.push_back(e.event.action);
  }
  EXPECT_EQ(left, (std::vector<std::string>{"new.1", "new.2"}));
  EXPECT_EQ(all(new_tenant.id).size(), other_rows);
  // The chain now starts after the cut, and later appends continue it.
  append(old_tenant.id, {"new.3"});
  absl::StatusOr<storage::ChainVerification> v =
      f.audit().VerifyChain(old_tenant.id);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->rows_checked, 3);
  // Nothing is old enough any more.
  absl::StatusOr<int64_t> again = f.PurgeAudit(7);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
}

TYPED_TEST(AuditPurgeConformanceTest, UsageBucketsPastTheirRetentionGo) {
  using G = storage::UsageGranularity;
  StoreFixture& f = this->f();
  const storage::Tenant old_tenant = NewTenant(f);
  const storage::Tenant new_tenant = NewTenant(f);
  ASSERT_TRUE(
      f.audit()
          .AppendEvents(
              {UsageEvent(old_tenant.id, "keyAAAAAAAAA", "verify", "valid", 5),
               UsageEvent(old_tenant.id, "keyBBBBBBBBB", "api", "valid", 2),
               UsageEvent(new_tenant.id, "keyCCCCCCCCC", "verify", "valid", 1)})
          .ok());
  // The tenant's rollup rows at `g` in the buckets its events fell in,
  // moved `back` into the past.
  auto rows = [&](int64_t tenant_id, G g, absl::Duration back) -> size_t {
    storage::UsageQuery q = CoveringQuery(f, tenant_id, g);
    q.from -= back;
    q.to -= back;
    absl::StatusOr<std::vector<storage::UsageRow>> r =
        f.audit().ReadUsage(tenant_id, q);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->size() : 0;
  };
  const absl::Duration aged = absl::Hours(24 * 3);
  ASSERT_EQ(rows(old_tenant.id, G::kHour, absl::ZeroDuration()), 2u);
  ASSERT_EQ(rows(old_tenant.id, G::kDay, absl::ZeroDuration()), 2u);
  f.AgeUsage(old_tenant.id, aged);
  ASSERT_EQ(rows(old_tenant.id, G::kHour, absl::ZeroDuration()), 0u);
  ASSERT_EQ(rows(old_tenant.id, G::kHour, aged), 2u);
  ASSERT_EQ(rows(old_tenant.id, G::kDay, aged), 2u);

  EXPECT_EQ(f.PurgeUsage(0, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.PurgeUsage(5, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rows(old_tenant.id, G::kHour, aged), 2u);  // nothing went

  // Hourly buckets kept 2 days go; daily ones kept 5 days stay.
  absl::StatusOr<int64_t> purged = f.PurgeUsage(2, 5);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(rows(old_tenant.id, G::kHour, aged), 0u);
  EXPECT_EQ(rows(old_tenant.id, G::kDay, aged), 2u);
  // A daily bucket starts at or before its events: 3 days back it started
  // more than 2 days ago.
  purged = f.PurgeUsage(2, 2);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(rows(old_tenant.id, G::kDay, aged), 0u);
  // The recent buckets stay.
  EXPECT_EQ(rows(new_tenant.id, G::kHour, absl::ZeroDuration()), 1u);
  EXPECT_EQ(rows(new_tenant.id, G::kDay, absl::ZeroDuration()), 1u);
  purged = f.PurgeUsage(1, 1);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 0);
}

}  // namespace
}  // namespace lumo::testing
