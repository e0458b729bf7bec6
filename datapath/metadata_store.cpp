// DRBD v09 internal metadata on a backing device: open + validate, superblock, activity log and
// bitmap I/O (plain pread/pwrite: attach and shutdown only, never the data I/O path).
#include "datapath/metadata_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/assert.h"

namespace ditto::datapath {
namespace {

namespace md = ditto::metadata;

std::string hex32(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%x", value);
  return text;
}

std::uint32_t big_endian_u32(std::span<const std::uint8_t> bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

constexpr std::size_t magic_offset_bytes = 0x3c;  // in the superblock (§12.2)

// Size of a regular file or block device (lseek to the end works for both).
// Decodes and validates the superblock block read from a device of `device_bytes`.
Result<md::Superblock> validate_superblock(const std::string& path,
                                           std::span<const std::uint8_t> block,
                                           std::uint64_t device_bytes,
                                           std::uint64_t md_offset_bytes, md::Layout& layout) {
  const std::string where = " (superblock at byte offset " + std::to_string(md_offset_bytes) + ")";
  const std::uint32_t magic = big_endian_u32(block.subspan(magic_offset_bytes, 4));
  if (magic != md::superblock_magic_v09) {
    return Error{"no DRBD v09 metadata (magic " + hex32(magic) + " at byte offset " +
                 std::to_string(md_offset_bytes + magic_offset_bytes) + ", expected " +
                 hex32(md::superblock_magic_v09) + "); create it with `dittoadm create-md " + path +
                 " --max-peers N` (N: the resource's peer count)"};
  }
  Result<md::Superblock> superblock = md::decode_superblock(block);
  if (!superblock.ok()) return Error{superblock.error().message + where};
  Result<md::Layout> checked = md::check_superblock_layout(superblock.value(), device_bytes);
  if (!checked.ok()) return Error{checked.error().message + where};
  layout = checked.value();
  if (superblock.value().effective_size_sectors > layout.usable_sectors) {
    return Error{"superblock field la-size-sect " +
                 std::to_string(superblock.value().effective_size_sectors) +
                 " exceeds the data area of " + std::to_string(layout.usable_sectors) +
                 " sectors on this device" + where};
  }
  return superblock;
}

}  // namespace

Result<std::uint64_t> backing_bytes_for_data(std::uint64_t data_bytes,
                                             const md::LayoutOptions& options) {
  if (data_bytes == 0 || data_bytes % md::block_size_bytes != 0) {
    return Error{"data size " + std::to_string(data_bytes) +
                 " bytes is not a positive multiple of 4096"};
  }
  // Grow the device by the missing data bytes until the data area is exactly data_bytes. Adding
  // d bytes grows the data area by at most d (the metadata never shrinks), so this never
  // overshoots, and it ends because the metadata's growth is bounded.
  std::uint64_t device_bytes =
      std::max<std::uint64_t>(data_bytes + 2 * md::block_size_bytes, md::device_bytes_min);
  for (int step = 0; step < 64; ++step) {
    Result<md::Layout> layout = md::internal_layout(device_bytes, options);
    if (!layout.ok()) return layout.error();
    const std::uint64_t usable_bytes = layout.value().usable_sectors * md::sector_bytes;
    if (usable_bytes == data_bytes) return device_bytes;
    if (usable_bytes > data_bytes) {
      return Error{"no device size gives a data area of exactly " + std::to_string(data_bytes) +
                   " bytes (a device of " + std::to_string(device_bytes) + " bytes holds " +
                   std::to_string(usable_bytes) + ")"};
    }
    device_bytes += data_bytes - usable_bytes;
  }
  return Error{"device size for " + std::to_string(data_bytes) + " data bytes did not converge"};
}

// ---- Device I/O shared with dittoadm create-md/dump-md ---------------------------------------

Status read_exact_at(int fd, std::span<std::uint8_t> out, std::uint64_t offset_bytes) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t got =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset_bytes + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string reason = got == 0 ? "unexpected end of device" : std::strerror(errno);
      return Error{"at byte offset " + std::to_string(offset_bytes + done) + ": " + reason};
    }
    done += static_cast<std::size_t>(got);
  }
  return Status::success();
}

Status write_exact_at(int fd, std::span<const std::uint8_t> data, std::uint64_t offset_bytes) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t put = ::pwrite(fd, data.data() + done, data.size() - done,
                                 static_cast<off_t>(offset_bytes + done));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      const std::string reason = put == 0 ? "nothing written" : std::strerror(errno);
      return Error{"at byte offset " + std::to_string(offset_bytes + done) + ": " + reason};
    }
    done += static_cast<std::size_t>(put);
  }
  return Status::success();
}

Result<std::uint64_t> device_size(int fd) {
  const off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return Error{std::string("cannot find its size: ") + std::strerror(errno)};
  return static_cast<std::uint64_t>(end);
}

// ---- MetadataStore ----------------------------------------------------------------------------

MetadataStore::MetadataStore(std::string path, int fd, md::Superblock superblock, md::Layout layout)
    : path_(std::move(path)), fd_(fd), superblock_(superblock), layout_(layout) {}

MetadataStore::~MetadataStore() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<MetadataStore>> MetadataStore::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Error{path + ": cannot open: " + std::strerror(errno)};
  // From here the store owns fd (closed by its destructor, or below on error).
  std::unique_ptr<MetadataStore> store(new MetadataStore(path, fd, {}, {}));
  Result<std::uint64_t> size_bytes = device_size(fd);
  if (!size_bytes.ok()) return Error{path + ": " + size_bytes.error().message};
  if (size_bytes.value() < md::device_bytes_min) {
    return Error{path + ": " + std::to_string(size_bytes.value()) +
                 " bytes is too small to hold DRBD internal metadata (minimum " +
                 std::to_string(md::device_bytes_min) + ")"};
  }
  const std::uint64_t md_offset_bytes =
      (size_bytes.value() - md::block_size_bytes) & ~std::uint64_t{md::block_size_bytes - 1};
  std::array<std::uint8_t, md::block_size_bytes> block{};
  if (Status status = store->read_at(block, md_offset_bytes, "the superblock"); !status.ok()) {
    return status.error();
  }
  md::Layout layout;
  Result<md::Superblock> superblock =
      validate_superblock(path, block, size_bytes.value(), md_offset_bytes, layout);
  if (!superblock.ok()) return Error{path + ": " + superblock.error().message};
  DITTO_ASSERT(layout.md_offset_bytes == md_offset_bytes);
  store->superblock_ = superblock.value();
  store->layout_ = layout;
  return store;
}

Status MetadataStore::read_at(std::span<std::uint8_t> out, std::uint64_t offset_bytes,
                              const char* what) {
  Status status = read_exact_at(fd_, out, offset_bytes);
  if (!status.ok()) return Error{path_ + ": reading " + what + " " + status.error().message};
  return status;
}

Status MetadataStore::write_at(std::span<const std::uint8_t> data, std::uint64_t offset_bytes,
                               const char* what) {
  DITTO_ASSERT(offset_bytes >= data_size_bytes());  // metadata writes never touch the data area
  Status status = write_exact_at(fd_, data, offset_bytes);
  if (!status.ok()) return Error{path_ + ": writing " + what + " " + status.error().message};
  return status;
}

Status MetadataStore::sync(const char* what) {
  if (::fdatasync(fd_) != 0) {
    return Error{path_ + ": making " + what + " durable (fdatasync): " + std::strerror(errno)};
  }
  return Status::success();
}

Status MetadataStore::write_superblock(const md::Superblock& superblock) {
  // The layout is the device's; the rules above never move it.
  DITTO_ASSERT(superblock.md_size_sectors == superblock_.md_size_sectors);
  DITTO_ASSERT(superblock.max_peers == superblock_.max_peers);
  DITTO_ASSERT(superblock.bm_offset_sectors == superblock_.bm_offset_sectors);
  const auto block = md::encode_superblock(superblock);
  if (Status status = write_at(block, layout_.md_offset_bytes, "the superblock"); !status.ok()) {
    return status;
  }
  if (Status status = sync("the superblock"); !status.ok()) return status;
  superblock_ = superblock;
  return Status::success();
}

Result<std::vector<md::AlTransaction>> MetadataStore::read_activity_log() {
  const std::uint32_t blocks = superblock_.al_stripes * superblock_.al_stripe_size_4k;
  std::vector<std::uint8_t> area(std::size_t{blocks} * md::block_size_bytes);
  if (Status status = read_at(area, layout_.al_offset_bytes, "the activity log"); !status.ok()) {
    return status.error();
  }
  std::vector<md::AlTransaction> transactions;
  for (std::uint32_t block = 0; block < blocks; ++block) {
    auto decoded = md::decode_al_transaction(
        std::span{area}.subspan(std::size_t{block} * md::block_size_bytes, md::block_size_bytes));
    if (decoded.ok()) transactions.push_back(decoded.value());
  }
  return transactions;
}

Status MetadataStore::initialize_activity_log() {
  const auto block = md::encode_al_transaction(md::initialized_al_transaction());
  const std::uint32_t blocks = superblock_.al_stripes * superblock_.al_stripe_size_4k;
  for (std::uint32_t index = 0; index < blocks; ++index) {
    const std::uint64_t offset = layout_.al_offset_bytes + std::uint64_t{index} * block.size();
    if (Status status = write_at(block, offset, "the activity log"); !status.ok()) return status;
  }
  return sync("the activity log");
}

std::size_t MetadataStore::bitmap_words_per_slot() const {
  const std::uint64_t sectors_per_bit = superblock_.bm_bytes_per_bit / md::sector_bytes;
  const std::uint64_t bits = (layout_.usable_sectors + sectors_per_bit - 1) / sectors_per_bit;
  return static_cast<std::size_t>((bits + 31) / 32);
}

Result<std::uint64_t> MetadataStore::current_device_bytes() const {
  Result<std::uint64_t> device_bytes = device_size(fd_);
  if (!device_bytes.ok()) return Error{path_ + ": " + device_bytes.error().message};
  return device_bytes;
}

Result<std::uint64_t> MetadataStore::move_to_device_end() {
  Result<std::uint64_t> device_bytes = device_size(fd_);
  if (!device_bytes.ok()) return Error{path_ + ": " + device_bytes.error().message};
  const std::uint64_t old_bytes = layout_.device_bytes;
  const md::LayoutOptions options{superblock_.max_peers, superblock_.al_stripes,
                                  superblock_.al_stripe_size_4k, superblock_.bm_bytes_per_bit};
  Result<md::Layout> grown = md::internal_layout(std::max(device_bytes.value(), old_bytes), options);
  if (!grown.ok()) return Error{path_ + ": " + grown.error().message};
  const md::Layout& layout = grown.value();
  // The new metadata must lie wholly above the old device end, so the old copy stays complete.
  if (device_bytes.value() <= old_bytes || layout.bm_offset_bytes < old_bytes) {
    return Error{path_ + ": the device has " + std::to_string(device_bytes.value()) +
                 " bytes, its metadata was placed for " + std::to_string(old_bytes) +
                 "; to grow, enlarge it by more than its metadata area (" +
                 std::to_string(layout.device_bytes - layout.bm_offset_bytes) +
                 " bytes) first; shrinking is not supported"};
  }
  std::vector<std::uint8_t> bitmap(layout.bitmap_bytes, 0);
  std::vector<std::uint8_t> activity_log(std::size_t{layout_.al_size_sectors} * md::sector_bytes);
  DITTO_ASSERT(layout.bitmap_bytes >= layout_.bitmap_bytes);
  DITTO_ASSERT(layout.al_size_sectors == layout_.al_size_sectors);
  Status status = read_at(std::span(bitmap).first(layout_.bitmap_bytes), layout_.bm_offset_bytes,
                          "the bitmap");
  if (status.ok()) status = read_at(activity_log, layout_.al_offset_bytes, "the activity log");
  if (status.ok()) status = write_at(bitmap, layout.bm_offset_bytes, "the grown bitmap");
  if (status.ok()) {
    status = write_at(activity_log, layout.al_offset_bytes, "the grown activity log");
  }
  if (status.ok()) status = sync("the grown bitmap and activity log");
  md::Superblock superblock = superblock_;
  superblock.md_size_sectors = layout.md_size_sectors;
  superblock.al_offset_sectors = layout.al_offset_sectors;
  superblock.bm_offset_sectors = layout.bm_offset_sectors;
  if (status.ok()) {
    status = write_at(md::encode_superblock(superblock), layout.md_offset_bytes,
                      "the grown superblock");
  }
  if (status.ok()) status = sync("the grown superblock");
  if (!status.ok()) return status.error();
  layout_ = layout;
  superblock_ = superblock;
  return data_size_bytes();
}

Result<std::vector<std::uint32_t>> MetadataStore::read_bitmap_slot(std::uint32_t slot) {
  DITTO_ASSERT(slot < superblock_.max_peers);
  std::vector<std::uint8_t> area(layout_.bitmap_bytes);
  if (Status status = read_at(area, layout_.bm_offset_bytes, "the bitmap"); !status.ok()) {
    return status.error();
  }
  return md::unpack_bitmap_slot(area, superblock_.max_peers, slot, bitmap_words_per_slot());
}

Status MetadataStore::write_bitmap_slot(std::uint32_t slot, std::span<const std::uint32_t> words) {
  DITTO_ASSERT(slot < superblock_.max_peers);
  DITTO_ASSERT(words.size() == bitmap_words_per_slot());
  std::vector<std::uint8_t> area(layout_.bitmap_bytes);
  if (Status status = read_at(area, layout_.bm_offset_bytes, "the bitmap"); !status.ok()) {
    return status;
  }
  md::pack_bitmap_slot(words, superblock_.max_peers, slot, area);
  if (Status status = write_at(area, layout_.bm_offset_bytes, "the bitmap"); !status.ok()) {
    return status;
  }
  return sync("the bitmap");
}

Status MetadataStore::write_activity_log_block(std::uint64_t block,
                                               std::span<const std::uint8_t> bytes) {
  const std::uint64_t blocks =
      std::uint64_t{superblock_.al_stripes} * superblock_.al_stripe_size_4k;
  if (bytes.size() != md::block_size_bytes || block >= blocks) {
    return Error{path_ + ": activity-log block " + std::to_string(block) + " of " +
                 std::to_string(bytes.size()) + " bytes is outside the ring of " +
                 std::to_string(blocks) + " blocks"};
  }
  const std::uint64_t offset = layout_.al_offset_bytes + block * md::block_size_bytes;
  if (Status status = write_at(bytes, offset, "the activity log"); !status.ok()) return status;
  return sync("the activity log");
}

Status MetadataStore::write_bitmap_page(std::uint64_t page, std::span<const std::uint8_t> bytes) {
  if (bytes.size() != md::block_size_bytes ||
      (page + 1) * md::block_size_bytes > layout_.bitmap_bytes) {
    return Error{path_ + ": bitmap page " + std::to_string(page) + " of " +
                 std::to_string(bytes.size()) + " bytes is outside the bitmap area of " +
                 std::to_string(layout_.bitmap_bytes) + " bytes"};
  }
  const std::uint64_t offset = layout_.bm_offset_bytes + page * md::block_size_bytes;
  if (Status status = write_at(bytes, offset, "the bitmap"); !status.ok()) return status;
  return sync("the bitmap");
}

}  // namespace ditto::datapath
