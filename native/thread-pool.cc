#include "thread-pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace nesso {

namespace {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle worker spins before it sleeps. Jobs within one forward pass follow each other
// within microseconds; between decode steps the JS side takes about a millisecond.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(300);

}  // namespace

ThreadPool::ThreadPool(int size) : size_(size < 1 ? 1 : size) {
  workers_.reserve(size_t(size_ - 1));
  for (int index = 1; index < size_; index++) {
    workers_.emplace_back([this, index] { workerLoop(index); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::runTask(int index) {
  try {
    (*task_)(index);
  } catch (...) {
    std::lock_guard<std::mutex> lock(errorMutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::run(const std::function<void(int)>& task) {
  if (size_ == 1) {
    task(0);
    return;
  }
  task_ = &task;
  error_ = nullptr;
  pending_.store(size_ - 1, std::memory_order_relaxed);
  bool anySleeping;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
    anySleeping = sleepers_ > 0;
  }
  if (anySleeping) wake_.notify_all();

  runTask(0);

  // Wait for the workers; yield now and then in case one of them was descheduled.
  for (unsigned spins = 0; pending_.load(std::memory_order_acquire) != 0; spins++) {
    if (spins % 1024 == 1023) {
      std::this_thread::yield();
    } else {
      cpuRelax();
    }
  }
  task_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::workerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t current = generation_.load(std::memory_order_acquire);
    auto spinStart = std::chrono::steady_clock::now();
    for (unsigned spins = 1; current == seen; spins++) {
      cpuRelax();
      current = generation_.load(std::memory_order_acquire);
      if (spins % 256 == 0 && std::chrono::steady_clock::now() - spinStart > kSpinBeforeSleep) break;
    }
    if (current == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_++;
      wake_.wait(lock, [&] {
        current = generation_.load(std::memory_order_acquire);
        return current != seen || stopping_.load(std::memory_order_relaxed);
      });
      sleepers_--;
    }
    if (stopping_.load(std::memory_order_relaxed)) return;
    seen = current;
    runTask(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace nesso
