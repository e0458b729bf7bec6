// One io_uring ring inside one Boost.Asio io_context (one thread, no locks), shared by every
// disk of a shard: a daemon with 1000 resources on 2 shards has 2 rings, not 1000 (each ring
// costs a file descriptor, an eventfd, pinned SQ/CQ memory and a reactor registration).
//
// Loop (io-uring-asio.md §6): operations are queued as SQEs and submitted once per handler
// batch (an asio::post'ed flush, the end of a reaper turn, or the end of a submission batch a
// caller holds open), not per call. The ring signals an eventfd, read with
// stream_descriptor::async_read_some; the reaper copies a batch of CQEs out with
// io_uring_peek_batch_cqe, advances the CQ, and only then runs completion handlers.
//
// At most queue_depth operations are in the kernel at once (like fio's iodepth); up to
// backlog_limit more wait in a bounded internal queue, and beyond that submit says "busy".
// The bound is per ring: disks of one shard share it.
//
// Files are attached (registered in a sparse fixed-file table while it has room, used by plain
// descriptor after that) and detached one at a time while the others keep running: detach waits
// for the file's operations in the kernel and drops its queued ones; completions of the other
// files that arrive meanwhile are delivered on the next loop turn.
#pragma once

#include <liburing.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ditto::datapath {

struct UringRingOptions {
  unsigned queue_depth = 256;     // operations in the kernel at once; the SQ has at least this
  unsigned backlog_limit = 1024;  // operations queued beyond queue_depth before "busy"
  unsigned fixed_files_max = 1;   // registered-file slots; files beyond use plain descriptors
};

class UringRing {
 public:
  // Receives the completions of one attached file (on the io_context thread, from the reaper,
  // never from inside submit/detach). result: 0 ok, or -errno.
  class Client {
   public:
    virtual ~Client() = default;
    virtual void on_ring_completion(std::uint64_t cookie, int result) = 0;
  };
  enum class Operation : std::uint8_t { read, write, flush };
  struct FileHandle {
    std::uint32_t index = 0;
    std::uint32_t generation = 0;
  };

  // `label` starts every error message ("uring disk /path", "shard 1 ring").
  static Result<std::unique_ptr<UringRing>> create(boost::asio::io_context& io,
                                                   std::string label,
                                                   UringRingOptions options = {});
  ~UringRing();
  UringRing(const UringRing&) = delete;
  UringRing& operator=(const UringRing&) = delete;

  // The descriptor stays owned by the caller and must stay open until detach() returns.
  [[nodiscard]] Result<FileHandle> attach(int file_descriptor, Client& client);
  // Blocks until the kernel has returned every operation of the file (so no buffer of it is
  // referenced afterwards) and drops its queued ones; none of them gets a completion call.
  void detach(FileHandle file);

  // Registers region as the ring's fixed buffer (see UringDisk::register_buffers).
  [[nodiscard]] Status register_buffers(std::span<std::uint8_t> region);

  // One operation on an attached file; the range was validated by the caller. data/length are
  // ignored for flush. Fails with "busy" when queue and backlog are full, or after shutdown.
  [[nodiscard]] Status submit(FileHandle file, Operation operation, std::uint64_t cookie,
                              std::uint64_t offset_bytes, std::uint8_t* data,
                              std::uint32_t length_bytes, bool fua);

  // Holds submission back while a caller starts a batch of operations in one handler (an NBD
  // connection parsing every request it has read): submit() then prepares SQEs without posting a
  // flush, and the release that ends the outermost hold submits them with one system call, in
  // that handler, instead of one loop turn later. Holds nest; every hold needs its release.
  void hold_submissions() { submission_holds_++; }
  void release_submissions();

  // SQEs prepared and not yet handed to the kernel.
  bool submission_pending() const { return io_uring_sq_ready(&ring_) > 0; }
  std::size_t in_flight() const { return in_flight_; }
  std::size_t attached_files() const { return attached_files_; }
  const std::string& label() const { return label_; }

  // Waits for every operation in the kernel, then closes the ring. Outstanding operations get no
  // completion call. Idempotent; the destructor calls it.
  void shutdown();

 private:
  struct Request {
    std::uint64_t cookie = 0;
    std::uint64_t offset_bytes = 0;    // of the part not yet done
    std::uint8_t* data = nullptr;      // of the part not yet done
    std::uint32_t remaining_bytes = 0;
    std::uint32_t file = 0;
    std::uint32_t file_generation = 0;
    std::uint16_t again_retries = 0;
    Operation operation = Operation::read;
    bool fua = false;
    bool fixed_buffer = false;
  };
  struct File {
    Client* client = nullptr;  // null: free or detached
    int descriptor = -1;
    std::uint32_t generation = 0;
    bool fixed = false;          // in the registered table at `index`
    std::size_t in_kernel = 0;   // its SQEs prepared or submitted, not yet reaped
  };
  struct Completion {
    std::uint64_t user_data;
    int result;
  };

  UringRing(boost::asio::io_context& io, std::string label, UringRingOptions options);
  Status setup();
  bool is_fixed_buffer(const std::uint8_t* data, std::size_t size_bytes) const;
  bool is_current(const Request& request) const;
  void prepare(std::uint32_t slot);
  void free_slot(std::uint32_t slot);
  void schedule_flush();
  void flush();
  void arm_reaper();
  void reap();
  void consume(const io_uring_cqe& cqe, Completion& out);
  void deliver_deferred();
  void on_completion(std::uint64_t user_data, int result);
  void drain_kernel();

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor event_descriptor_;
  std::string label_;
  UringRingOptions options_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool shut_down_ = false;
  bool flush_posted_ = false;
  bool deliver_posted_ = false;
  bool in_reaper_ = false;
  unsigned submission_holds_ = 0;
  int event_file_descriptor_ = -1;
  std::uint64_t eventfd_value_ = 0;
  std::uintptr_t fixed_begin_ = 0;
  std::uintptr_t fixed_end_ = 0;

  std::vector<File> files_;  // index = FileHandle::index; the first fixed_files_max are fixed
  std::vector<std::uint32_t> free_files_;
  std::size_t attached_files_ = 0;

  // Request slots, preallocated (queue_depth + backlog_limit): user_data is the slot index.
  std::vector<Request> requests_;
  std::vector<std::uint32_t> free_slots_;
  // Slots waiting for room in the kernel: a ring buffer as large as requests_.
  std::vector<std::uint32_t> backlog_;
  std::size_t backlog_head_ = 0;
  std::size_t backlog_count_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t in_kernel_ = 0;  // prepared SQEs + submitted, not yet reaped; <= queue_depth
  // Completions reaped while detach() waited for another file: delivered next loop turn.
  std::vector<Completion> deferred_;
  // Posted handlers hold a weak_ptr to this, so they do nothing once the ring is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace ditto::datapath
