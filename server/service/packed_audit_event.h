// One queued audit event in one allocation: the form in which the batched
// writer (audit_writer.h) holds events between Enqueue and the batch that
// writes them (docs/audit.md "Queue memory").
//
// Why: a storage::PendingAuditEvent is seventeen std::strings and two
// optionals, over 600 bytes before the strings that do not fit inline (key
// ids, user agents, request ids, metadata). A writer whose database falls
// behind holds up to --audit_queue_size of them. Packed, an event is its
// bytes, a few bytes of lengths, and a 16-byte queue slot: about a third of
// the memory for a typical verification event.
//
// The packed form: the tenant id, a flag byte (suspicious, has usage, has
// previous-secret use, is a summary), a summary's count, the optional parts'
// numbers and time, then every
// string field in a fixed order, each as a varint code: 2 * length followed
// by the bytes, or 2 * i + 1 for "the same bytes as string field i" (an
// earlier field: a verification's key id is its actor, its target, the key
// whose last use it moves and its usage's key). Strings hold any bytes.
//
// Thread-compatible: a const PackedAuditEvent may be read from any thread.
#ifndef LUMOKEYS_SERVER_SERVICE_PACKED_AUDIT_EVENT_H_
#define LUMOKEYS_SERVER_SERVICE_PACKED_AUDIT_EVENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "server/storage/audit_store.h"

namespace lumo::service {

class PackedAuditEvent {
 public:
  // Copies every field of `event` (its bytes are not shared).
  explicit PackedAuditEvent(const storage::PendingAuditEvent& event);
  // A summary (audit_writer.h "Summaries"): `event` packed with a count,
  // 1 until set_count, that Unpack writes into it.
  static PackedAuditEvent Summary(const storage::PendingAuditEvent& event);
  PackedAuditEvent(PackedAuditEvent&&) = default;
  PackedAuditEvent& operator=(PackedAuditEvent&&) = default;

  // The event as it was packed, field for field; a summary's with its count
  // as the metadata's last member "count" and as the count of its usage
  // and of its previous-secret use, when it has them.
  storage::PendingAuditEvent Unpack() const;

  // A summary's count (a few bytes written in place). Requires a summary.
  void set_count(int64_t count);

  // Read without unpacking (the writer's drop counts are per tenant).
  int64_t tenant_id() const;
  // The bytes of the one allocation.
  size_t size() const { return size_; }

 private:
  PackedAuditEvent(const storage::PendingAuditEvent& event, bool summary);

  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PACKED_AUDIT_EVENT_H_
