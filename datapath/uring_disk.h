// The io_uring disk: a regular file or block device opened with O_DIRECT, attached to an io_uring
// ring (datapath/uring_ring.h) inside one Boost.Asio io_context (one thread, no locks). Either
// the disk has a ring of its own (open(io, path)), or it shares its shard's ring with the other
// disks of the shard (open(ring, path)): one ring per shard, not per disk.
//
// At most queue_depth operations are in the kernel at once (like fio's iodepth); up to
// backlog_limit more wait in a bounded internal queue, and beyond that submit_* says "busy".
// On a shared ring these bounds are the ring's, for all its disks together.
#pragma once

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
#include "datapath/uring_ring.h"

namespace ditto::datapath {

struct UringDiskOptions {
  unsigned queue_depth = 256;     // operations in the kernel at once; the SQ has at least this
  bool direct_io = true;          // O_DIRECT; false only for tests on file systems without it
  unsigned backlog_limit = 1024;  // operations queued beyond queue_depth before "busy"
};

class UringDisk final : private UringRing::Client {
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
  // Opens path the same way and attaches it to `ring` (a shard's), which must outlive the
  // disk. options.queue_depth and backlog_limit are the ring's and ignored here.
  static Result<std::unique_ptr<UringDisk>> open(UringRing& ring, const std::string& path,
                                                 UringDiskOptions options = {});
  ~UringDisk() override;
  UringDisk(const UringDisk&) = delete;
  UringDisk& operator=(const UringDisk&) = delete;

  void set_completion_handler(CompletionHandler handler);

  // Registers region (e.g. AlignedBufferPool::slab()) as the ring's fixed buffer (on a shared
  // ring: for every disk of the ring; do it once, on the ring). Afterwards
  // reads and writes whose buffer lies inside region use READ_FIXED/WRITE_FIXED (no page pinning
  // per I/O). Optional; only once, and only while nothing is in flight. Counts against
  // RLIMIT_MEMLOCK for a process without CAP_IPC_LOCK.
  [[nodiscard]] Status register_buffers(std::span<std::uint8_t> region);

  std::uint64_t size_bytes() const { return size_bytes_; }
  // The device grew (an online resize re-read its size): I/O may reach up to `size_bytes`.
  void grow_to(std::uint64_t size_bytes) {
    if (size_bytes > size_bytes_) size_bytes_ = size_bytes;
  }
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
  UringDisk(std::string path, std::unique_ptr<UringRing> own_ring, UringRing& ring);
  static Result<std::unique_ptr<UringDisk>> attach(std::unique_ptr<UringRing> own_ring,
                                                   UringRing& ring, const std::string& path,
                                                   const UringDiskOptions& options);
  Status validate(const char* operation, std::uint64_t offset_bytes, const std::uint8_t* data,
                  std::size_t size_bytes) const;
  Status enqueue(UringRing::Operation operation, std::uint64_t cookie,
                 std::uint64_t offset_bytes, std::uint8_t* data, std::uint32_t length_bytes,
                 bool fua);
  void on_ring_completion(std::uint64_t cookie, int result) override;

  std::string path_;
  std::unique_ptr<UringRing> own_ring_;  // null on a shared ring
  UringRing& ring_;
  UringRing::FileHandle file_;
  bool attached_ = false;
  bool shut_down_ = false;
  int file_descriptor_ = -1;
  std::uint64_t size_bytes_ = 0;
  std::uint32_t alignment_bytes_ = 4096;
  std::size_t in_flight_ = 0;
  CompletionHandler handler_;
};

}  // namespace ditto::datapath
