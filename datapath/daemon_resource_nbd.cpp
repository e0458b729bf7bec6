// ResourceRunner as the NBD backend: the export, the transmission commands and auto-promote.
//
// Commands (nbd-protocol.md §4.2):
// - READ, WRITE, FLUSH go to the core as client requests. FLUSH is node-wide in the core (it
//   flushes the local disk and every peer behind a barrier), and every connection of this export
//   talks to the same core::Node on one thread with no cache of its own (O_DIRECT): what a FLUSH
//   or FUA reply promises holds for all connections, so CAN_MULTI_CONN is advertised.
// - WRITE_ZEROES runs as replicated writes of zeroes through the core (so every replica stays
//   byte-identical), in chunks of zero_chunk_bytes, at most zero_chunks_in_flight_max at a time
//   per command, every chunk carrying the command's FUA. The range is always written, so
//   NO_HOLE holds. FAST_ZERO is answered ENOTSUP at once, changing nothing (not even the role):
//   zeroing costs as much as writing here, which is exactly what FAST_ZERO asks to be told.
// - TRIM is acknowledged without effect. It is a hint: the contents of a trimmed range are
//   unspecified until rewritten (§4.2), and leaving them alone keeps the replicas identical
//   without the cost of writing zeroes over (often) the whole device, as mkfs's discard would.
//   It is still a write-class command: it needs the Primary role like WRITE.
// - CACHE is acknowledged at once (a prefetch hint; the disk is read with O_DIRECT anyway).
//
// Auto-promote (DRBD 9 `options { auto-promote yes; }`, the default): a connection may open the
// export on a Secondary. Its first write-class command promotes the node (the core's two-phase
// commit); commands that arrive while that promotion is pending are held here and run once it
// succeeds, or fail with EPERM when it is refused (for example because a peer is Primary) — the
// daemon logs the refusal's SS_* reason. When the last connection that wrote closes, a node that
// auto-promote made Primary demotes again. With `auto-promote no`, opening the export needs the
// Primary role (or a promotion in progress), as before.
#include <algorithm>
#include <cstring>

#include "core/assert.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {
namespace {

constexpr std::uint32_t nbd_error_busy = 12;  // ENOMEM: out of buffers, "try again later"
// 1 MiB: the largest block of the registered buffer slab (a fixed buffer, no heap fallback on
// this node or on the peers that receive it), well inside what the core takes (32 MiB).
constexpr std::uint32_t zero_chunk_bytes =
    std::min<std::uint32_t>(AlignedBufferPool::kLargestBlockBytes, wire::payload_size_max_bytes);
// Keeps one huge WRITE_ZEROES (nbdcopy sends up to 128 MiB) from filling the core's bound on
// writes in flight: 64 commands in flight × 4 chunks stay far below it.
constexpr std::uint32_t zero_chunks_in_flight_max = 4;

}  // namespace

std::vector<NbdExportInfo> ResourceRunner::list_exports() {
  NbdExportInfo info;
  info.name = config_.resource.name;
  info.description = "ditto resource " + config_.resource.name + " volume 0";
  info.size_bytes = node_.size_bytes();
  info.supports_flush = true;
  info.supports_fua = true;
  info.supports_trim = true;
  info.supports_write_zeroes = true;
  info.supports_fast_zero = true;  // honoured by answering ENOTSUP (see the top of the file)
  info.supports_cache = true;
  info.multi_conn = true;
  return {info};
}

Result<std::uint64_t> ResourceRunner::open_export(std::string_view name) {
  if (name != config_.resource.name && !name.empty()) {
    return Error{"no export named '" + std::string(name) + "'; this node exports '" +
                 config_.resource.name + "'"};
  }
  // A diskless client that has not learned its size from a diskful peer has nothing to export
  // yet: NBD has no way to announce a size later, so the client is told to come back
  // (NBD_REP_ERR_POLICY with this text for OPT_GO; EXPORT_NAME closes the connection).
  if (node_.size_bytes() == 0) {
    return Error{"resource " + config_.resource.name + " on node " + config_.self.name +
                 " does not know its size yet: it is a diskless client and no diskful peer "
                 "has connected; retry once one has (dittoadm status " +
                 config_.resource.name + ")"};
  }
  // Without auto-promote a pending promotion (a two-phase commit in flight) may open: the core
  // holds its writes until the outcome, as DRBD holds the opener.
  if (!auto_promote_ && node_.role() != Role::primary && !node_.promotion_pending()) {
    return Error{"resource " + config_.resource.name + " is " +
                 std::string(to_string(node_.role())) + " on node " + config_.self.name +
                 " and auto-promote is off; promote it first (dittoadm primary " +
                 config_.resource.name + ")"};
  }
  const std::uint64_t session = next_session_++;
  session_writes_.emplace(session, false);
  return session;
}

void ResourceRunner::close_export(std::uint64_t session) {
  const auto found = session_writes_.find(session);
  DITTO_ASSERT(found != session_writes_.end());
  const bool wrote = found->second;
  session_writes_.erase(found);
  if (!wrote) return;
  DITTO_ASSERT(writing_sessions_ > 0);
  writing_sessions_ -= 1;
  if (writing_sessions_ == 0) auto_demote();
}

NbdBuffer ResourceRunner::allocate_buffer(std::size_t size_bytes) {
  std::span<std::uint8_t> buffer = pool_.allocate(size_bytes);
  if (buffer.empty()) return NbdBuffer{};
  const std::uint64_t handle = allocate_slot(buffer, 1);  // the NBD connection's reference
  return NbdBuffer{buffer.data(), buffer.size(), handle};
}

void ResourceRunner::release_buffer(const NbdBuffer& buffer) {
  if (buffer.data == nullptr) return;
  unreference(buffer.token);
}

void ResourceRunner::submit(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
                            std::function<void(std::uint32_t nbd_error)> done) {
  const RequestId request{next_request_++};
  const Sector sector{io.offset_bytes / sector_size_bytes};
  switch (io.op) {
    case NbdOp::read:
      client_done_.emplace(request.value, std::move(done));
      read_destinations_.emplace(request.value, std::pair{buffer.token, io.length_bytes});
      node_.on_client_read(now(), request, sector, io.length_bytes, PayloadHandle{buffer.token});
      break;
    case NbdOp::flush:
      client_done_.emplace(request.value, std::move(done));
      node_.on_client_flush(now(), request);
      break;
    case NbdOp::cache:
      done(0);  // a hint; the data is already as close as it gets
      return;
    case NbdOp::write:
    case NbdOp::trim:
    case NbdOp::write_zeroes:
      submit_write_class(session, io, buffer, std::move(done));
      break;
  }
  pump();
}

// ---- Write-class commands and auto-promote ----------------------------------------------------

void ResourceRunner::submit_write_class(std::uint64_t session, const NbdIo& io,
                                        const NbdBuffer& buffer,
                                        std::function<void(std::uint32_t nbd_error)> done) {
  if (io.op == NbdOp::write_zeroes && io.fast_zero) {
    done(nbd::error_not_supported);  // before anything changes, the role included
    return;
  }
  if (node_.role() == Role::primary || !auto_promote_) {
    // Without auto-promote the core refuses (not_primary → EPERM) or holds a write itself
    // during an admin's pending promotion.
    if (node_.role() != Role::primary && io.op == NbdOp::trim) return done(nbd::error_perm);
    return execute_write_class(session, io, buffer, std::move(done));
  }
  held_for_promotion_.push_back(HeldIo{session, io, buffer, std::move(done)});
  if (!node_.promotion_pending()) start_auto_promotion();
  // A promotion decided at once (no peer connected, or refused) is resolved by pump().
}

void ResourceRunner::start_auto_promotion() {
  const core::AdminResult result = node_.on_admin(now(), core::Promote{});
  if (!result.ok) {
    last_promotion_refusal_ = result.code + (result.message.empty() ? "" : ": " + result.message);
    log("auto-promote for an NBD write refused: " + last_promotion_refusal_);
    return;
  }
  auto_promotion_started_ = true;
  log(result.pending ? "auto-promote: promoting for an NBD write (two-phase commit)"
                     : "auto-promote: promoted for an NBD write");
}

// Runs or fails every command held for a promotion, once none is pending.
void ResourceRunner::resolve_held_ios() {
  DITTO_ASSERT(!node_.promotion_pending());
  const bool promoted = node_.role() == Role::primary;
  if (promoted && auto_promotion_started_) auto_promoted_ = true;
  if (!promoted && auto_promotion_started_) {
    const auto& outcome = node_.promotion_outcome();
    if (outcome && !outcome->ok) {
      last_promotion_refusal_ = outcome->code + ": " + outcome->message;
      log("auto-promote for an NBD write failed: " + last_promotion_refusal_);
    }
  }
  auto_promotion_started_ = false;
  std::deque<HeldIo> held;
  held.swap(held_for_promotion_);
  for (HeldIo& entry : held) {
    if (!promoted) {
      // EPERM, "operation not permitted": this node cannot be Primary now. The connection
      // releases its WRITE buffer itself.
      entry.done(nbd::error_perm);
      continue;
    }
    execute_write_class(entry.session, entry.io, entry.buffer, std::move(entry.done));
  }
}

void ResourceRunner::execute_write_class(std::uint64_t session, const NbdIo& io,
                                         const NbdBuffer& buffer,
                                         std::function<void(std::uint32_t nbd_error)> done) {
  const auto found = session_writes_.find(session);
  DITTO_ASSERT(found != session_writes_.end());
  if (!found->second && node_.role() == Role::primary) {
    found->second = true;
    writing_sessions_ += 1;
  }
  switch (io.op) {
    case NbdOp::write: {
      const RequestId request{next_request_++};
      slots_[buffer.token - 1].references += 1;  // the core's reference, dropped by ReleasePayload
      client_done_.emplace(request.value, std::move(done));
      node_.on_client_write(now(), request, Sector{io.offset_bytes / sector_size_bytes},
                            io.length_bytes, PayloadHandle{buffer.token}, core::WriteFlags{io.fua});
      return;
    }
    case NbdOp::trim:
      done(0);  // advisory: acknowledged without effect (see the top of the file)
      return;
    case NbdOp::write_zeroes:
      return start_write_zeroes(io, std::move(done));
    case NbdOp::read:
    case NbdOp::flush:
    case NbdOp::cache:
      break;
  }
  DITTO_ASSERT(false);
}

void ResourceRunner::auto_demote() {
  if (!auto_promoted_) return;
  auto_promoted_ = false;
  if (node_.role() != Role::primary) return;
  const core::AdminResult result = node_.on_admin(now(), core::Demote{});
  log(result.ok ? "auto-promote: the last writing NBD connection closed, demoted"
                : "auto-demote refused: " + result.code + ": " + result.message);
  pump();
}

// ---- WRITE_ZEROES -----------------------------------------------------------------------------

void ResourceRunner::start_write_zeroes(const NbdIo& io,
                                        std::function<void(std::uint32_t nbd_error)> done) {
  DITTO_ASSERT(io.length_bytes > 0);  // the connection answers zero lengths itself
  if (zero_slot_ == 0) {
    std::span<std::uint8_t> buffer = pool_.allocate(zero_chunk_bytes);
    if (buffer.empty()) return done(nbd_error_busy);
    std::memset(buffer.data(), 0, buffer.size());
    zero_slot_ = allocate_slot(buffer, 1);  // our reference, held while zeroing goes on
  }
  zero_operations_ += 1;
  auto operation = std::make_shared<ZeroOperation>();
  operation->next_offset_bytes = io.offset_bytes;
  operation->end_offset_bytes = io.offset_bytes + io.length_bytes;
  operation->fua = io.fua;
  operation->done = std::move(done);
  continue_write_zeroes(operation);
}

// Submits chunks up to the bound; finishes the command when every chunk is done (or one failed
// and the rest drained).
void ResourceRunner::continue_write_zeroes(const std::shared_ptr<ZeroOperation>& operation) {
  ZeroOperation& zeroing = *operation;
  while (zeroing.error == 0 && zeroing.chunks_in_flight < zero_chunks_in_flight_max &&
         zeroing.next_offset_bytes < zeroing.end_offset_bytes) {
    const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>(
        zero_chunk_bytes, zeroing.end_offset_bytes - zeroing.next_offset_bytes));
    const RequestId request{next_request_++};
    zeroing.chunks_in_flight += 1;
    slots_[zero_slot_ - 1].references += 1;  // the core's reference, dropped by ReleasePayload
    client_done_.emplace(request.value, [this, operation](std::uint32_t error) {
      operation->chunks_in_flight -= 1;
      if (operation->error == 0) operation->error = error;
      continue_write_zeroes(operation);
    });
    node_.on_client_write(now(), request, Sector{zeroing.next_offset_bytes / sector_size_bytes},
                          length, PayloadHandle{zero_slot_}, core::WriteFlags{zeroing.fua});
    zeroing.next_offset_bytes += length;
  }
  const bool finished = zeroing.error != 0 || zeroing.next_offset_bytes == zeroing.end_offset_bytes;
  if (zeroing.chunks_in_flight > 0 || !finished || !zeroing.done) return;
  DITTO_ASSERT(zero_operations_ > 0);
  zero_operations_ -= 1;
  if (zero_operations_ == 0) {
    unreference(zero_slot_);
    zero_slot_ = 0;
  }
  auto done = std::move(zeroing.done);
  zeroing.done = nullptr;
  done(zeroing.error);
}

}  // namespace ditto::datapath
