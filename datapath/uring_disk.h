// The io_uring disk of one shard: a regular file or block device opened with O_DIRECT, driven by
// one io_uring ring inside one Boost.Asio io_context (one thread, no locks).
//
// Loop (io-uring-asio.md §6): operations are queued as SQEs and submitted once per handler
// batch (an asio::post'ed flush, or the end of a reaper turn), not per call. The ring signals
// an eventfd, read with stream_descriptor::async_read_some; the reaper copies a batch of CQEs
// out with io_uring_peek_batch_cqe, advances the CQ, and only then runs completion handlers.
//
// At most queue_depth operations are in the kernel at once (like fio's iodepth); up to
// backlog_limit more wait in a bounded internal queue, and beyond that submit_* says "busy".
#pragma once

#include <liburing.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ditto::datapath {

struct UringDiskOptions {
  unsigned queue_depth = 256;     // operations in the kernel at once; the SQ has at least this
  bool direct_io = true;          // O_DIRECT; false only for tests on file systems without it
  unsigned backlog_limit = 1024;  // operations queued beyond queue_depth before "busy"
};

class UringDisk {
 public:
  // result: 0 ok, or -errno. Called from the reaper (an io_context handler), never from inside
  // submit_* and never from shutdown(). The handler may call submit_* and shutdown(), but must
  // not destroy the disk.
  using CompletionHandler = std::function<void(std::uint64_t cookie, int result)>;

  // Opens path (regular file or block device) O_RDWR|O_DIRECT|O_CLOEXEC, sets up the ring on io.
  // Errors name the path and the problem (missing, not a file or block device, empty, size not
  // a multiple of 4096, O_DIRECT refused, io_uring setup failed). The disk must be destroyed
  // before io.
  static Result<std::unique_ptr<UringDisk>> open(boost::asio::io_context& io,
                                                 const std::string& path,
                                                 UringDiskOptions options = {});
  ~UringDisk();
  UringDisk(const UringDisk&) = delete;
  UringDisk& operator=(const UringDisk&) = delete;

  void set_completion_handler(CompletionHandler handler);

  // Registers region (e.g. AlignedBufferPool::slab()) as the ring's fixed buffer. Afterwards
  // reads and writes whose buffer lies inside region use READ_FIXED/WRITE_FIXED (no page pinning
  // per I/O). Optional; only once, and only while nothing is in flight. Counts against
  // RLIMIT_MEMLOCK for a process without CAP_IPC_LOCK.
  [[nodiscard]] Status register_buffers(std::span<std::uint8_t> region);

  std::uint64_t size_bytes() const { return size_bytes_; }
  // Offset, length and memory alignment required for every read and write.
  std::uint32_t alignment_bytes() const { return alignment_bytes_; }
  const std::string& path() const { return path_; }

  // Buffers must be aligned to alignment_bytes() and stay valid until the completion (or until
  // shutdown() returns). offset and length must be aligned, length > 0, and the range must lie
  // within size_bytes(); violations are rejected here, with nothing queued. A range the kernel
  // cannot finish (file shrank after open: zero-length read) completes with -EIO.
  // fua: RWF_DSYNC (the data is durable when the completion reports 0).
  [[nodiscard]] Status submit_write(std::uint64_t cookie, std::uint64_t offset_bytes,
                                    std::span<const std::uint8_t> buffer, bool fua);
  [[nodiscard]] Status submit_read(std::uint64_t cookie, std::uint64_t offset_bytes,
                                   std::span<std::uint8_t> buffer);
  // fdatasync of the file (IORING_OP_FSYNC with IORING_FSYNC_DATASYNC).
  [[nodiscard]] Status submit_flush(std::uint64_t cookie);

  // Operations accepted by submit_* and not yet completed (in the kernel or in the backlog).
  std::size_t in_flight() const { return in_flight_; }

  // Cancels what can be cancelled and waits (blocking) until the kernel has finished every
  // operation, so no buffer is referenced afterwards; then unregisters and closes everything.
  // Operations outstanding at shutdown get no completion call: the owner treats in_flight()
  // (read before the call) as aborted. Later submit_* calls fail. Idempotent; the destructor
  // calls it.
  void shutdown();

 private:
  enum class Operation : std::uint8_t { read, write, flush };
  struct Request {
    std::uint64_t cookie = 0;
    std::uint64_t offset_bytes = 0;    // of the part not yet done
    std::uint8_t* data = nullptr;      // of the part not yet done
    std::uint32_t remaining_bytes = 0;
    std::uint16_t again_retries = 0;
    Operation operation = Operation::read;
    bool fua = false;
    bool fixed_buffer = false;
  };
  struct Completion {
    std::uint64_t user_data;
    int result;
  };

  UringDisk(boost::asio::io_context& io, std::string path, UringDiskOptions options);
  Status setup_ring();
  Status validate(const char* operation, std::uint64_t offset_bytes, const std::uint8_t* data,
                  std::size_t size_bytes) const;
  Status enqueue(const Request& request);
  void prepare(std::uint32_t slot);
  void schedule_flush();
  void flush();
  void arm_reaper();
  void reap();
  void on_completion(std::uint64_t user_data, int result);
  void complete(std::uint32_t slot, int result);
  void drain_kernel();
  bool is_fixed_buffer(const std::uint8_t* data, std::size_t size_bytes) const;

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor event_descriptor_;
  std::string path_;
  UringDiskOptions options_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool shut_down_ = false;
  bool flush_posted_ = false;
  bool in_reaper_ = false;
  int file_descriptor_ = -1;
  int event_file_descriptor_ = -1;
  std::uint64_t eventfd_value_ = 0;
  std::uint64_t size_bytes_ = 0;
  std::uint32_t alignment_bytes_ = 4096;
  std::uintptr_t fixed_begin_ = 0;
  std::uintptr_t fixed_end_ = 0;
  CompletionHandler handler_;

  // Request slots, preallocated (queue_depth + backlog_limit): user_data is the slot index.
  std::vector<Request> requests_;
  std::vector<std::uint32_t> free_slots_;
  // Slots waiting for room in the kernel: a ring buffer as large as requests_.
  std::vector<std::uint32_t> backlog_;
  std::size_t backlog_head_ = 0;
  std::size_t backlog_count_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t in_kernel_ = 0;  // prepared SQEs + submitted, not yet reaped; <= queue_depth
  // Posted handlers hold a weak_ptr to this, so they do nothing once the disk is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace ditto::datapath
