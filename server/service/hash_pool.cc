#include "server/service/hash_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace lumo::service {

HashPool::HashPool(HashPoolOptions options) : options_(options) {
  const int n = std::max(1, options_.threads);
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Run(); });
}

HashPool::~HashPool() { Stop(); }

bool HashPool::Submit(Job job) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.max_queue) return false;
  queue_.push_back(Queued{std::move(job), absl::Now()});
  return true;
}

void HashPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

size_t HashPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

int HashPool::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

void HashPool::Run() {
  if (options_.nice_increment > 0) {
    // Linux: a thread's nice value is its own (setpriority on its tid).
    // Best effort: hashing at the server's priority is still correct.
    const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    const int current = getpriority(PRIO_PROCESS, tid);
    setpriority(PRIO_PROCESS, tid,
                std::min(19, current + options_.nice_increment));
  }
  while (true) {
    Queued next;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      next = std::move(queue_.front());
      queue_.pop_front();
      stopping = stopping_;
      ++running_;
    }
    const bool in_time =
        !stopping && absl::Now() - next.enqueued <= options_.max_wait;
    next.job(in_time);
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace lumo::service
