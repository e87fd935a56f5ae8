#include "server/storage/audit_chain.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/validation.h"

namespace lumo::storage {
namespace {

// Appends `field` as a 4-byte big-endian length and its bytes.
void AppendField(std::string& out, absl::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(len, 4);
  out.append(field.data(), field.size());
}

// An integer as 8 bytes, big-endian two's complement.
std::string Int64Bytes(int64_t value) {
  const uint64_t v = static_cast<uint64_t>(value);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (56 - 8 * i));
  return out;
}

// The v1 text of a time: what MariaDB printed for a DATETIME(6) value.
std::string V1TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone());
}

// The event's fields from action to metadata, hashed the same way by every
// version except `suspicious`.
void AppendEventFields(std::string& out, const AuditEvent& e,
                       absl::string_view suspicious) {
  AppendField(out, e.action);
  AppendField(out, e.category);
  AppendField(out, e.actor_type);
  AppendField(out, e.actor_id);
  AppendField(out, e.target_type);
  AppendField(out, e.target_id);
  AppendField(out, e.outcome);
  AppendField(out, suspicious);
  AppendField(out, e.ip_address);
  AppendField(out, e.user_agent);
  AppendField(out, e.request_id);
  AppendField(out, e.metadata_json);
}

}  // namespace

int NextTransactionChainLane() {
  static std::atomic<uint32_t> next{0};
  return 1 + static_cast<int>(next.fetch_add(1, std::memory_order_relaxed) %
                              kTransactionChainLanes);
}

std::optional<AuditHashVersion> AuditHashVersionFromNumber(int number) {
  switch (number) {
    case static_cast<int>(AuditHashVersion::kV1):
      return AuditHashVersion::kV1;
    case static_cast<int>(AuditHashVersion::kV2):
      return AuditHashVersion::kV2;
    default:
      return std::nullopt;
  }
}

void NormalizeAuditEvent(AuditEvent& event) {
  event.action = core::TruncateUtf8(event.action, 64);
  event.category = core::TruncateUtf8(event.category, 32);
  event.actor_type = core::TruncateUtf8(event.actor_type, 16);
  event.actor_id = core::TruncateUtf8(event.actor_id, 128);
  event.target_type = core::TruncateUtf8(event.target_type, 32);
  event.target_id = core::TruncateUtf8(event.target_id, 128);
  event.outcome = core::TruncateUtf8(event.outcome, 16);
  event.ip_address = core::TruncateUtf8(event.ip_address, 45);
  for (char& c : event.user_agent) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';
  }
  event.user_agent =
      core::TruncateUtf8(event.user_agent, kAuditUserAgentMaxChars);
  event.request_id = core::TruncateUtf8(event.request_id, 64);
  if (event.metadata_json.empty()) event.metadata_json = "{}";
}

std::string CanonicalAuditRow(AuditHashVersion version,
                              const ChainRowContent& row) {
  const AuditEvent& e = *row.event;
  std::string out;
  out.reserve(256 + e.metadata_json.size() + e.user_agent.size());
  switch (version) {
    case AuditHashVersion::kV1:
      AppendField(out, "lumo.audit.v1");
      AppendField(out, absl::StrCat(row.tenant_id));
      AppendField(out, absl::StrCat(row.seq));
      AppendEventFields(out, e, e.suspicious ? "1" : "0");
      AppendField(out, V1TimeText(row.created_at));
      break;
    case AuditHashVersion::kV2:
      AppendField(out, "lumo.audit.v2");
      AppendField(out, Int64Bytes(row.tenant_id));
      AppendField(out, Int64Bytes(row.lane));
      AppendField(out, Int64Bytes(row.seq));
      AppendEventFields(out, e,
                        absl::string_view(e.suspicious ? "\1" : "\0", 1));
      AppendField(out, Int64Bytes(absl::ToUnixMicros(row.created_at)));
      break;
  }
  return out;
}

core::Digest ChainHash(const core::Digest& prev_hash,
                       absl::string_view canonical) {
  std::string input(core::AsStringView(prev_hash));
  input.append(canonical.data(), canonical.size());
  return core::Sha256(input);
}

ChainLink AppendToChain(ChainPosition* head, int64_t tenant_id, int lane,
                        const AuditEvent& event, absl::Time created_at) {
  ChainLink link;
  link.seq = head->seq + 1;
  link.prev_hash = head->hash;
  link.version = kCurrentAuditHashVersion;
  link.hash = ChainHash(
      link.prev_hash,
      CanonicalAuditRow(link.version,
                        {tenant_id, lane, link.seq, &event, created_at}));
  head->seq = link.seq;
  head->hash = link.hash;
  return link;
}

void ChainVerifier::Fail(int64_t id, int64_t seq, std::string problem) {
  result_.ok = false;
  result_.broken_id = id;
  result_.broken_seq = seq;
  result_.broken_lane = lane_;
  result_.problem = std::move(problem);
}

void ChainVerifier::BeginLane(int lane, const ChainPosition& base,
                              const ChainPosition& head) {
  lane_ = lane;
  head_ = head;
  last_ = base;
}

bool ChainVerifier::AddRow(const StoredChainRow& stored) {
  if (!result_.ok) return false;
  const StoredAuditEvent& row = stored.row;
  const int64_t expected = last_.seq + 1;
  const std::optional<AuditHashVersion> version =
      AuditHashVersionFromNumber(stored.hash_version);
  if (row.seq != expected) {
    Fail(row.id, row.seq, absl::StrCat("sequence gap: expected ", expected));
  } else if (!stored.prev_hash.has_value() || !stored.hash.has_value()) {
    Fail(row.id, row.seq, "missing or malformed hash");
  } else if (*stored.prev_hash != last_.hash) {
    Fail(row.id, row.seq, "prev_hash does not match the previous row's hash");
  } else if (!version.has_value()) {
    Fail(row.id, row.seq,
         absl::StrCat("unknown hash version ", stored.hash_version));
  } else if (ChainHash(
                 *stored.prev_hash,
                 CanonicalAuditRow(*version, {row.tenant_id, row.lane, row.seq,
                                              &row.event, row.created_at})) !=
             *stored.hash) {
    Fail(row.id, row.seq, "the row's content does not match its hash");
  }
  if (!result_.ok) return false;
  last_.seq = row.seq;
  last_.hash = *stored.hash;
  result_.last_seq = std::max(result_.last_seq, row.seq);
  ++result_.rows_checked;
  return true;
}

bool ChainVerifier::EndLane() {
  if (!result_.ok) return false;
  if (last_.seq != head_.seq || last_.hash != head_.hash) {
    Fail(0, last_.seq + 1,
         absl::StrCat("chain lane ", lane_, " ends at seq ", last_.seq,
                      " but its head records seq ", head_.seq,
                      ": rows are missing at the end or the head was "
                      "altered"));
    return false;
  }
  ++result_.lanes_checked;
  return true;
}

void ChainVerifier::MalformedHead(int lane) {
  if (!result_.ok) return;
  lane_ = lane;
  Fail(0, 0, "a chain head holds a malformed hash");
}

void ChainVerifier::UnchainedRow(int64_t id) {
  if (!result_.ok) return;
  lane_ = 0;
  Fail(id, 0, "a row outside the chain was inserted");
}

}  // namespace lumo::storage
