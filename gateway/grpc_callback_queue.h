#ifndef LUMOKEYS_GATEWAY_GRPC_CALLBACK_QUEUE_H_
#define LUMOKEYS_GATEWAY_GRPC_CALLBACK_QUEUE_H_

namespace lumo::gateway {

// Keeps gRPC's process-wide callback completion queue alive until the
// process exits.
//
// Where gRPC's I/O manager does not poll in the background (the POSIX
// build Debian ships), the C++ callback API of every channel and server is
// served from one shared completion queue polled by gRPC's own threads. It
// is reference counted by the channels and servers that used it; when the
// count returns to zero gRPC shuts it down, joins its threads and deletes
// it, and that teardown can race those threads (the process aborts with
// "ref_counted.h: assertion failed: prior > 0"). Holding one reference for
// the life of the process means the count never returns to zero: destroying
// the last channel (a gateway at shutdown, or a test between cases) no
// longer tears the queue down.
//
// Thread-safe and idempotent; the first call takes the reference, which is
// never released.
void PinGrpcCallbackQueue();

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_GRPC_CALLBACK_QUEUE_H_
