// Node: the activity log and the persisted bitmaps (drbd9-semantics.md §4.1, §4.2, §4.3).
//
// With NodeConfig::al_updates, a client write on a node with an UpToDate local disk is admitted
// (submitted locally and sent to the peers) only once every 4 MiB extent it touches is in the
// activity log on disk: a write to an extent not in the log takes a slot (core/activity_log.h)
// and waits, with every write behind it (FIFO, so admission order is arrival order), until the
// transaction naming the extent was written (a MetadataWrite of the AL ring). An extent stays
// referenced until each write into it completed and every peer it was sent to acknowledged its
// barrier or was lost (its bits are set by then); an unreferenced extent may be evicted for
// another, and the bitmap pages covering it are written before the transaction that reuses its
// slot. So on disk, bitmap ∪ activity log ⊇ every block that may differ from a peer.
//
// Every bitmap write-back is preceded by a DiskFlush of the data: a bit is cleared only after a
// write that made the block equal, and a flush makes the local writes of an extent durable
// before the extent leaves the log. Resync writes go without FUA: the runs written since the
// last flush was issued stay set in every page encoded before the next flush completes. All bitmap
// pages are written back when the node becomes Primary (bits set while it was Secondary are not
// covered by its log), after a bitmap exchange while Primary, on Down, and at start after apply-al
// (the marked extents must be on disk before new transactions overwrite the ring). One metadata
// operation is in flight at a time, in queue order.
//
// Secondaries keep no activity log here (DRBD 9 logs peer writes too): a Secondary that crashed
// restarts with every block out of sync (the driver passes no bitmaps), as before.
#include <algorithm>
#include <bit>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

constexpr std::uint64_t bits_per_extent = ActivityLog::extent_sectors / Bitmap::sectors_per_bit;
constexpr std::uint64_t words_per_page = metadata::block_size_bytes / 4;

}  // namespace

bool Node::activity_log_active() const {
  return activity_log_.has_value() && disk_state_ == DiskState::up_to_date;
}

std::uint32_t Node::bitmap_slot_count() const {
  if (config_.bitmap_max_peers != 0) return config_.bitmap_max_peers;
  return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(config_.peers.size()));
}

std::uint64_t Node::bitmap_page_count() const {
  const std::uint64_t bits = config_.volume_size_bytes / Bitmap::bytes_per_bit +
                             (config_.volume_size_bytes % Bitmap::bytes_per_bit != 0 ? 1 : 0);
  const std::uint64_t words = (bits + 31) / 32 * bitmap_slot_count();
  return std::max<std::uint64_t>(1, (words + words_per_page - 1) / words_per_page);
}

// Page `page` of the slot-interleaved on-disk bitmap: word w of slot s is word
// w * slots + s of the area, 32-bit little-endian (metadata::pack_bitmap_slot's layout).
std::vector<std::uint8_t> Node::encode_bitmap_page(std::uint64_t page) const {
  std::vector<std::uint8_t> bytes(metadata::block_size_bytes, 0);
  const std::uint32_t slots = bitmap_slot_count();
  std::vector<const Bitmap*> bitmap_of_slot(slots, nullptr);
  for (std::size_t index = 0; index < config_.peers.size(); ++index) {
    const PeerConfig& peer = config_.peers[index];
    const auto named = config_.bitmap_slots.find(peer.node_id.value);
    const std::uint32_t slot =
        named != config_.bitmap_slots.end() ? named->second : static_cast<std::uint32_t>(index);
    if (slot < slots) bitmap_of_slot[slot] = &*peers_[peer.node_id.value].bitmap;
  }
  for (std::uint64_t index = 0; index < words_per_page; ++index) {
    const std::uint64_t global = page * words_per_page + index;
    const Bitmap* bitmap = bitmap_of_slot[global % slots];
    if (bitmap == nullptr) continue;
    const std::uint32_t value = bitmap->word(global / slots) | unflushed_word(global / slots);
    for (std::uint32_t byte = 0; byte < 4; ++byte) {
      bytes[index * 4 + byte] = static_cast<std::uint8_t>(value >> (8 * byte));
    }
  }
  return bytes;
}

// The bits of word `word` (of any slot) that resync runs written without FUA cover while no
// flush has: on disk they stay out of sync until one has (node_resync_runs.cpp).
std::uint32_t Node::unflushed_word(std::uint64_t word) const {
  std::uint32_t value = 0;
  for (const auto* runs : {&resync_unflushed_, &resync_flushing_}) {
    for (const UnflushedRun& run : *runs) {
      const std::uint64_t first = std::max(run.block, word * 32);
      const std::uint64_t end = std::min(run.block + run.blocks, word * 32 + 32);
      for (std::uint64_t bit = first; bit < end; ++bit) value |= 1u << (bit % 32);
    }
  }
  return value;
}

void Node::queue_bitmap_pages(std::uint64_t first_bit, std::uint64_t bit_count) {
  DITTO_ASSERT(bit_count > 0);
  const std::uint32_t slots = bitmap_slot_count();
  const std::uint64_t first_word = first_bit / 32 * slots;
  const std::uint64_t last_word = (first_bit + bit_count - 1) / 32 * slots + slots - 1;
  const std::uint64_t last_page = std::min(last_word / words_per_page, bitmap_page_count() - 1);
  if (metadata_queue_.empty() || metadata_queue_.back().kind != MetadataJob::Kind::flush) {
    metadata_queue_.push_back(MetadataJob{MetadataJob::Kind::flush, 0, 0, {}});
  }
  for (std::uint64_t page = first_word / words_per_page; page <= last_page; ++page) {
    const bool queued = std::any_of(metadata_queue_.begin(), metadata_queue_.end(), [&](auto& job) {
      return job.kind == MetadataJob::Kind::bitmap_page && job.page == page;
    });
    if (!queued)
      metadata_queue_.push_back(MetadataJob{MetadataJob::Kind::bitmap_page, page, 0, {}});
  }
}

void Node::queue_all_bitmap_pages() {
  if (!activity_log_) return;
  const std::uint64_t bits_per_page = words_per_page * 32 / bitmap_slot_count();
  queue_bitmap_pages(0, bitmap_page_count() * std::max<std::uint64_t>(bits_per_page, 1));
}

void Node::issue_metadata_write() {
  if (metadata_in_flight_ || metadata_queue_.empty()) return;
  MetadataJob job = std::move(metadata_queue_.front());
  metadata_queue_.pop_front();
  const IoId io = next_io();
  switch (job.kind) {
    case MetadataJob::Kind::flush:
      actions_.push_back(DiskFlush{io});
      resync_flush_started();
      break;
    case MetadataJob::Kind::bitmap_page:
      actions_.push_back(
          MetadataWrite{io, MetadataArea::bitmap, job.page, encode_bitmap_page(job.page)});
      break;
    case MetadataJob::Kind::al_transaction: {
      const std::uint32_t block =
          metadata::al_block_index(job.tr_number, config_.al_stripes, config_.al_stripe_size_4k);
      actions_.push_back(
          MetadataWrite{io, MetadataArea::activity_log, block, std::move(job.bytes)});
      break;
    }
  }
  metadata_in_flight_ = std::pair{io, job.kind};
}

bool Node::on_metadata_completed(IoId io, IoStatus status) {
  if (!metadata_in_flight_ || metadata_in_flight_->first != io) return false;
  const MetadataJob::Kind kind = metadata_in_flight_->second;
  metadata_in_flight_.reset();
  if (status != IoStatus::ok) {
    // A metadata write that fails takes the disk away, like a data write (on-io-error detach).
    if (!local_disk_detached()) detach_local_disk();
  } else if (kind == MetadataJob::Kind::al_transaction && activity_log_) {
    activity_log_->transaction_written();
  }
  pump_activity_log();
  if (status == IoStatus::ok && kind == MetadataJob::Kind::flush) resync_flush_done();
  return true;
}

// The disk left: its log goes with it (writes now go to the peers only, §4.2 does not apply).
void Node::reset_activity_log() {
  activity_log_.reset();
  al_holds_.clear();
  metadata_queue_.clear();
  for (AlWaitingWrite& waiting : al_waiting_) waiting.referenced = false;
}

void Node::admit_through_activity_log(const HeldWrite& write) {
  al_waiting_.push_back(AlWaitingWrite{write, false});
  statistics_.upper_pending += 1;
  pump_activity_log();
}

void Node::pump_activity_log() {
  if (writes_wait_for_bitmap_) {
    const bool page_pending =
        (metadata_in_flight_ && metadata_in_flight_->second == MetadataJob::Kind::bitmap_page) ||
        std::any_of(metadata_queue_.begin(), metadata_queue_.end(), [](const MetadataJob& job) {
          return job.kind == MetadataJob::Kind::bitmap_page;
        });
    writes_wait_for_bitmap_ = page_pending && activity_log_active();
  }
  // Take the references of every waiting write in order (so one transaction names the
  // extents of many), stopping at the first that cannot get its slots now.
  if (activity_log_active() && !writes_wait_for_bitmap_) {
    for (AlWaitingWrite& waiting : al_waiting_) {
      if (waiting.referenced) continue;
      const ActivityLog::BeginResult begin = activity_log_->begin_io(
          waiting.write.sector.value, waiting.write.length_bytes / sector_size_bytes);
      if (begin.status == ActivityLog::BeginStatus::busy) break;
      for (const ActivityLog::Update& update : begin.updates) {
        if (update.evicted_extent == metadata::al_free_extent) continue;
        queue_bitmap_pages(std::uint64_t{update.evicted_extent} * bits_per_extent, bits_per_extent);
      }
      waiting.referenced = true;
    }
  }
  while (!al_waiting_.empty() && !writes_wait_for_bitmap_) {
    const AlWaitingWrite& front = al_waiting_.front();
    const std::uint64_t first = front.write.sector.value;
    const std::uint64_t count = front.write.length_bytes / sector_size_bytes;
    if (activity_log_active()) {
      if (!front.referenced || !activity_log_->range_committed(first, count)) break;
    }
    const AlWaitingWrite entry = front;
    al_waiting_.pop_front();
    DITTO_ASSERT(statistics_.upper_pending > 0);
    statistics_.upper_pending -= 1;
    admit_after_activity_log(entry.write, entry.referenced && activity_log_.has_value());
  }
  if (activity_log_ && activity_log_->has_pending_updates() &&
      !activity_log_->transaction_in_flight()) {
    const metadata::AlTransaction transaction = activity_log_->take_transaction();
    const auto bytes = metadata::encode_al_transaction(transaction);
    metadata_queue_.push_back(MetadataJob{
        MetadataJob::Kind::al_transaction, 0, transaction.tr_number, {bytes.begin(), bytes.end()}});
  }
  issue_metadata_write();
}

// A write whose extents are committed: the checks of on_client_write again, since the role or
// quorum may have changed while it waited.
void Node::admit_after_activity_log(const HeldWrite& write, bool referenced) {
  if (role_ == Role::primary && have_quorum_) {
    return admit_write_now(write.request, write.sector, write.length_bytes, write.payload,
                           write.flags, referenced);
  }
  // Not admitted after all: nothing of it reached a disk, its extents are free again (a
  // suspended write goes through the log again when it resumes).
  if (referenced) {
    activity_log_->complete_io(write.sector.value, write.length_bytes / sector_size_bytes);
  }
  if (role_ == Role::primary && quorum_suspends_io()) {
    return suspend_write_for_quorum(write.request, write.sector, write.length_bytes, write.payload,
                                    write.flags);
  }
  const ClientStatus status =
      role_ != Role::primary ? ClientStatus::not_primary : ClientStatus::io_error;
  actions_.push_back(CompleteClient{write.request, status, std::nullopt, std::nullopt});
  actions_.push_back(ReleasePayload{write.payload});
}

void Node::hold_extents(std::uint64_t sequence, std::uint32_t peers_sent) {
  const Request& entry = requests_.at(sequence);
  al_holds_[sequence] =
      AlHold{WriteRange{entry.sector, entry.length_bytes, sequence}, 1 + peers_sent};
}

// One of the things a write's extents wait for happened (the request completed, or a peer
// acknowledged its barrier or was lost).
void Node::settle_write(std::uint64_t sequence) {
  const auto found = al_holds_.find(sequence);
  if (found == al_holds_.end()) return;
  DITTO_ASSERT(found->second.outstanding > 0);
  if (--found->second.outstanding > 0) return;
  const WriteRange range = found->second.range;
  al_holds_.erase(found);
  DITTO_ASSERT(activity_log_.has_value());
  activity_log_->complete_io(range.sector.value, range.length_bytes / sector_size_bytes);
}

// At start: the persisted bitmaps, apply-al, and the activity log itself.
void Node::apply_initial_metadata() {
  for (const PeerConfig& peer_config : config_.peers) {
    Bitmap& bitmap = *peers_[peer_config.node_id.value].bitmap;
    const auto words = config_.initial_bitmap_words.find(peer_config.node_id.value);
    if (words != config_.initial_bitmap_words.end()) {
      bitmap.import_words(words->second);
    } else if (config_.initial_disk_state != DiskState::up_to_date) {
      // A disk that starts below UpToDate without its bitmaps cannot tell which of its blocks
      // are stale: everything is out of sync toward the peer until a resync.
      bitmap.set_all();
    }
    for (const std::uint32_t extent : config_.initial_hot_extents) {
      const std::uint64_t first_bit = std::uint64_t{extent} * bits_per_extent;
      if (first_bit >= bitmap.bit_count()) continue;  // untrusted: beyond this volume
      bitmap.set_bits(first_bit, std::min(bits_per_extent, bitmap.bit_count() - first_bit));
    }
  }
  if (!config_.al_updates || config_.intentional_diskless || config_.peers.empty()) return;
  DITTO_ASSERT(config_.al_extents >= ActivityLog::node_al_extents_min &&
               config_.al_extents <= ActivityLog::al_extents_max);
  DITTO_ASSERT(config_.al_stripes >= 1 && config_.al_stripe_size_4k >= 1);
  activity_log_.emplace(config_.al_extents, config_.al_first_transaction_number);
  // The extents apply-al marked must reach the on-disk bitmap before a new transaction can
  // overwrite the ring that names them.
  if (!config_.initial_hot_extents.empty()) queue_all_bitmap_pages();
  issue_metadata_write();
}

std::vector<std::uint32_t> Node::hot_extents() const {
  return activity_log_ ? activity_log_->hot_extents() : std::vector<std::uint32_t>{};
}

bool Node::metadata_writes_pending() const {
  return metadata_in_flight_.has_value() || !metadata_queue_.empty();
}

}  // namespace ditto::core
