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

constexpr uint64_t kFieldMask = (uint64_t(1) << 20) - 1;
constexpr uint32_t kGenerationMask = (uint32_t(1) << 24) - 1;

uint64_t packJob(uint32_t generation, size_t chunks, size_t next) {
  return (uint64_t(generation) << 40) | (uint64_t(chunks) << 20) | uint64_t(next);
}

uint32_t generationOf(uint64_t job) {
  return uint32_t(job >> 40);
}

size_t chunksOf(uint64_t job) {
  return size_t((job >> 20) & kFieldMask);
}

size_t nextOf(uint64_t job) {
  return size_t(job & kFieldMask);
}

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
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::work(uint32_t generation, int thread) {
  uint64_t job = job_.load(std::memory_order_acquire);
  for (;;) {
    if (generationOf(job) != generation || nextOf(job) >= chunksOf(job)) return;
    // On failure job is reloaded and checked again.
    if (!job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;

    // The claimed chunk keeps this job unfinished, so body_ stays valid until doneChunks_ counts it.
    try {
      (*body_)(nextOf(job), thread);
    } catch (...) {
      std::lock_guard<std::mutex> lock(errorMutex_);
      if (!error_) error_ = std::current_exception();
    }
    doneChunks_.fetch_add(1, std::memory_order_acq_rel);
    job = job_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(size_t chunks, const std::function<void(size_t, int)>& body) {
  if (chunks == 0) return;
  if (size_ == 1) {
    for (size_t chunk = 0; chunk < chunks; chunk++) body(chunk, 0);
    return;
  }
  if (chunks > kMaxChunks) {
    // The job word has room for kMaxChunks chunks, so run consecutive chunks together.
    const size_t group = (chunks + kMaxChunks - 1) / kMaxChunks;
    const std::function<void(size_t, int)> grouped = [&](size_t first, int thread) {
      const size_t end = (first + 1) * group < chunks ? (first + 1) * group : chunks;
      for (size_t chunk = first * group; chunk < end; chunk++) body(chunk, thread);
    };
    run((chunks + group - 1) / group, grouped);
    return;
  }

  body_ = &body;
  error_ = nullptr;
  doneChunks_.store(0, std::memory_order_relaxed);
  generation_ = (generation_ + 1) & kGenerationMask;
  bool anySleeping;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_.store(packJob(generation_, chunks, 0), std::memory_order_release);
    anySleeping = sleepers_ > 0;
  }
  if (anySleeping) wake_.notify_all();

  work(generation_, 0);

  // Wait for chunks other threads claimed; yield now and then in case one was descheduled.
  for (unsigned spins = 0; doneChunks_.load(std::memory_order_acquire) != chunks; spins++) {
    if (spins % 1024 == 1023) {
      std::this_thread::yield();
    } else {
      cpuRelax();
    }
  }
  body_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::workerLoop(int index) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t current = generationOf(job_.load(std::memory_order_acquire));
    auto spinStart = std::chrono::steady_clock::now();
    for (unsigned spins = 1; current == seen; spins++) {
      if (stopping_.load(std::memory_order_relaxed)) return;
      cpuRelax();
      current = generationOf(job_.load(std::memory_order_acquire));
      if (spins % 256 == 0 && std::chrono::steady_clock::now() - spinStart > kSpinBeforeSleep) break;
    }
    if (current == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_++;
      wake_.wait(lock, [&] {
        current = generationOf(job_.load(std::memory_order_acquire));
        return current != seen || stopping_.load(std::memory_order_relaxed);
      });
      sleepers_--;
    }
    if (stopping_.load(std::memory_order_relaxed)) return;
    seen = current;
    work(current, index);
  }
}

}  // namespace nesso
