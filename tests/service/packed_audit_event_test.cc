// PackedAuditEvent (server/service/packed_audit_event.h): an event unpacks to
// what was packed, field for field, whatever bytes its strings hold, however
// long they are, whichever optional parts it has and whichever of its
// strings are equal; fields that repeat an earlier one are stored once; a
// verification event packs into a fraction of its unpacked size; a summary
// unpacks with the count set last.
#include "server/service/packed_audit_event.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumo::service {
namespace {

using storage::PendingAuditEvent;

// Every field, one by one, so that a failure names the field.
void ExpectSame(const PendingAuditEvent& want, const PendingAuditEvent& got) {
  EXPECT_EQ(got.tenant_id, want.tenant_id);
  EXPECT_EQ(got.tenant_slug, want.tenant_slug);
  EXPECT_EQ(got.event.action, want.event.action);
  EXPECT_EQ(got.event.category, want.event.category);
  EXPECT_EQ(got.event.actor_type, want.event.actor_type);
  EXPECT_EQ(got.event.actor_id, want.event.actor_id);
  EXPECT_EQ(got.event.target_type, want.event.target_type);
  EXPECT_EQ(got.event.target_id, want.event.target_id);
  EXPECT_EQ(got.event.outcome, want.event.outcome);
  EXPECT_EQ(got.event.suspicious, want.event.suspicious);
  EXPECT_EQ(got.event.ip_address, want.event.ip_address);
  EXPECT_EQ(got.event.user_agent, want.event.user_agent);
  EXPECT_EQ(got.event.request_id, want.event.request_id);
  EXPECT_EQ(got.event.metadata_json, want.event.metadata_json);
  EXPECT_EQ(got.used_key_id, want.used_key_id);
  ASSERT_EQ(got.usage.has_value(), want.usage.has_value());
  if (want.usage.has_value()) {
    EXPECT_EQ(got.usage->key_id, want.usage->key_id);
    EXPECT_EQ(got.usage->channel, want.usage->channel);
    EXPECT_EQ(got.usage->outcome, want.usage->outcome);
    EXPECT_EQ(got.usage->count, want.usage->count);
  }
  ASSERT_EQ(got.previous_secret_use.has_value(),
            want.previous_secret_use.has_value());
  if (want.previous_secret_use.has_value()) {
    EXPECT_EQ(got.previous_secret_use->key_id,
              want.previous_secret_use->key_id);
    EXPECT_EQ(got.previous_secret_use->rotated_at,
              want.previous_secret_use->rotated_at);
    EXPECT_EQ(got.previous_secret_use->count, want.previous_secret_use->count);
  }
}

// The string fields of `e` in a fixed order (the optional parts' only when
// present), to fill them in loops.
std::vector<std::string*> Strings(PendingAuditEvent& e) {
  std::vector<std::string*> out = {
      &e.tenant_slug,      &e.event.action,     &e.event.category,
      &e.event.actor_type, &e.event.actor_id,   &e.event.target_type,
      &e.event.target_id,  &e.event.outcome,    &e.event.ip_address,
      &e.event.user_agent, &e.event.request_id, &e.event.metadata_json,
      &e.used_key_id};
  if (e.usage.has_value()) {
    out.push_back(&e.usage->key_id);
    out.push_back(&e.usage->channel);
    out.push_back(&e.usage->outcome);
  }
  if (e.previous_secret_use.has_value()) {
    out.push_back(&e.previous_secret_use->key_id);
  }
  return out;
}

PendingAuditEvent WithBothParts() {
  PendingAuditEvent e;
  e.usage.emplace();
  e.previous_secret_use.emplace();
  return e;
}

void ExpectRoundTrip(const PendingAuditEvent& e) {
  ExpectSame(e, PackedAuditEvent(e).Unpack());
}

TEST(PackedAuditEventTest, EveryFieldComesBack) {
  PendingAuditEvent e = WithBothParts();
  e.tenant_id = 42;
  int i = 0;
  for (std::string* s : Strings(e)) *s = "field-" + std::to_string(i++);
  e.event.suspicious = true;
  e.usage->count = 7;
  e.previous_secret_use->count = 9;
  e.previous_secret_use->rotated_at =
      absl::FromUnixNanos(1'765'000'000'123'456'789);
  ExpectRoundTrip(e);
}

TEST(PackedAuditEventTest, EveryByteValueInEveryField) {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  PendingAuditEvent e = WithBothParts();
  int i = 0;
  for (std::string* s : Strings(e)) {
    // Each field starts at another byte, so that no two are equal.
    *s = all_bytes.substr(i) + all_bytes.substr(0, i);
    ++i;
  }
  ExpectRoundTrip(e);
  // A string of NULs only, and one of 0xff only (the varint's high bit).
  e.event.metadata_json = std::string(300, '\0');
  e.event.user_agent = std::string(300, '\xff');
  ExpectRoundTrip(e);
}

TEST(PackedAuditEventTest, LengthsAcrossTheVarintSizes) {
  // 2 * length is the code: the boundaries of its 1-, 2-, 3- and 4-byte
  // forms.
  for (size_t length : {0, 1, 63, 64, 65, 127, 128, 8191, 8192, 8193, 16383,
                        16384, 1048575, 1048576, 3000000}) {
    SCOPED_TRACE(length);
    PendingAuditEvent e;
    e.event.metadata_json = std::string(length, 'm');
    e.event.request_id = std::string(length / 2, 'r');
    e.tenant_slug = "after";  // read after the long fields' bytes
    PackedAuditEvent packed(e);
    ExpectSame(e, packed.Unpack());
  }
}

TEST(PackedAuditEventTest, EmptyStringsStayEmpty) {
  // AuditEvent's own defaults ("success", "{}") are not put back.
  PendingAuditEvent e = WithBothParts();
  for (std::string* s : Strings(e)) s->clear();
  ExpectRoundTrip(e);
  EXPECT_EQ(PackedAuditEvent(e).Unpack().event.outcome, "");
  EXPECT_EQ(PackedAuditEvent(e).Unpack().event.metadata_json, "");
}

TEST(PackedAuditEventTest, EachCombinationOfTheOptionalParts) {
  for (int parts = 0; parts < 4; ++parts) {
    SCOPED_TRACE(parts);
    PendingAuditEvent e;
    e.tenant_id = -5;
    e.used_key_id = "k";
    if (parts & 1) {
      e.usage.emplace();
      e.usage->key_id = "usage-key";
      e.usage->outcome = "revoked";
      e.usage->count = std::numeric_limits<int64_t>::max();
    }
    if (parts & 2) {
      e.previous_secret_use.emplace();
      e.previous_secret_use->key_id = "k";
      e.previous_secret_use->count = std::numeric_limits<int64_t>::min();
      e.previous_secret_use->rotated_at = absl::UnixEpoch();
    }
    ExpectRoundTrip(e);
  }
}

TEST(PackedAuditEventTest, ExtremeNumbersAndTimes) {
  for (int64_t tenant : {std::numeric_limits<int64_t>::min(), int64_t{-1},
                         int64_t{0}, std::numeric_limits<int64_t>::max()}) {
    for (absl::Time t :
         {absl::InfinitePast(), absl::InfiniteFuture(), absl::UnixEpoch(),
          absl::UnixEpoch() - absl::Nanoseconds(1),
          absl::FromUnixNanos(1) + absl::Nanoseconds(1) / 4}) {
      PendingAuditEvent e = WithBothParts();
      e.tenant_id = tenant;
      e.previous_secret_use->rotated_at = t;
      PackedAuditEvent packed(e);
      EXPECT_EQ(packed.tenant_id(), tenant);
      ExpectSame(e, packed.Unpack());
    }
  }
}

TEST(PackedAuditEventTest, AStringThatRepeatsAnEarlierOneIsStoredOnce) {
  const std::string id(1000, 'k');
  PendingAuditEvent e = WithBothParts();
  e.event.actor_id = id;
  e.event.target_id = id;
  e.used_key_id = id;
  e.usage->key_id = id;
  e.previous_secret_use->key_id = id;
  PackedAuditEvent packed(e);
  // Once, plus a two-byte length and a one-byte reference per repeat and
  // the other, short fields.
  EXPECT_LT(packed.size(), 1100u);
  ExpectSame(e, packed.Unpack());

  // Equal lengths with other bytes are not taken for repeats.
  e.event.target_id.back() = 'x';
  e.used_key_id.front() = 'y';
  PackedAuditEvent distinct(e);
  EXPECT_GT(distinct.size(), 3000u);
  ExpectSame(e, distinct.Unpack());
}

TEST(PackedAuditEventTest, RandomEventsFromAFewValues) {
  // Few distinct values, the empty string among them, so that fields repeat
  // each other in every pattern.
  const std::vector<std::string> values = {
      "", "a", "b", "ab", "ba", std::string("a\0b", 3), "key_123", "{}"};
  std::mt19937 rng(1234);
  for (int round = 0; round < 5000; ++round) {
    PendingAuditEvent e;
    if (rng() % 2) e.usage.emplace();
    if (rng() % 2) e.previous_secret_use.emplace();
    for (std::string* s : Strings(e)) *s = values[rng() % values.size()];
    e.event.suspicious = rng() % 2;
    e.tenant_id = static_cast<int64_t>(rng()) - (int64_t{1} << 31);
    if (e.usage.has_value()) e.usage->count = rng();
    if (e.previous_secret_use.has_value()) {
      e.previous_secret_use->count = rng();
      e.previous_secret_use->rotated_at =
          absl::FromUnixMicros(static_cast<int64_t>(rng()) << 16);
    }
    ExpectRoundTrip(e);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "round " << round;
      return;
    }
  }
}

TEST(PackedAuditEventTest, ASummaryUnpacksWithItsCount) {
  PendingAuditEvent e = WithBothParts();
  e.tenant_id = 3;
  e.event.metadata_json = R"({"channel":"verify"})";
  e.usage->key_id = "k";
  e.previous_secret_use->key_id = "k";
  PackedAuditEvent summary = PackedAuditEvent::Summary(e);
  EXPECT_EQ(summary.tenant_id(), 3);
  // Count 1 until it is set.
  PendingAuditEvent want = e;
  want.event.metadata_json = R"({"channel":"verify","count":1})";
  ExpectSame(want, summary.Unpack());
  summary.set_count(4'000'000'000);
  want.event.metadata_json = R"({"channel":"verify","count":4000000000})";
  want.usage->count = 4'000'000'000;
  want.previous_secret_use->count = 4'000'000'000;
  ExpectSame(want, summary.Unpack());
  // Without the optional parts: only the metadata takes the count.
  e.usage.reset();
  e.previous_secret_use.reset();
  e.event.metadata_json = "{}";
  PackedAuditEvent bare = PackedAuditEvent::Summary(e);
  bare.set_count(7);
  PendingAuditEvent got = bare.Unpack();
  EXPECT_EQ(got.event.metadata_json, R"({"count":7})");
  EXPECT_FALSE(got.usage.has_value());
  EXPECT_FALSE(got.previous_secret_use.has_value());
  // A plain event is unpacked as it was, whatever its metadata.
  ExpectSame(e, PackedAuditEvent(e).Unpack());
}

TEST(PackedAuditEventTest, AVerificationEventPacksSmall) {
  // The shape of a key use event (usage_auditor.cc): the key id in four
  // fields, a user agent, a request id, a small metadata object.
  PendingAuditEvent e;
  e.tenant_id = 17;
  e.event.action = "api_key.used";
  e.event.category = "api_keys";
  e.event.actor_type = "api_key";
  e.event.actor_id = "ak_0123456789";
  e.event.target_type = "api_key";
  e.event.target_id = e.event.actor_id;
  e.event.ip_address = "203.0.113.7";
  e.event.user_agent = "grpc-c++/1.51.1 grpc-c/29.0.0 (linux; chttp2)";
  e.event.request_id = "0f8e2a61-4c1d-4b7a-9d0e-5b3c2f1a6e77";
  e.event.metadata_json = R"({"channel":"verify","count":1})";
  e.used_key_id = e.event.actor_id;
  e.usage.emplace();
  e.usage->key_id = e.event.actor_id;
  e.usage->channel = storage::kUsageChannelVerify;
  e.usage->outcome = "valid";
  PackedAuditEvent packed(e);
  // Unpacked: the struct, and the strings too long for their inline buffer
  // (the user agent, the request id, the metadata) on the heap, malloc's
  // own overhead not counted.
  size_t unpacked = sizeof(PendingAuditEvent);
  for (std::string* s : Strings(e)) {
    if (s->capacity() > std::string().capacity()) unpacked += s->capacity() + 1;
  }
  EXPECT_LT(packed.size() + sizeof(packed), unpacked / 3);
  ExpectSame(e, packed.Unpack());
}

}  // namespace
}  // namespace lumo::service
