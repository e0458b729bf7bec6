// dittoadm create-md / dump-md: DRBD v09 internal metadata on a disk or file.
#include "datapath/control_metadata.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <span>
#include <vector>

#include "core/metadata.h"
#include "datapath/metadata_store.h"

namespace ditto::datapath {
namespace {

namespace md = ditto::metadata;

constexpr int exit_ok = 0;
constexpr int exit_failed = 10;
constexpr int exit_refused = 40;

// Closes the descriptor when the command returns.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int fail(const char* command, const std::string& disk, const std::string& message,
         int status = exit_failed) {
  std::fprintf(stderr, "dittoadm %s: %s: %s\n", command, disk.c_str(), message.c_str());
  return status;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Writes the initialized activity log, a zeroed bitmap, then the superblock (last, so an
// interrupted create-md leaves no valid superblock describing a half-written area).
int write_metadata(int fd, const md::Superblock& superblock, const md::Layout& layout,
                   const std::string& disk) {
  const auto al_block = md::encode_al_transaction(md::initialized_al_transaction());
  const std::uint32_t al_blocks = superblock.al_stripes * superblock.al_stripe_size_4k;
  for (std::uint32_t block = 0; block < al_blocks; ++block) {
    if (Status status =
            write_exact_at(fd, al_block, layout.al_offset_bytes + block * md::block_size_bytes);
        !status.ok()) {
      return fail("create-md", disk, "writing the activity log " + status.error().message);
    }
  }
  const std::vector<std::uint8_t> zeros(1 << 20, 0);
  for (std::uint64_t done = 0; done < layout.bitmap_bytes;) {
    const std::uint64_t chunk = std::min<std::uint64_t>(zeros.size(), layout.bitmap_bytes - done);
    if (Status status =
            write_exact_at(fd, std::span{zeros}.first(chunk), layout.bm_offset_bytes + done);
        !status.ok()) {
      return fail("create-md", disk, "writing the bitmap " + status.error().message);
    }
    done += chunk;
  }
  const auto block = md::encode_superblock(superblock);
  if (Status status = write_exact_at(fd, block, layout.md_offset_bytes); !status.ok()) {
    return fail("create-md", disk, "writing the superblock " + status.error().message);
  }
  if (::fsync(fd) != 0) return fail("create-md", disk, errno_text("fsync"));
  return exit_ok;
}

// Refuses to overwrite valid metadata, and metadata that carries the v09 magic but cannot be
// decoded (damaged, or a layout we do not understand), unless forced.
int check_existing(int fd, const md::Layout& layout, const CreateMetadataOptions& options) {
  std::array<std::uint8_t, md::block_size_bytes> block{};
  if (Status status = read_exact_at(fd, block, layout.md_offset_bytes); !status.ok()) {
    if (options.force) return exit_ok;
    return fail(
        "create-md", options.disk,
        "cannot read the existing metadata area " + status.error().message +
            "; refusing to write (use --force)",
        exit_refused);
  }
  const bool has_magic =
      block[0x3c] == 0x83 && block[0x3d] == 0x74 && block[0x3e] == 0x02 && block[0x3f] == 0x6d;
  if (!has_magic || options.force) return exit_ok;
  Result<md::Superblock> existing = md::decode_superblock(block);
  if (!existing) {
    return fail("create-md", options.disk,
                "holds damaged DRBD v09 metadata (" + existing.error().message +
                    "); refusing to overwrite it (use --force)",
                exit_refused);
  }
  return fail("create-md", options.disk,
              "already holds valid DRBD v09 metadata; refusing to overwrite it (use --force)",
              exit_refused);
}

}  // namespace

int create_metadata(const CreateMetadataOptions& options) {
  const Descriptor fd{::open(options.disk.c_str(), O_RDWR | O_CLOEXEC)};
  if (fd.get() < 0) return fail("create-md", options.disk, errno_text("open"));
  const Result<std::uint64_t> device_bytes = device_size(fd.get());
  if (!device_bytes.ok()) return fail("create-md", options.disk, device_bytes.error().message);
  const std::uint64_t size_bytes = device_bytes.value();
  Result<md::Superblock> superblock =
      md::initial_superblock(size_bytes, options.max_peers, options.node_id);
  if (!superblock) return fail("create-md", options.disk, superblock.error().message);
  Result<md::Layout> layout = md::check_superblock_layout(superblock.value(), size_bytes);
  if (!layout) return fail("create-md", options.disk, layout.error().message);
  if (const int status = check_existing(fd.get(), layout.value(), options); status != exit_ok) {
    return status;
  }
  if (const int status = write_metadata(fd.get(), superblock.value(), layout.value(), options.disk);
      status != exit_ok) {
    return status;
  }
  std::printf("New drbd meta data block successfully created.\n");
  // What dittod will export: everything below the bitmap.
  const md::Layout& created = layout.value();
  std::printf("data area: %llu bytes (%llu sectors); metadata: %llu bytes at the end of %s\n",
              static_cast<unsigned long long>(created.usable_sectors * md::sector_bytes),
              static_cast<unsigned long long>(created.usable_sectors),
              static_cast<unsigned long long>(size_bytes - created.bm_offset_bytes),
              options.disk.c_str());
  return exit_ok;
}

int dump_metadata(const std::string& disk, bool force, const std::string& command_line) {
  const Descriptor fd{::open(disk.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0) return fail("dump-md", disk, errno_text("open"));
  const Result<std::uint64_t> device_bytes = device_size(fd.get());
  if (!device_bytes.ok()) return fail("dump-md", disk, device_bytes.error().message);
  const std::uint64_t size_bytes = device_bytes.value();
  if (size_bytes < md::device_bytes_min) {
    return fail(
        "dump-md", disk,
        "only " + std::to_string(size_bytes) + " bytes, too small to hold internal metadata");
  }
  const std::uint64_t md_offset = (size_bytes - md::block_size_bytes) & ~std::uint64_t{4095};
  std::array<std::uint8_t, md::block_size_bytes> block{};
  if (Status status = read_exact_at(fd.get(), block, md_offset); !status.ok()) {
    return fail("dump-md", disk, "reading the superblock " + status.error().message);
  }
  Result<md::Superblock> superblock = md::decode_superblock(block);
  if (!superblock) return fail("dump-md", disk, superblock.error().message);
  Result<md::Layout> layout = md::check_superblock_layout(superblock.value(), size_bytes);
  if (!layout) return fail("dump-md", disk, layout.error().message);
  if ((superblock.value().flags & md::md_flag::al_clean) == 0 && !force) {
    return fail("dump-md", disk,
                "metadata is unclean (flag AL_CLEAN not set): apply the activity log first, or "
                "use --force");
  }
  std::vector<std::uint8_t> bitmap(md::dump_bitmap_bytes(superblock.value(), layout.value()));
  if (Status status = read_exact_at(fd.get(), bitmap, layout.value().bm_offset_bytes);
      !status.ok()) {
    return fail("dump-md", disk, "reading the bitmap " + status.error().message);
  }
  char time_text[64] = "";
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  if (::localtime_r(&now, &local) != nullptr) {
    std::strftime(time_text, sizeof(time_text), "%F %T %z [%s]", &local);
  }
  char host[256] = "";
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::printf("# DRBD meta data dump\n# %s\n# %s> %s\n#\n\n", time_text, host,
              command_line.c_str());
  const std::string body = md::format_dump_md(superblock.value(), layout.value(), bitmap);
  std::fwrite(body.data(), 1, body.size(), stdout);
  return exit_ok;
}

void register_metadata_commands(CLI::App& app, int& exit_status) {
  auto options = std::make_shared<CreateMetadataOptions>();
  CLI::App* create = app.add_subcommand(
      "create-md", "write fresh DRBD v09 internal metadata at the end of DISK (like drbdmeta)");
  create->add_option("DISK", options->disk, "backing disk or file")->required();
  create->add_option("--max-peers", options->max_peers, "bitmap slots (1..31)")
      ->required()
      ->check(CLI::Range(1, 31));
  create->add_option("--node-id", options->node_id, "node id to record (0..31)")
      ->check(CLI::Range(0, 31));
  create->add_flag("--force", options->force,
                   "overwrite existing or unreadable metadata without asking");
  create->callback([options, &exit_status] { exit_status = create_metadata(*options); });

  auto dump_disk = std::make_shared<std::string>();
  auto dump_force = std::make_shared<bool>(false);
  CLI::App* dump = app.add_subcommand(
      "dump-md", "print the DRBD v09 metadata of DISK in drbdmeta dump-md syntax");
  dump->add_option("DISK", *dump_disk, "backing disk or file")->required();
  dump->add_flag("--force", *dump_force, "dump even if the activity log is unclean");
  dump->callback([dump_disk, dump_force, &exit_status] {
    exit_status = dump_metadata(*dump_disk, *dump_force, "dittoadm dump-md " + *dump_disk);
  });
}

}  // namespace ditto::datapath
