// A fixed set of threads for blocking work (database calls) so that gRPC's
// callback threads never block on I/O.
#ifndef LUMOKEYS_SERVER_RPC_WORKER_POOL_H_
#define LUMOKEYS_SERVER_RPC_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lumo::rpc {

// Thread-safe.
class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queue);
  // Runs every task already queued, then joins the threads.
  ~WorkerPool();

  // Queues `task`; false (task not run) when the queue is full or the pool
  // is shutting down.
  bool Submit(std::function<void()> task);

  size_t queued() const;

 private:
  void Run();
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_queue_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_WORKER_POOL_H_
