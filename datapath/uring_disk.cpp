#include "datapath/uring_disk.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include "core/assert.h"

namespace ditto::datapath {
namespace {

constexpr std::uint32_t kSizeMultipleBytes = 4096;
constexpr std::uint32_t kDefaultAlignmentBytes = 4096;
constexpr std::size_t kMaxRequestBytes = std::size_t{1} << 30;

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

UringDisk::UringDisk(std::string path, std::unique_ptr<UringRing> own_ring, UringRing& ring)
    : path_(std::move(path)), own_ring_(std::move(own_ring)), ring_(ring) {}

UringDisk::~UringDisk() { shutdown(); }

Result<std::unique_ptr<UringDisk>> UringDisk::open(boost::asio::io_context& io,
                                                   const std::string& path,
                                                   UringDiskOptions options) {
  UringRingOptions ring_options;
  ring_options.queue_depth = options.queue_depth;
  ring_options.backlog_limit = options.backlog_limit;
  ring_options.fixed_files_max = 1;
  auto ring = UringRing::create(io, "uring disk " + path, ring_options);
  if (!ring.ok()) return ring.error();
  UringRing& shared = *ring.value();
  return attach(std::move(ring).value(), shared, path, options);
}

Result<std::unique_ptr<UringDisk>> UringDisk::open(UringRing& ring, const std::string& path,
                                                   UringDiskOptions options) {
  return attach(nullptr, ring, path, options);
}

Result<std::unique_ptr<UringDisk>> UringDisk::attach(std::unique_ptr<UringRing> own_ring,
                                                     UringRing& ring, const std::string& path,
                                                     const UringDiskOptions& options) {
  Result<BackingFile> file = open_backing_file(path, options.direct_io);
  if (!file.ok()) return file.error();
  std::unique_ptr<UringDisk> disk(new UringDisk(path, std::move(own_ring), ring));
  disk->file_descriptor_ = file.value().file_descriptor;
  disk->size_bytes_ = file.value().size_bytes;
  disk->alignment_bytes_ = file.value().alignment_bytes;
  auto handle = ring.attach(disk->file_descriptor_, *disk);
  if (!handle.ok()) {
    return Error{"uring disk " + path + ": " + handle.error().message};
  }
  disk->file_ = handle.value();
  disk->attached_ = true;
  return disk;
}

void UringDisk::set_completion_handler(CompletionHandler handler) {
  handler_ = std::move(handler);
}

Status UringDisk::register_buffers(std::span<std::uint8_t> region) {
  if (shut_down_) return Error{"uring disk " + path_ + ": register_buffers after shutdown"};
  if (in_flight_ != 0) {
    return Error{"uring disk " + path_ + ": register_buffers needs an idle disk and a region"};
  }
  return ring_.register_buffers(region);
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
  // The kernel only reads from a write's buffer; the ring stores one pointer type for both.
  return enqueue(UringRing::Operation::write, cookie, offset_bytes,
                 const_cast<std::uint8_t*>(buffer.data()),
                 static_cast<std::uint32_t>(buffer.size()), fua);
}

Status UringDisk::submit_read(std::uint64_t cookie, std::uint64_t offset_bytes,
                              std::span<std::uint8_t> buffer) {
  Status valid = validate("read", offset_bytes, buffer.data(), buffer.size());
  if (!valid.ok()) return valid;
  return enqueue(UringRing::Operation::read, cookie, offset_bytes, buffer.data(),
                 static_cast<std::uint32_t>(buffer.size()), false);
}

Status UringDisk::submit_flush(std::uint64_t cookie) {
  return enqueue(UringRing::Operation::flush, cookie, 0, nullptr, 0, false);
}

Status UringDisk::enqueue(UringRing::Operation operation, std::uint64_t cookie,
                          std::uint64_t offset_bytes, std::uint8_t* data,
                          std::uint32_t length_bytes, bool fua) {
  if (shut_down_) return Error{"uring disk " + path_ + ": shut down"};
  Status status = ring_.submit(file_, operation, cookie, offset_bytes, data, length_bytes, fua);
  if (!status.ok()) {
    if (own_ring_) return status;  // the message already names this disk
    return Error{"uring disk " + path_ + ": " + status.error().message};
  }
  in_flight_++;
  return Status::success();
}

void UringDisk::on_ring_completion(std::uint64_t cookie, int result) {
  DITTO_ASSERT(in_flight_ > 0);
  in_flight_--;
  if (handler_) handler_(cookie, result);
}

// Waits until the kernel returned every operation of this disk (its own ring: every operation
// at all), so no buffer is referenced afterwards; then closes the file.
void UringDisk::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (attached_) {
    if (own_ring_) {
      own_ring_->shutdown();
    } else {
      ring_.detach(file_);
    }
    attached_ = false;
  }
  if (file_descriptor_ >= 0) ::close(file_descriptor_);
  file_descriptor_ = -1;
  in_flight_ = 0;
}

}  // namespace ditto::datapath
