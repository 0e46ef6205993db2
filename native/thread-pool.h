// A persistent pool of compute threads. The thread that calls run() takes part as thread 0, so a
// pool of size N starts N - 1 threads.
//
// Work is split into chunks that threads claim one at a time from a shared counter, so a thread
// the OS deschedules (other processes share the cores) delays the job by at most one chunk
// instead of a fixed share. Threads spin briefly between jobs, because a forward pass issues a
// few hundred short jobs per token, and sleep on a condition variable when idle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nesso {

class ThreadPool {
 public:
  // Most chunks one job word can count (20 bits); run() groups larger counts.
  static constexpr size_t kMaxChunks = (size_t(1) << 20) - 1;

  explicit ThreadPool(int size);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs body(chunk, threadIndex) once for every chunk in [0, chunks) on the pool's threads and
  // the caller, and returns when all chunks are done. Only one run() may be active at a time;
  // callers serialize with their own lock. Rethrows the first exception a chunk threw.
  void run(size_t chunks, const std::function<void(size_t chunk, int thread)>& body);

  // Splits [0, count) into ranges whose boundaries are multiples of `grain` (so no two threads
  // write the same cache line of an output row) and runs body(begin, end, threadIndex) on each.
  template <typename Body>
  void parallelFor(size_t count, size_t grain, Body&& body) {
    // About 8 chunks per thread balance the load without paying much per chunk.
    size_t chunkSize = (count + size_t(size_) * 8 - 1) / (size_t(size_) * 8);
    chunkSize = (chunkSize + grain - 1) / grain * grain;
    if (chunkSize == 0) chunkSize = grain;
    while ((count + chunkSize - 1) / chunkSize > kMaxChunks) chunkSize *= 2;
    const size_t chunks = (count + chunkSize - 1) / chunkSize;
    if (size_ == 1 || chunks <= 1) {
      body(size_t(0), count, 0);
      return;
    }
    run(chunks, [&](size_t chunk, int thread) {
      size_t begin = chunk * chunkSize;
      size_t end = begin + chunkSize < count ? begin + chunkSize : count;
      body(begin, end, thread);
    });
  }

 private:
  void workerLoop(int index);
  // Claims and runs chunks of the job published with `generation` until none are left.
  void work(uint32_t generation, int thread);

  int size_;
  std::vector<std::thread> workers_;

  // The current job: generation (24 bits) | chunk count (20 bits) | next unclaimed chunk (20 bits),
  // in one word so a claim can never mix up two jobs.
  std::atomic<uint64_t> job_{0};
  // Valid while the chunks of the current job are not all done.
  const std::function<void(size_t, int)>* body_ = nullptr;
  std::atomic<size_t> doneChunks_{0};
  uint32_t generation_ = 0;  // of the last published job; used by the caller only

  std::mutex mutex_;
  std::condition_variable wake_;
  int sleepers_ = 0;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::mutex errorMutex_;
  std::exception_ptr error_;
};

}  // namespace nesso
