#ifndef LUMOKEYS_GATEWAY_UPSTREAM_QUEUE_H_
#define LUMOKEYS_GATEWAY_UPSTREAM_QUEUE_H_

#include <thread>
#include <vector>

#include "grpcpp/completion_queue.h"

namespace lumo::gateway {

// A gRPC completion queue with threads of its own that complete the
// gateway's unary upstream calls (docs/gateway.md, "Threads").
//
// Why not gRPC's callback API: there, a reply is read by one of gRPC's
// shared callback threads, which first hands polling over to another of
// them (a wake-up) and whose callback then had to hand the response to an
// HTTP I/O thread (another). A thread of this queue polls the upstream
// connection itself, and the completion runs right there: it renders the
// reply and (HttpServer's Responder) writes it to the client.
//
// With one thread, that thread is gRPC's only poller in a gateway that
// streams nothing; more threads share the polling and hand it to one
// another, like gRPC's own.
//
// Thread-safety: cq() may be used from any thread to start operations
// whose tag is an Op. Each Op's Complete runs on one of the queue's
// threads, once per operation. The destructor shuts the queue down and
// joins its threads; every operation started on it must have completed
// by then (Gateway waits for its calls in flight first).
class UpstreamQueue {
 public:
  // What a tag on this queue points to.
  class Op {
   public:
    virtual ~Op() = default;
    // The operation finished; `ok` as grpc::CompletionQueue::Next says.
    virtual void Complete(bool ok) = 0;
  };

  // `threads` below 1 counts as 1.
  explicit UpstreamQueue(int threads);
  ~UpstreamQueue();

  UpstreamQueue(const UpstreamQueue&) = delete;
  UpstreamQueue& operator=(const UpstreamQueue&) = delete;

  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  void Run();

  grpc::CompletionQueue cq_;
  std::vector<std::thread> threads_;
};

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_UPSTREAM_QUEUE_H_
