// A persistent pool of compute threads. The thread that calls run() takes part as thread 0, so a
// pool of size N starts N - 1 threads. Threads spin briefly between jobs (a forward pass issues a
// few hundred short jobs per token) and sleep on a condition variable when idle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nesso {

class ThreadPool {
 public:
  explicit ThreadPool(int size);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs task(threadIndex) once on every thread, the caller included, and waits for all. Only one
  // run() may be active at a time; callers serialize with their own lock. Rethrows the first
  // exception a task threw.
  void run(const std::function<void(int)>& task);

  // Splits [0, count) into size() contiguous ranges whose boundaries are multiples of `grain`
  // (so no two threads write the same cache line) and runs body(begin, end, threadIndex).
  template <typename Body>
  void parallelFor(size_t count, size_t grain, Body&& body) {
    const size_t threads = size_t(size_);
    if (threads == 1 || count <= grain) {
      body(size_t(0), count, 0);
      return;
    }
    const size_t blocks = (count + grain - 1) / grain;
    run([&](int thread) {
      size_t firstBlock = blocks * size_t(thread) / threads;
      size_t lastBlock = blocks * size_t(thread + 1) / threads;
      size_t begin = firstBlock * grain;
      size_t end = lastBlock * grain < count ? lastBlock * grain : count;
      if (begin < end) body(begin, end, thread);
    });
  }

 private:
  void workerLoop(int index);
  void runTask(int index);

  int size_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  int sleepers_ = 0;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::mutex errorMutex_;
  std::exception_ptr error_;
};

}  // namespace nesso
