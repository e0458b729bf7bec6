#include "datapath/uring_ring.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <system_error>
#include <utility>

#include "core/assert.h"

namespace ditto::datapath {
namespace {

constexpr std::uint64_t kCancelUserData = ~std::uint64_t{0};
constexpr unsigned kMaxQueueDepth = 32768;
constexpr unsigned kReapBatch = 64;
// -EAGAIN is retried, but not forever: a device that never makes progress must surface.
constexpr std::uint16_t kMaxAgainRetries = 1000;

std::string errno_text(int error_number) {
  return std::error_code(error_number, std::generic_category()).message();
}

}  // namespace

UringRing::UringRing(boost::asio::io_context& io, std::string label, UringRingOptions options)
    : io_(io), event_descriptor_(io), label_(std::move(label)), options_(options) {
  const std::size_t slots = std::size_t{options.queue_depth} + options.backlog_limit;
  requests_.resize(slots);
  backlog_.resize(slots);
  free_slots_.reserve(slots);
  for (std::size_t slot = slots; slot-- > 0;) {
    free_slots_.push_back(static_cast<std::uint32_t>(slot));
  }
}

UringRing::~UringRing() { shutdown(); }

Result<std::unique_ptr<UringRing>> UringRing::create(boost::asio::io_context& io,
                                                     std::string label,
                                                     UringRingOptions options) {
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return Error{label + ": queue depth " + std::to_string(options.queue_depth) +
                 " is outside 1.." + std::to_string(kMaxQueueDepth)};
  }
  std::unique_ptr<UringRing> ring(new UringRing(io, std::move(label), options));
  Status status = ring->setup();
  if (!status.ok()) return status.error();  // the destructor releases what was set up
  return ring;
}

Status UringRing::setup() {
  io_uring_params params{};
  // COOP_TASKRUN|TASKRUN_FLAG: the recommended default (io-uring-asio.md §1, pitfall 4).
  // SINGLE_ISSUER is left out: it would tie submit and shutdown to the creating thread, and a
  // shard's ring is created before its thread starts.
  params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE;
  // Every operation in the kernel has room for its CQE, plus the shutdown cancel.
  params.cq_entries = 2 * options_.queue_depth + 2;
  int result = io_uring_queue_init_params(options_.queue_depth, &ring_, &params);
  if (result == -EINVAL) {  // a kernel older than 5.19 lacks the task-run flags
    params = io_uring_params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = 2 * options_.queue_depth + 2;
    result = io_uring_queue_init_params(options_.queue_depth, &ring_, &params);
  }
  if (result < 0) return Error{label_ + ": io_uring setup: " + errno_text(-result)};
  ring_ready_ = true;
  DITTO_ASSERT(params.sq_entries >= options_.queue_depth);
  if (options_.fixed_files_max > 0) {
    result = io_uring_register_files_sparse(&ring_, options_.fixed_files_max);
    if (result < 0) {
      return Error{label_ + ": io_uring file table of " +
                   std::to_string(options_.fixed_files_max) + " slots: " + errno_text(-result)};
    }
  }
  files_.resize(options_.fixed_files_max);
  for (std::uint32_t index = options_.fixed_files_max; index-- > 0;) free_files_.push_back(index);
  event_file_descriptor_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_file_descriptor_ < 0) return Error{label_ + ": eventfd: " + errno_text(errno)};
  result = io_uring_register_eventfd(&ring_, event_file_descriptor_);
  if (result < 0) {
    return Error{label_ + ": io_uring eventfd registration: " + errno_text(-result)};
  }
  boost::system::error_code error;
  event_descriptor_.assign(event_file_descriptor_, error);
  if (error) return Error{label_ + ": asio assign eventfd: " + error.message()};
  arm_reaper();
  return Status::success();
}

Result<UringRing::FileHandle> UringRing::attach(int file_descriptor, Client& client) {
  if (shut_down_) return Error{label_ + ": attach after shutdown"};
  std::uint32_t index = 0;
  if (!free_files_.empty()) {
    // Lowest free index first: the fixed slots come first.
    auto lowest = std::min_element(free_files_.begin(), free_files_.end());
    index = *lowest;
    free_files_.erase(lowest);
  } else {
    index = static_cast<std::uint32_t>(files_.size());
    files_.push_back({});
  }
  File& file = files_[index];
  file.fixed = index < options_.fixed_files_max;
  if (file.fixed) {
    const int result = io_uring_register_files_update(&ring_, index, &file_descriptor, 1);
    if (result < 0) file.fixed = false;  // a plain descriptor works too, a bit slower
  }
  file.client = &client;
  file.descriptor = file_descriptor;
  file.generation++;
  file.in_kernel = 0;
  attached_files_++;
  return FileHandle{index, file.generation};
}

void UringRing::detach(FileHandle handle) {
  DITTO_ASSERT(handle.index < files_.size());
  File& file = files_[handle.index];
  DITTO_ASSERT(file.client != nullptr && file.generation == handle.generation);
  // From here on its requests are stale: queued ones are freed when the backlog reaches them,
  // reaped ones without a completion call.
  file.client = nullptr;
  file.generation++;
  attached_files_--;
  if (ring_ready_ && !shut_down_) {
    while (io_uring_sq_ready(&ring_) > 0) {
      const int result = io_uring_submit(&ring_);
      if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) break;
    }
    while (file.in_kernel > 0) {
      io_uring_cqe* cqe = nullptr;
      const int result = io_uring_wait_cqe(&ring_, &cqe);
      if (result == -EINTR) continue;
      if (result < 0) break;  // a broken ring; shutdown() still waits for the kernel
      Completion completion{};
      consume(*cqe, completion);
      io_uring_cqe_seen(&ring_, cqe);
      if (completion.user_data != kCancelUserData) deferred_.push_back(completion);
    }
    if (file.fixed) {
      int none = -1;
      (void)io_uring_register_files_update(&ring_, handle.index, &none, 1);
    }
  }
  file.descriptor = -1;
  file.in_kernel = 0;
  free_files_.push_back(handle.index);
  if (!deferred_.empty() && !deliver_posted_) {
    deliver_posted_ = true;
    boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired() || shut_down_) return;
      deliver_posted_ = false;
      if (in_reaper_) return;  // the reaper delivers them
      in_reaper_ = true;
      deliver_deferred();
      in_reaper_ = false;
      flush();
    });
  }
}

Status UringRing::register_buffers(std::span<std::uint8_t> region) {
  if (shut_down_) return Error{label_ + ": register_buffers after shutdown"};
  if (fixed_end_ != 0) return Error{label_ + ": buffers already registered"};
  if (in_flight_ != 0 || region.empty()) {
    return Error{label_ + ": register_buffers needs an idle ring and a region"};
  }
  iovec vector{region.data(), region.size()};
  const int result = io_uring_register_buffers(&ring_, &vector, 1);
  if (result < 0) {
    return Error{label_ + ": io_uring buffer registration of " + std::to_string(region.size()) +
                 " bytes: " + errno_text(-result) +
                 (result == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "")};
  }
  fixed_begin_ = reinterpret_cast<std::uintptr_t>(region.data());
  fixed_end_ = fixed_begin_ + region.size();
  return Status::success();
}

bool UringRing::is_fixed_buffer(const std::uint8_t* data, std::size_t size_bytes) const {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  return begin >= fixed_begin_ && begin + size_bytes <= fixed_end_;
}

bool UringRing::is_current(const Request& request) const {
  const File& file = files_[request.file];
  return file.client != nullptr && file.generation == request.file_generation;
}

Status UringRing::submit(FileHandle file, Operation operation, std::uint64_t cookie,
                         std::uint64_t offset_bytes, std::uint8_t* data,
                         std::uint32_t length_bytes, bool fua) {
  if (shut_down_) return Error{label_ + ": shut down"};
  DITTO_ASSERT(file.index < files_.size() && files_[file.index].client != nullptr &&
               files_[file.index].generation == file.generation);
  if (free_slots_.empty()) {
    return Error{label_ + ": busy (" + std::to_string(in_flight_) +
                 " operations in flight, the limit)"};
  }
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  Request& request = requests_[slot];
  request = Request{};
  request.cookie = cookie;
  request.offset_bytes = offset_bytes;
  request.data = data;
  request.remaining_bytes = length_bytes;
  request.file = file.index;
  request.file_generation = file.generation;
  request.operation = operation;
  request.fua = fua;
  request.fixed_buffer = operation != Operation::flush && is_fixed_buffer(data, length_bytes);
  in_flight_++;
  if (backlog_count_ == 0 && in_kernel_ < options_.queue_depth) {
    prepare(slot);
  } else {
    DITTO_ASSERT(backlog_count_ < backlog_.size());
    backlog_[(backlog_head_ + backlog_count_) % backlog_.size()] = slot;
    backlog_count_++;
  }
  schedule_flush();
  return Status::success();
}

void UringRing::free_slot(std::uint32_t slot) {
  DITTO_ASSERT(in_flight_ > 0);
  free_slots_.push_back(slot);
  in_flight_--;
}

// Fills one SQE for the not-yet-done part of the request in slot.
void UringRing::prepare(std::uint32_t slot) {
  DITTO_ASSERT(in_kernel_ < options_.queue_depth);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // Never null: prepared + submitted <= queue_depth <= SQ entries.
  DITTO_ASSERT(sqe != nullptr);
  const Request& request = requests_[slot];
  File& file = files_[request.file];
  const int target = file.fixed ? static_cast<int>(request.file) : file.descriptor;
  constexpr int kBufferIndex = 0;
  switch (request.operation) {
    case Operation::read:
      if (request.fixed_buffer) {
        io_uring_prep_read_fixed(sqe, target, request.data, request.remaining_bytes,
                                 request.offset_bytes, kBufferIndex);
      } else {
        io_uring_prep_read(sqe, target, request.data, request.remaining_bytes,
                           request.offset_bytes);
      }
      break;
    case Operation::write:
      if (request.fixed_buffer) {
        io_uring_prep_write_fixed(sqe, target, request.data, request.remaining_bytes,
                                  request.offset_bytes, kBufferIndex);
      } else {
        io_uring_prep_write(sqe, target, request.data, request.remaining_bytes,
                            request.offset_bytes);
      }
      if (request.fua) sqe->rw_flags = RWF_DSYNC;
      break;
    case Operation::flush:
      io_uring_prep_fsync(sqe, target, IORING_FSYNC_DATASYNC);
      break;
  }
  if (file.fixed) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, slot);
  in_kernel_++;
  file.in_kernel++;
}

void UringRing::release_submissions() {
  DITTO_ASSERT(submission_holds_ > 0);
  submission_holds_--;
  // Inside the reaper its own flush comes at the end of the batch.
  if (submission_holds_ == 0 && !in_reaper_ && !shut_down_) flush();
}

void UringRing::schedule_flush() {
  // The reaper flushes when its batch is done, the last release of a hold when its batch is.
  if (flush_posted_ || in_reaper_ || submission_holds_ > 0) return;
  flush_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired() || shut_down_) return;
    flush_posted_ = false;
    flush();
  });
}

// Moves backlog into free kernel slots, then submits every prepared SQE with one syscall.
void UringRing::flush() {
  while (backlog_count_ > 0 && in_kernel_ < options_.queue_depth) {
    const std::uint32_t slot = backlog_[backlog_head_];
    backlog_head_ = (backlog_head_ + 1) % backlog_.size();
    backlog_count_--;
    if (is_current(requests_[slot])) {
      prepare(slot);
    } else {
      free_slot(slot);  // its file was detached
    }
  }
  while (io_uring_sq_ready(&ring_) > 0) {
    const int result = io_uring_submit(&ring_);
    if (result > 0) continue;  // short submit: a bad SQE got its CQE; send the rest
    if (result == -EAGAIN || result == -EBUSY || result == -EINTR || result == 0) {
      schedule_flush();  // transient: the prepared SQEs stay in the SQ, retry next turn
      return;
    }
    // Our SQEs and ring are valid; anything else is a broken ring, not a device error.
    DITTO_ASSERT(result >= 0);
  }
}

void UringRing::arm_reaper() {
  event_descriptor_.async_read_some(
      boost::asio::buffer(&eventfd_value_, sizeof eventfd_value_),
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& error,
                                                 std::size_t) {
        // operation_aborted at shutdown; after destruction `this` must not be touched.
        if (error || alive.expired() || shut_down_) return;
        reap();
        if (!shut_down_) arm_reaper();
      });
}

// Takes one CQE off the books (ring and file counters); the caller advances the CQ.
void UringRing::consume(const io_uring_cqe& cqe, Completion& out) {
  out = Completion{cqe.user_data, cqe.res};
  if (cqe.user_data == kCancelUserData) return;
  DITTO_ASSERT(cqe.user_data < requests_.size());
  DITTO_ASSERT(in_kernel_ > 0);
  in_kernel_--;
  File& file = files_[requests_[cqe.user_data].file];
  if (file.in_kernel > 0) file.in_kernel--;
}

void UringRing::deliver_deferred() {
  std::vector<Completion> batch;
  batch.swap(deferred_);
  for (const Completion& completion : batch) {
    if (shut_down_) return;
    on_completion(completion.user_data, completion.result);
  }
}

void UringRing::reap() {
  DITTO_ASSERT(!in_reaper_);
  in_reaper_ = true;
  deliver_deferred();
  io_uring_cqe* cqes[kReapBatch];
  Completion completions[kReapBatch];
  unsigned count = 0;
  while (!shut_down_ && (count = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch)) > 0) {
    for (unsigned index = 0; index < count; index++) consume(*cqes[index], completions[index]);
    io_uring_cq_advance(&ring_, count);  // free the CQ slots before user code runs
    for (unsigned index = 0; index < count && !shut_down_; index++) {
      if (completions[index].user_data == kCancelUserData) continue;
      on_completion(completions[index].user_data, completions[index].result);
    }
    // A handler may have detached a file: what that reaped for others comes first.
    deliver_deferred();
  }
  in_reaper_ = false;
  if (!shut_down_) flush();  // resubmissions and the handlers' new operations
}

void UringRing::on_completion(std::uint64_t user_data, int result) {
  DITTO_ASSERT(user_data < requests_.size());
  const auto slot = static_cast<std::uint32_t>(user_data);
  Request& request = requests_[slot];
  if (!is_current(request)) {  // its file was detached meanwhile: nobody to tell
    free_slot(slot);
    return;
  }
  if (result == -EAGAIN && request.again_retries < kMaxAgainRetries) {
    request.again_retries++;
    prepare(slot);
    return;
  }
  int final_result = result < 0 ? result : 0;
  if (result >= 0 && request.operation != Operation::flush) {
    const auto done_bytes = static_cast<std::uint32_t>(result);
    DITTO_ASSERT(done_bytes <= request.remaining_bytes);
    if (done_bytes == 0) {  // end of file: the file shrank below the size seen at open
      final_result = -EIO;
    } else if (done_bytes < request.remaining_bytes) {  // short: resubmit the remainder
      request.data += done_bytes;
      request.offset_bytes += done_bytes;
      request.remaining_bytes -= done_bytes;
      prepare(slot);
      return;
    }
  }
  Client* client = files_[request.file].client;
  const std::uint64_t cookie = request.cookie;
  free_slot(slot);  // before the handler, so it can submit again
  client->on_ring_completion(cookie, final_result);
}

// Submits what is prepared plus a cancel-any, then waits until the kernel returned every
// operation: after this no buffer is referenced. O_DIRECT I/O on a device usually cannot be
// cancelled; then this simply waits for it.
void UringRing::drain_kernel() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    (void)io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe != nullptr) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kCancelUserData);
  }
  while (io_uring_sq_ready(&ring_) > 0) {
    const int result = io_uring_submit(&ring_);
    if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) break;
  }
  while (in_kernel_ > 0) {
    io_uring_cqe* cqe = nullptr;
    const int result = io_uring_wait_cqe(&ring_, &cqe);
    if (result == -EINTR) continue;
    // Only a broken ring fails here; io_uring_queue_exit then still waits for the kernel.
    if (result < 0) break;
    Completion ignored{};
    consume(*cqe, ignored);
    io_uring_cqe_seen(&ring_, cqe);
  }
}

void UringRing::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (ring_ready_) {
    drain_kernel();
    if (event_file_descriptor_ >= 0) (void)io_uring_unregister_eventfd(&ring_);
  }
  if (event_descriptor_.is_open()) {
    // release(), not close(): the eventfd is ours to close (io-uring-asio.md pitfall 3).
    // Releasing deregisters it from the reactor and aborts the armed read.
    (void)event_descriptor_.release();
  }
  if (event_file_descriptor_ >= 0) ::close(event_file_descriptor_);
  event_file_descriptor_ = -1;
  if (ring_ready_) io_uring_queue_exit(&ring_);  // also unregisters the files and buffers
  ring_ready_ = false;
  backlog_count_ = 0;
  in_flight_ = 0;
  in_kernel_ = 0;
  deferred_.clear();
}

}  // namespace ditto::datapath
