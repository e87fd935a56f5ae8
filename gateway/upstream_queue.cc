#include "gateway/upstream_queue.h"

#include <algorithm>

namespace lumo::gateway {

UpstreamQueue::UpstreamQueue(int threads) {
  threads = std::max(threads, 1);
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

UpstreamQueue::~UpstreamQueue() {
  cq_.Shutdown();
  for (std::thread& t : threads_) t.join();
}

void UpstreamQueue::Run() {
  void* tag = nullptr;
  bool ok = false;
  // False once the queue is shut down and drained.
  while (cq_.Next(&tag, &ok)) static_cast<Op*>(tag)->Complete(ok);
}

}  // namespace lumo::gateway
