// Handoff cost of the bounded lock-free queue between I/O threads and the spool writer.
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <thread>

#include "capi_relay/common/bounded_queue.hpp"

namespace capi_relay {
namespace {

// Single thread: push + pop of a unique_ptr (the WriteRequest handoff without contention).
void BM_QueuePushPop(benchmark::State& state) {
  BoundedQueue<std::unique_ptr<int>> q(1024);
  auto item = std::make_unique<int>(1);
  for (auto _ : state) {
    q.try_push(item);
    auto out = q.try_pop();
    item = std::move(*out);
    benchmark::DoNotOptimize(item);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueuePushPop);

// One producer thread, one consumer parking when idle: end-to-end handoff throughput.
void BM_QueueProducerConsumer(benchmark::State& state) {
  BoundedQueue<uint64_t> q(4096);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> consumed{0};
  std::thread consumer([&] {
    while (!done.load(std::memory_order_acquire) || q.size_approx() > 0) {
      if (auto v = q.try_pop()) {
        consumed.fetch_add(1, std::memory_order_relaxed);
      } else {
        q.wait_for(std::chrono::milliseconds(1));
      }
    }
  });
  uint64_t pushed = 0;
  for (auto _ : state) {
    uint64_t v = pushed;
    while (!q.try_push(v)) std::this_thread::yield();
    ++pushed;
  }
  done.store(true, std::memory_order_release);
  q.wake();
  consumer.join();
  state.SetItemsProcessed(static_cast<int64_t>(pushed));
  if (consumed.load() != pushed) state.SkipWithError("lost items");
}
BENCHMARK(BM_QueueProducerConsumer)->UseRealTime();

}  // namespace
}  // namespace capi_relay

BENCHMARK_MAIN();
