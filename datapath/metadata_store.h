// DRBD v09 internal metadata on a backing device (drbd9-semantics.md §12): the superblock, the
// activity-log ring and the interleaved bitmap at the end of the device, read and written through
// core's codec (core/metadata.h) with plain pread/pwrite plus fdatasync. dittod uses it when it
// attaches a disk and when it shuts down cleanly — never on the data I/O path, which goes through
// the io_uring disk and stays below the data area (data_size_bytes()).
//
// Two layers:
// - MetadataStore: the device I/O (open + validate, read/write superblock, activity log, bitmap
//   slots). Knows nothing about nodes or roles, so UUIDs, flags and bitmap words from the core's
//   generation state go through the same calls.
// - plan_attach / clean_shutdown_superblock: pure rules for what attach checks and writes, and
//   what a clean shutdown writes back (the flags DRBD keeps, §4.3 and §12.4).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/generation.h"
#include "core/metadata.h"
#include "core/result.h"
#include "core/types.h"

namespace ditto::datapath {

// Whole-range pread/pwrite on a backing device, retrying short transfers and EINTR; the error
// names the byte offset and the cause ("at byte offset N: ..."). Metadata I/O only (attach,
// shutdown, dittoadm create-md/dump-md), never the data path.
[[nodiscard]] Status read_exact_at(int fd, std::span<std::uint8_t> out, std::uint64_t offset_bytes);
[[nodiscard]] Status write_exact_at(int fd, std::span<const std::uint8_t> data,
                                    std::uint64_t offset_bytes);
// Size of a regular file or block device (lseek to the end works for both).
[[nodiscard]] Result<std::uint64_t> device_size(int fd);

// Bytes a backing device needs so that its data area (below internal metadata) is exactly
// `data_bytes` (a multiple of 4096). What `dittoadm create-md` then reports as the data area.
Result<std::uint64_t> backing_bytes_for_data(std::uint64_t data_bytes,
                                             const metadata::LayoutOptions& options);

class MetadataStore {
 public:
  // Opens `path` read-write and reads the superblock in its last 4 KiB block: the magic must be
  // DRBD v09's, every field must decode (core's checks), the offsets and sizes must fit this
  // device, and la-size-sect must fit the data area. Errors start with the path and name the
  // field; nothing is written.
  static Result<std::unique_ptr<MetadataStore>> open(const std::string& path);
  ~MetadataStore();
  MetadataStore(const MetadataStore&) = delete;
  MetadataStore& operator=(const MetadataStore&) = delete;

  const std::string& path() const { return path_; }
  // The superblock as last read or successfully written.
  const metadata::Superblock& superblock() const { return superblock_; }
  const metadata::Layout& layout() const { return layout_; }
  // Everything below the bitmap: the only bytes data I/O may touch.
  std::uint64_t data_size_bytes() const { return layout_.usable_sectors * metadata::sector_bytes; }

  // Encodes `superblock`, writes it over the superblock block and makes it durable (fdatasync).
  // Its layout fields must be this device's (they are never changed here). On success it is
  // superblock().
  [[nodiscard]] Status write_superblock(const metadata::Superblock& superblock);

  // Every block of the activity-log ring in ring order; a block that does not decode (bad
  // magic or checksum: never written, or torn) is absent, as drbdmeta apply-al skips it.
  [[nodiscard]] Result<std::vector<metadata::AlTransaction>> read_activity_log();
  // Writes the "initialized" block into every AL slot (what create-md and apply-al leave).
  [[nodiscard]] Status initialize_activity_log();

  // Words of bitmap slot `slot` (< max-peers) covering the data area: bit n of word w is the
  // 4 KiB-granule (bm-byte-per-bit) number 32*w + n. Read-modify-write of the interleaved area,
  // so the other slots keep their bits.
  std::size_t bitmap_words_per_slot() const;
  [[nodiscard]] Result<std::vector<std::uint32_t>> read_bitmap_slot(std::uint32_t slot);
  [[nodiscard]] Status write_bitmap_slot(std::uint32_t slot, std::span<const std::uint32_t> words);
  // One 4 KiB block of core's encoding, made durable (fdatasync): block `block` of the AL ring,
  // or page `block` of the interleaved bitmap area. Refused beyond the area (names the block).
  [[nodiscard]] Status write_activity_log_block(std::uint64_t block,
                                                std::span<const std::uint8_t> bytes);
  [[nodiscard]] Status write_bitmap_page(std::uint64_t page, std::span<const std::uint8_t> bytes);

  // The first step of an online grow (dittoadm resize, drbd9-semantics.md §12.1): the backing
  // device grew, and the metadata moves to its new end. The bitmap (its words keep their
  // positions: slot-interleaved words only gain a zero tail) and the activity-log ring are
  // written below the new end and made durable, then the superblock with the new layout
  // (md-size-sect, al-offset, bm-offset), made durable last: until then the old copy at the
  // old end is untouched and complete (a crash before leaves it, and the file can be truncated
  // back to its old size). la-size-sect stays: the new size takes effect when the cluster
  // agrees on it. Refused, with nothing written, when the device did not grow or grew by less
  // than the metadata area (the new copy would overwrite the old one before it is complete).
  // Returns the new data area in bytes; on success layout() and superblock() are the new ones.
  [[nodiscard]] Result<std::uint64_t> move_to_device_end();
  // The device's size now (it may have grown since open; layout().device_bytes is the size the
  // metadata is placed for).
  [[nodiscard]] Result<std::uint64_t> current_device_bytes() const;

 private:
  MetadataStore(std::string path, int fd, metadata::Superblock superblock,
                metadata::Layout layout);
  Status read_at(std::span<std::uint8_t> out, std::uint64_t offset_bytes, const char* what);
  Status write_at(std::span<const std::uint8_t> data, std::uint64_t offset_bytes, const char* what);
  Status sync(const char* what);

  std::string path_;
  int fd_ = -1;
  metadata::Superblock superblock_;
  metadata::Layout layout_;
};

// The generation identifiers a superblock holds (§3.1): current, the bitmap UUID of each peer
// slot (indexed by node id, as core's Generations), and the history. And back: writes them into
// a copy of `superblock`, everything else unchanged.
// The record of an unconfirmed generation travels with them (UnconfirmedGeneration; none
// unless given).
Generations generations_of(const metadata::Superblock& superblock);
UnconfirmedGeneration unconfirmed_of(const metadata::Superblock& superblock);
metadata::Superblock with_generations(const metadata::Superblock& superblock,
                                      const Generations& generations,
                                      const UnconfirmedGeneration& unconfirmed = {});

// What attaching writes before the first data I/O, and how the node starts.
struct AttachPlan {
  metadata::Superblock superblock;  // AL_CLEAN cleared, node-id, la-size-sect, peer slots
  bool initialize_activity_log = false;  // an unclean AL with nothing to apply: reset it
  std::string note;                      // for the log; empty when nothing unusual happened
  // core::NodeConfig::initial_disk_state and initial_generations (attach_disk_state below).
  DiskState initial_disk = DiskState::up_to_date;
  Generations initial_generations;
  UnconfirmedGeneration initial_unconfirmed;  // core::NodeConfig::initial_unconfirmed
  std::string disk_reason;  // why initial_disk, for the log
  // The metadata was left by a Primary without a clean shutdown (PRIMARY_IND set, AL_CLEAN
  // clear): CRASHED_PRIMARY is set (§4.3) and stays until the data generation moves on.
  bool crashed_primary = false;
  // apply-al, done by the core (NodeConfig::initial_hot_extents): the extents the activity log
  // names after a stop without a clean shutdown with PRIMARY_IND set; the ring is kept and
  // continues at al_next_transaction (the core writes the marked bitmap pages first).
  std::vector<std::uint32_t> hot_extents;
  std::uint32_t al_next_transaction = 0;
  // Peers (bit = node id) whose on-disk bitmap holds every block out of sync toward them
  // (NodeConfig::initial_bitmap_words): after a clean shutdown (ditto writes every bitmap then),
  // or after a crash of this node as Primary (bitmap ∪ activity log), unless PEER_FULL_SYNC.
  std::uint32_t trusted_bitmaps = 0;
};

// The disk state a node starts with, from the metadata as found on the device (§1.6), with one
// day-0 rule and one rule for what ditto does not persist yet:
// - metadata never attached (node-id -1) whose current UUID is "just created" and that holds no
//   bitmap or history UUID (fresh `create-md`): UpToDate. ditto's day 0 skips the initial sync,
//   as `drbdadm new-current-uuid --clear-bitmap` does: the disks must start identical (zeroed);
// - CONSISTENT clear: Inconsistent;  WAS_UP_TO_DATE clear: Outdated;
// - WAS_UP_TO_DATE after a clean shutdown with every bitmap known empty, or on a resource
//   without peers: UpToDate;
// - WAS_UP_TO_DATE otherwise (AL_CLEAN clear: a crash, the activity log was not kept; or a peer
//   slot with PEER_FULL_SYNC and no bitmap UUID: a bitmap that had bits in the peer's own
//   generation was not written): Outdated. The bitmaps are not persisted yet, so core::Node
//   then marks every block out of sync toward every peer — a superset of what apply-al and the
//   on-disk bitmaps would mark — and the core lets the peer's UpToDate data win.
// (PEER_FULL_SYNC with a bitmap UUID keeps UpToDate: plan_attach turns it into a full sync.)
// (may_be_up_to_date's fencing check is not applied: PEER_FENCING is not maintained yet.)
DiskState attach_disk_state(const metadata::Superblock& on_disk, bool has_peers,
                            std::string& reason);

// Checks the metadata against this node's configuration and says what attach writes:
// - node-id must be -1 (never attached) or `self`; no bitmap slot on `self`'s own peer entry;
//   no two nodes on one bitmap slot;
// - every configured peer gets a bitmap slot (the lowest free index, flag "exists") — refused
//   when max-peers has too few free slots, like DRBD's "Not enough free bitmap slots";
// - metadata left in use (AL_CLEAN clear, dittod or DRBD stopped without a clean shutdown) is
//   accepted when drbdmeta apply-al would have nothing to mark: no Primary was recorded
//   (PRIMARY_IND clear) or the activity log names no extent. Otherwise it is refused: the hot
//   extents would have to be marked out of sync first (`drbdmeta ... apply-al`). Left in use
//   by a Primary (PRIMARY_IND, and the Primary bit in the current UUID): CRASHED_PRIMARY is set;
// - the initial disk state and generations (attach_disk_state); a peer slot with
//   PEER_FULL_SYNC and a bitmap UUID has the UUID moved to the history (the handshake then
//   makes a full sync toward that peer), and PEER_FULL_SYNC is cleared.
// `activity_log` is read_activity_log() of the same device. Errors name the field.
Result<AttachPlan> plan_attach(const metadata::Superblock& on_disk, const metadata::Layout& layout,
                               std::span<const metadata::AlTransaction> activity_log, NodeId self,
                               std::span<const NodeId> peers);

// What the running node looks like, for the flags DRBD maintains (§4.3, §12.4).
struct MetadataState {
  DiskState disk = DiskState::diskless;
  bool primary_known = false;  // this node or a connected peer is Primary
  bool crashed_primary = false;
  bool clean = false;          // a clean shutdown: AL_CLEAN set
  // Peers (bit = node id) whose out-of-sync bitmap has bits that are not written to the
  // device: PEER_FULL_SYNC on their slot, so a restart does not trust an empty bitmap.
  std::uint32_t full_sync_peers = 0;
};

// The superblock for `state`: CONSISTENT when the disk is at least Outdated, WAS_UP_TO_DATE when
// it is better than Outdated, PRIMARY_IND while a Primary is known, CRASHED_PRIMARY, AL_CLEAN,
// PEER_FULL_SYNC per peer. Everything else (UUIDs, layout, peer slots) is passed through.
metadata::Superblock superblock_for_state(const metadata::Superblock& attached,
                                          const MetadataState& state);

// The state at a clean shutdown (kept for its callers: superblock_for_state with clean set).
struct ShutdownState {
  DiskState disk = DiskState::diskless;
  bool primary_known = false;  // this node or a connected peer is Primary
};
metadata::Superblock clean_shutdown_superblock(const metadata::Superblock& attached,
                                               const ShutdownState& state);

}  // namespace ditto::datapath
