// A small fixed pool of threads for password hashing (scrypt), separate
// from the RPC worker pool so that a burst of logins can never occupy the
// threads every other call needs (docs/portal.md "Login capacity").
//
// At most `threads` hashes run at once (each scrypt at the default cost
// holds 128 MiB) and at most `max_queue` more wait. Submit never blocks: a
// job that finds the queue full is refused at once, and a queued job that
// waited longer than `max_wait` is run with `in_time == false` so that it
// answers "busy" instead of hashing late. The threads run at a lower CPU
// priority (`nice_increment`), so hashing yields the cores to request
// handling when both want them.
//
// Thread-safe. The destructor (or Stop) runs every queued job with
// `in_time == false`, then joins the threads.
#ifndef LUMOKEYS_SERVER_SERVICE_HASH_POOL_H_
#define LUMOKEYS_SERVER_SERVICE_HASH_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lumo::service {

struct HashPoolOptions {
  int threads = 2;
  size_t max_queue = 8;
  absl::Duration max_wait = absl::Seconds(2);
  // Added to the threads' nice value (0: same priority as the server).
  int nice_increment = 10;
};

class HashPool {
 public:
  // `in_time` is false when the job waited longer than max_wait or the pool
  // is stopping: the job must then answer without hashing.
  using Job = std::function<void(bool in_time)>;

  explicit HashPool(HashPoolOptions options);
  ~HashPool();
  HashPool(const HashPool&) = delete;
  HashPool& operator=(const HashPool&) = delete;

  // Queues `job`; false (job dropped, not run) when the queue is full or the
  // pool has stopped.
  bool Submit(Job job);

  // Runs what is queued (late), then joins the threads. Idempotent.
  void Stop();

  const HashPoolOptions& options() const { return options_; }
  size_t queued() const;
  int running() const;

 private:
  struct Queued {
    Job job;
    absl::Time enqueued;
  };
  void Run();

  const HashPoolOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_HASH_POOL_H_
