#include "datapath/uring_disk.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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
constexpr std::uint32_t kSizeMultipleBytes = 4096;
constexpr std::uint32_t kDefaultAlignmentBytes = 4096;
constexpr std::size_t kMaxRequestBytes = std::size_t{1} << 30;
constexpr unsigned kMaxQueueDepth = 32768;
constexpr unsigned kReapBatch = 64;
// -EAGAIN is retried, but not forever: a device that never makes progress must surface.
constexpr std::uint16_t kMaxAgainRetries = 1000;

std::string errno_text(int error_number) {
  return std::error_code(error_number, std::generic_category()).message();
}

struct BackingFile {
  int file_descriptor = -1;
  std::uint64_t size_bytes = 0;
  std::uint32_t alignment_bytes = kDefaultAlignmentBytes;
};

// statx(STATX_DIOALIGN) when the kernel reports it; the larger of the memory and offset
// alignment, since one value serves both (io-uring-asio.md pitfall 10). Falls back to 4096.
std::uint32_t query_direct_io_alignment(int file_descriptor) {
#ifdef STATX_DIOALIGN
  struct statx attributes {};
  if (::statx(file_descriptor, "", AT_EMPTY_PATH, STATX_DIOALIGN, &attributes) == 0 &&
      (attributes.stx_mask & STATX_DIOALIGN) != 0 && attributes.stx_dio_offset_align != 0) {
    return std::max({attributes.stx_dio_offset_align, attributes.stx_dio_mem_align,
                     std::uint32_t{512}});
  }
#endif
  (void)file_descriptor;
  return kDefaultAlignmentBytes;
}

Result<std::uint64_t> query_size_bytes(int file_descriptor, const std::string& path) {
  struct stat attributes {};
  if (::fstat(file_descriptor, &attributes) != 0) {
    return Error{"uring disk " + path + ": fstat failed: " + errno_text(errno)};
  }
  if (S_ISREG(attributes.st_mode)) return static_cast<std::uint64_t>(attributes.st_size);
  if (!S_ISBLK(attributes.st_mode)) {
    return Error{"uring disk " + path + ": is neither a regular file nor a block device"};
  }
  std::uint64_t size_bytes = 0;
  if (::ioctl(file_descriptor, BLKGETSIZE64, &size_bytes) != 0) {
    return Error{"uring disk " + path + ": BLKGETSIZE64 failed: " + errno_text(errno)};
  }
  return size_bytes;
}

Result<BackingFile> open_backing_file(const std::string& path, bool direct_io) {
  const int flags = O_RDWR | O_CLOEXEC | (direct_io ? O_DIRECT : 0);
  const int file_descriptor = ::open(path.c_str(), flags);
  if (file_descriptor < 0) {
    const int error_number = errno;
    if (error_number == EINVAL && direct_io) {
      return Error{"uring disk " + path +
                   ": O_DIRECT refused (the file system does not support direct I/O)"};
    }
    return Error{"uring disk " + path + ": cannot open read-write: " + errno_text(error_number)};
  }
  BackingFile file{file_descriptor, 0, query_direct_io_alignment(file_descriptor)};
  Result<std::uint64_t> size = query_size_bytes(file_descriptor, path);
  std::string problem;
  if (!size.ok()) {
    ::close(file_descriptor);
    return size.error();
  }
  file.size_bytes = size.value();
  if (file.size_bytes == 0) {
    problem = ": is empty (0 bytes)";
  } else if (file.size_bytes % kSizeMultipleBytes != 0 ||
             file.size_bytes % file.alignment_bytes != 0) {
    problem = ": size " + std::to_string(file.size_bytes) + " bytes is not a multiple of " +
              std::to_string(std::max(kSizeMultipleBytes, file.alignment_bytes)) + " bytes";
  }
  if (!problem.empty()) {
    ::close(file_descriptor);
    return Error{"uring disk " + path + problem};
  }
  return file;
}

}  // namespace

UringDisk::UringDisk(boost::asio::io_context& io, std::string path, UringDiskOptions options)
    : io_(io), event_descriptor_(io), path_(std::move(path)), options_(options) {
  const std::size_t slots = std::size_t{options.queue_depth} + options.backlog_limit;
  requests_.resize(slots);
  backlog_.resize(slots);
  free_slots_.reserve(slots);
  for (std::size_t slot = slots; slot-- > 0;) {
    free_slots_.push_back(static_cast<std::uint32_t>(slot));
  }
}

UringDisk::~UringDisk() { shutdown(); }

Result<std::unique_ptr<UringDisk>> UringDisk::open(boost::asio::io_context& io,
                                                   const std::string& path,
                                                   UringDiskOptions options) {
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return Error{"uring disk " + path + ": queue depth " + std::to_string(options.queue_depth) +
                 " is outside 1.." + std::to_string(kMaxQueueDepth)};
  }
  Result<BackingFile> file = open_backing_file(path, options.direct_io);
  if (!file.ok()) return file.error();
  std::unique_ptr<UringDisk> disk(new UringDisk(io, path, options));
  disk->file_descriptor_ = file.value().file_descriptor;
  disk->size_bytes_ = file.value().size_bytes;
  disk->alignment_bytes_ = file.value().alignment_bytes;
  Status status = disk->setup_ring();
  if (!status.ok()) return status.error();  // the destructor releases what was set up
  return disk;
}

Status UringDisk::setup_ring() {
  io_uring_params params{};
  // COOP_TASKRUN|TASKRUN_FLAG: the recommended default (io-uring-asio.md §1, pitfall 4).
  // SINGLE_ISSUER is left out: it would tie submit and shutdown to the creating thread for no
  // measured gain.
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
  if (result < 0) return Error{"uring disk " + path_ + ": io_uring setup: " + errno_text(-result)};
  ring_ready_ = true;
  DITTO_ASSERT(params.sq_entries >= options_.queue_depth);
  result = io_uring_register_files(&ring_, &file_descriptor_, 1);
  if (result < 0) {
    return Error{"uring disk " + path_ + ": io_uring file registration: " + errno_text(-result)};
  }
  event_file_descriptor_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_file_descriptor_ < 0) {
    return Error{"uring disk " + path_ + ": eventfd: " + errno_text(errno)};
  }
  result = io_uring_register_eventfd(&ring_, event_file_descriptor_);
  if (result < 0) {
    return Error{"uring disk " + path_ + ": io_uring eventfd registration: " +
                 errno_text(-result)};
  }
  boost::system::error_code error;
  event_descriptor_.assign(event_file_descriptor_, error);
  if (error) return Error{"uring disk " + path_ + ": asio assign eventfd: " + error.message()};
  arm_reaper();
  return Status::success();
}

void UringDisk::set_completion_handler(CompletionHandler handler) {
  handler_ = std::move(handler);
}

Status UringDisk::register_buffers(std::span<std::uint8_t> region) {
  if (shut_down_) return Error{"uring disk " + path_ + ": register_buffers after shutdown"};
  if (fixed_end_ != 0) return Error{"uring disk " + path_ + ": buffers already registered"};
  if (in_flight_ != 0 || region.empty()) {
    return Error{"uring disk " + path_ + ": register_buffers needs an idle disk and a region"};
  }
  iovec vector{region.data(), region.size()};
  const int result = io_uring_register_buffers(&ring_, &vector, 1);
  if (result < 0) {
    return Error{"uring disk " + path_ + ": io_uring buffer registration of " +
                 std::to_string(region.size()) + " bytes: " + errno_text(-result) +
                 (result == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "")};
  }
  fixed_begin_ = reinterpret_cast<std::uintptr_t>(region.data());
  fixed_end_ = fixed_begin_ + region.size();
  return Status::success();
}

bool UringDisk::is_fixed_buffer(const std::uint8_t* data, std::size_t size_bytes) const {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  return begin >= fixed_begin_ && begin + size_bytes <= fixed_end_;
}

Status UringDisk::validate(const char* operation, std::uint64_t offset_bytes,
                           const std::uint8_t* data, std::size_t size_bytes) const {
  const char* problem = nullptr;
  if (size_bytes == 0) {
    problem = "length is 0";
  } else if (size_bytes > kMaxRequestBytes) {
    problem = "length is above 1 GiB";
  } else if (offset_bytes % alignment_bytes_ != 0 || size_bytes % alignment_bytes_ != 0 ||
             reinterpret_cast<std::uintptr_t>(data) % alignment_bytes_ != 0) {
    problem = "offset, length or buffer is not aligned to the disk's alignment";
  } else if (offset_bytes > size_bytes_ || size_bytes > size_bytes_ - offset_bytes) {
    problem = "range is beyond the end of the disk";
  }
  if (problem == nullptr) return Status::success();
  return Error{"uring disk " + path_ + ": " + operation + " of " + std::to_string(size_bytes) +
               " bytes at " + std::to_string(offset_bytes) + " rejected: " + problem +
               " (alignment " + std::to_string(alignment_bytes_) + ", size " +
               std::to_string(size_bytes_) + ")"};
}

Status UringDisk::submit_write(std::uint64_t cookie, std::uint64_t offset_bytes,
                               std::span<const std::uint8_t> buffer, bool fua) {
  Status valid = validate("write", offset_bytes, buffer.data(), buffer.size());
  if (!valid.ok()) return valid;
  Request request;
  request.cookie = cookie;
  request.offset_bytes = offset_bytes;
  // The kernel only reads from a write's buffer; the slot stores one pointer type for both.
  request.data = const_cast<std::uint8_t*>(buffer.data());
  request.remaining_bytes = static_cast<std::uint32_t>(buffer.size());
  request.operation = Operation::write;
  request.fua = fua;
  request.fixed_buffer = is_fixed_buffer(buffer.data(), buffer.size());
  return enqueue(request);
}

Status UringDisk::submit_read(std::uint64_t cookie, std::uint64_t offset_bytes,
                              std::span<std::uint8_t> buffer) {
  Status valid = validate("read", offset_bytes, buffer.data(), buffer.size());
  if (!valid.ok()) return valid;
  Request request;
  request.cookie = cookie;
  request.offset_bytes = offset_bytes;
  request.data = buffer.data();
  request.remaining_bytes = static_cast<std::uint32_t>(buffer.size());
  request.operation = Operation::read;
  request.fixed_buffer = is_fixed_buffer(buffer.data(), buffer.size());
  return enqueue(request);
}

Status UringDisk::submit_flush(std::uint64_t cookie) {
  Request request;
  request.cookie = cookie;
  request.operation = Operation::flush;
  return enqueue(request);
}

Status UringDisk::enqueue(const Request& request) {
  if (shut_down_) return Error{"uring disk " + path_ + ": shut down"};
  if (free_slots_.empty()) {
    return Error{"uring disk " + path_ + ": busy (" + std::to_string(in_flight_) +
                 " operations in flight, the limit)"};
  }
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  requests_[slot] = request;
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

// Fills one SQE for the not-yet-done part of the request in slot.
void UringDisk::prepare(std::uint32_t slot) {
  DITTO_ASSERT(in_kernel_ < options_.queue_depth);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // Never null: prepared + submitted <= queue_depth <= SQ entries.
  DITTO_ASSERT(sqe != nullptr);
  const Request& request = requests_[slot];
  constexpr int kFileIndex = 0;  // the registered file (IOSQE_FIXED_FILE)
  constexpr int kBufferIndex = 0;
  switch (request.operation) {
    case Operation::read:
      if (request.fixed_buffer) {
        io_uring_prep_read_fixed(sqe, kFileIndex, request.data, request.remaining_bytes,
                                 request.offset_bytes, kBufferIndex);
      } else {
        io_uring_prep_read(sqe, kFileIndex, request.data, request.remaining_bytes,
                           request.offset_bytes);
      }
      break;
    case Operation::write:
      if (request.fixed_buffer) {
        io_uring_prep_write_fixed(sqe, kFileIndex, request.data, request.remaining_bytes,
                                  request.offset_bytes, kBufferIndex);
      } else {
        io_uring_prep_write(sqe, kFileIndex, request.data, request.remaining_bytes,
                            request.offset_bytes);
      }
      if (request.fua) sqe->rw_flags = RWF_DSYNC;
      break;
    case Operation::flush:
      io_uring_prep_fsync(sqe, kFileIndex, IORING_FSYNC_DATASYNC);
      break;
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, slot);
  in_kernel_++;
}

void UringDisk::schedule_flush() {
  if (flush_posted_ || in_reaper_) return;  // the reaper flushes when its batch is done
  flush_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired() || shut_down_) return;
    flush_posted_ = false;
    flush();
  });
}

// Moves backlog into free kernel slots, then submits every prepared SQE with one syscall.
void UringDisk::flush() {
  while (backlog_count_ > 0 && in_kernel_ < options_.queue_depth) {
    const std::uint32_t slot = backlog_[backlog_head_];
    backlog_head_ = (backlog_head_ + 1) % backlog_.size();
    backlog_count_--;
    prepare(slot);
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

void UringDisk::arm_reaper() {
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

void UringDisk::reap() {
  DITTO_ASSERT(!in_reaper_);
  in_reaper_ = true;
  io_uring_cqe* cqes[kReapBatch];
  Completion completions[kReapBatch];
  unsigned count = 0;
  while (!shut_down_ && (count = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch)) > 0) {
    for (unsigned index = 0; index < count; index++) {
      completions[index] = Completion{cqes[index]->user_data, cqes[index]->res};
      if (cqes[index]->user_data != kCancelUserData) in_kernel_--;
    }
    io_uring_cq_advance(&ring_, count);  // free the CQ slots before user code runs
    for (unsigned index = 0; index < count && !shut_down_; index++) {
      on_completion(completions[index].user_data, completions[index].result);
    }
  }
  in_reaper_ = false;
  if (!shut_down_) flush();  // resubmissions and the handlers' new operations
}

void UringDisk::on_completion(std::uint64_t user_data, int result) {
  if (user_data == kCancelUserData) return;
  DITTO_ASSERT(user_data < requests_.size());
  const auto slot = static_cast<std::uint32_t>(user_data);
  Request& request = requests_[slot];
  if (result == -EAGAIN && request.again_retries < kMaxAgainRetries) {
    request.again_retries++;
    prepare(slot);
    return;
  }
  if (result < 0 || request.operation == Operation::flush) {
    complete(slot, result < 0 ? result : 0);
    return;
  }
  const auto done_bytes = static_cast<std::uint32_t>(result);
  DITTO_ASSERT(done_bytes <= request.remaining_bytes);
  if (done_bytes == 0) {  // end of file: the file shrank below the size seen at open
    complete(slot, -EIO);
    return;
  }
  if (done_bytes < request.remaining_bytes) {  // short: resubmit the remainder
    request.data += done_bytes;
    request.offset_bytes += done_bytes;
    request.remaining_bytes -= done_bytes;
    prepare(slot);
    return;
  }
  complete(slot, 0);
}

void UringDisk::complete(std::uint32_t slot, int result) {
  DITTO_ASSERT(in_flight_ > 0);
  const std::uint64_t cookie = requests_[slot].cookie;
  free_slots_.push_back(slot);  // before the handler, so it can submit again
  in_flight_--;
  if (handler_) handler_(cookie, result);
}

// Submits what is prepared plus a cancel-any, then waits until the kernel returned every
// operation: after this no buffer is referenced. O_DIRECT I/O on a device usually cannot be
// cancelled; then this simply waits for it.
void UringDisk::drain_kernel() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    (void)io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe != nullptr) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kCancelUserData);
  }
  int result = 0;
  while (io_uring_sq_ready(&ring_) > 0) {
    result = io_uring_submit(&ring_);
    if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) break;
  }
  while (in_kernel_ > 0) {
    io_uring_cqe* cqe = nullptr;
    result = io_uring_wait_cqe(&ring_, &cqe);
    if (result == -EINTR) continue;
    // Only a broken ring fails here; io_uring_queue_exit then still waits for the kernel.
    if (result < 0) break;
    if (cqe->user_data != kCancelUserData) in_kernel_--;
    io_uring_cqe_seen(&ring_, cqe);
  }
}

void UringDisk::shutdown() {
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
  if (ring_ready_) io_uring_queue_exit(&ring_);  // also unregisters the file and buffers
  ring_ready_ = false;
  if (file_descriptor_ >= 0) ::close(file_descriptor_);
  file_descriptor_ = -1;
  backlog_count_ = 0;
  in_flight_ = 0;
  in_kernel_ = 0;
}

}  // namespace ditto::datapath
