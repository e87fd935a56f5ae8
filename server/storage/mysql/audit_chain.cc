#include "server/storage/mysql/audit_chain.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace lumo::storage {
namespace {

constexpr char kLockHeadSql[] =
    "SELECT last_seq, last_hash,"
    " DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')"
    " FROM audit_chain_heads"
    " WHERE tenant_id = ? AND lane = ? FOR UPDATE";
// Takes an exclusive lock on the (new or existing) head row directly, so
// two first appends of one tenant serialise instead of deadlocking.
constexpr char kCreateHeadSql[] =
    "INSERT INTO audit_chain_heads (tenant_id, lane, last_seq, last_hash)"
    " VALUES (?, ?, 0, ?) ON DUPLICATE KEY UPDATE last_seq = last_seq";
constexpr char kUpdateHeadSql[] =
    "UPDATE audit_chain_heads SET last_seq = ?, last_hash = ?"
    " WHERE tenant_id = ? AND lane = ?";

void AppendField(std::string& out, absl::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(len, 4);
  out.append(field.data(), field.size());
}

}  // namespace

int NextTransactionChainLane() {
  static std::atomic<uint32_t> next{0};
  return 1 + static_cast<int>(next.fetch_add(1, std::memory_order_relaxed) %
                              kTransactionChainLanes);
}

void NormalizeAuditEvent(AuditEvent& event) {
  event.action = TruncateUtf8(event.action, 64);
  event.category = TruncateUtf8(event.category, 32);
  event.actor_type = TruncateUtf8(event.actor_type, 16);
  event.actor_id = TruncateUtf8(event.actor_id, 128);
  event.target_type = TruncateUtf8(event.target_type, 32);
  event.target_id = TruncateUtf8(event.target_id, 128);
  event.outcome = TruncateUtf8(event.outcome, 16);
  event.ip_address = TruncateUtf8(event.ip_address, 45);
  for (char& c : event.user_agent) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';
  }
  event.user_agent = TruncateUtf8(event.user_agent, kUserAgentMaxChars);
  event.request_id = TruncateUtf8(event.request_id, 64);
  if (event.metadata_json.empty()) event.metadata_json = "{}";
}

void CreateChainHeads(Session& session, int64_t tenant_id) {
  std::string sql =
      "INSERT INTO audit_chain_heads (tenant_id, lane, last_seq, last_hash)"
      " VALUES ";
  for (int lane = 0; lane <= kTransactionChainLanes; ++lane) {
    if (lane > 0) sql += ", ";
    sql += "(?, ?, 0, ?)";
  }
  session.Step("create audit chain heads");
  sql::PreparedStatement& stmt = session.Prepare(sql);
  int p = 1;
  for (int lane = 0; lane <= kTransactionChainLanes; ++lane) {
    stmt.setInt64(p++, tenant_id);
    stmt.setInt(p++, lane);
    stmt.setString(p++, DigestColumn(core::Digest{}));
  }
  session.Update(stmt);
}

absl::StatusOr<ChainHead> LockChainHead(Session& session, int64_t tenant_id,
                                        int lane) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    session.Step("lock audit chain head");
    sql::PreparedStatement& lock = session.Prepare(kLockHeadSql);
    lock.setInt64(1, tenant_id);
    lock.setInt(2, lane);
    std::unique_ptr<sql::ResultSet> rs = session.Query(lock);
    if (rs->next()) {
      ChainHead head;
      head.lane = lane;
      head.last_seq = rs->getInt64(1);
      if (!ReadDigestColumn(rs->getString(2).asStdString(), &head.last_hash)) {
        return absl::InternalError("audit chain head has a malformed hash");
      }
      head.now_text = rs->getString(3).asStdString();
      return head;
    }
    rs.reset();
    session.Step("create audit chain head");
    sql::PreparedStatement& create = session.Prepare(kCreateHeadSql);
    create.setInt64(1, tenant_id);
    create.setInt(2, lane);
    create.setString(3, DigestColumn(core::Digest{}));
    session.Update(create);
  }
  return absl::InternalError("audit chain head vanished");
}

std::string CanonicalAuditRow(int64_t tenant_id, int64_t seq,
                              const AuditEvent& event,
                              absl::string_view created_at) {
  std::string out;
  out.reserve(256 + event.metadata_json.size() + event.user_agent.size());
  AppendField(out, "lumo.audit.v1");
  AppendField(out, absl::StrCat(tenant_id));
  AppendField(out, absl::StrCat(seq));
  AppendField(out, event.action);
  AppendField(out, event.category);
  AppendField(out, event.actor_type);
  AppendField(out, event.actor_id);
  AppendField(out, event.target_type);
  AppendField(out, event.target_id);
  AppendField(out, event.outcome);
  AppendField(out, event.suspicious ? "1" : "0");
  AppendField(out, event.ip_address);
  AppendField(out, event.user_agent);
  AppendField(out, event.request_id);
  AppendField(out, event.metadata_json);
  AppendField(out, created_at);
  return out;
}

core::Digest ChainHash(const core::Digest& prev_hash,
                       absl::string_view canonical) {
  std::string input(core::AsStringView(prev_hash));
  input.append(canonical.data(), canonical.size());
  return core::Sha256(input);
}

void UpdateChainHead(Session& session, int64_t tenant_id,
                     const ChainHead& head) {
  session.Step("update audit chain head");
  sql::PreparedStatement& stmt = session.Prepare(kUpdateHeadSql);
  stmt.setInt64(1, head.last_seq);
  stmt.setString(2, DigestColumn(head.last_hash));
  stmt.setInt64(3, tenant_id);
  stmt.setInt(4, head.lane);
  session.Update(stmt);
}

std::string DigestColumn(const core::Digest& digest) {
  return std::string(core::AsStringView(digest));
}

bool ReadDigestColumn(absl::string_view bytes, core::Digest* out) {
  if (bytes.size() != out->size()) return false;
  std::memcpy(out->data(), bytes.data(), out->size());
  return true;
}

}  // namespace lumo::storage
