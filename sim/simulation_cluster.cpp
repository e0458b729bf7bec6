// The client and the operator: the workload talks to the Primary; when the Primary crashes the
// operator promotes an UpToDate survivor (never an Outdated one); at the end the oracles check
// every UpToDate node.
#include <algorithm>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {
using Reason = Simulation::SimNode::PromotionReason;
constexpr Duration operator_retry = Duration::from_ms(50);
}  // namespace

void Simulation::schedule_tick(Duration delay) {
  if (tick_scheduled_) return;
  tick_scheduled_ = true;
  schedule(delay, make_event(EventKind::workload_tick, 0));
}

void Simulation::on_workload_tick() {
  tick_scheduled_ = false;
  while (has_primary_ && alive(primary_) && !paused(primary_) && !split_waiting_) {
    if (script_holds_client()) return;
    if (two_primaries_before_issue(workload_.statistics().issued)) return;
    const std::optional<ClientOperation> operation = workload_.next(now_);
    if (!operation) return;
    if (split_writers_) primary_ = split_brain_writer(operation->request.value);
    if (two_writers_) primary_ = two_primaries_writer(operation->request.value);
    issue(*operation);
  }
}

void Simulation::issue(const ClientOperation& operation) {
  hash_.add(operation.request.value);
  split_brain_before_issue(operation.request.value - 1);
  schedule_faults_after(operation.request.value - 1);
  SimNode& primary = *nodes_[primary_];
  core::Node& core = *primary.core;
  const Sector sector{operation.first_block * sectors_per_block};
  const std::uint32_t length_bytes = operation.block_count * block_size_bytes;
  if (trace_) {
    trace(primary_, "client " + std::string(name(operation.kind)) +
                        " request:" + std::to_string(operation.request.value) +
                        " tag:" + std::to_string(operation.tag) +
                        " block:" + std::to_string(operation.first_block) +
                        " blocks:" + std::to_string(operation.block_count) +
                        (operation.fua ? " fua" : ""));
  }
  switch (operation.kind) {
    case OperationKind::write: {
      // Under protocol C the write must reach every peer the Primary replicates to now and
      // stays connected to until the acknowledgement.
      WriteTrace trace;
      if (core.disk_state() == DiskState::up_to_date) trace.expected |= 1u << primary_;
      for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
        if (peer == primary_) continue;
        const auto view = core.peer(NodeId{peer});
        const Connection& entry = connection(primary_, peer);
        trace.epochs[peer] = entry.epoch;
        if (view && view->connection == ConnectionState::connected &&
            view->disk == DiskState::up_to_date && entry.state == Connection::State::up) {
          trace.expected |= 1u << peer;
        }
      }
      write_traces_[operation.tag] = trace;
      primary.payloads_held += 1;
      core.on_client_write(now_, operation.request, sector, length_bytes,
                           PayloadHandle{operation.tag}, core::WriteFlags{operation.fua});
      break;
    }
    case OperationKind::read:
      core.on_client_read(now_, operation.request, sector, length_bytes);
      break;
    case OperationKind::flush:
      core.on_client_flush(now_, operation.request);
      break;
  }
  drain(primary_);
}

void Simulation::on_client_completed(std::uint8_t node, const core::CompleteClient& complete) {
  SimNode& sim_node = *nodes_[node];
  if (extra_write_completed(node, complete)) return;
  hash_.add(complete.request.value);
  hash_.add(static_cast<std::uint64_t>(complete.status));
  const ClientOperation* found = workload_.find(complete.request);
  if (found == nullptr) {
    violations_.add(node_name(node) + " completed request " +
                    std::to_string(complete.request.value) + " that is not in flight");
    return;
  }
  const ClientOperation operation = *found;
  std::span<const std::uint64_t> tags;
  auto buffer = sim_node.read_buffers.end();
  if (complete.read_io) {
    buffer = sim_node.read_buffers.find(complete.read_io->value);
    DITTO_ASSERT(buffer != sim_node.read_buffers.end());  // the read completed on our disk
    tags = buffer->second;
  }
  if (complete.read_payload) {
    tags = sim_node.tags_of(*complete.read_payload);  // a peer served it (released next)
    result_.remote_reads += 1;
  }
  const bool ok = complete.status == core::ClientStatus::ok;
  Holders holders;
  bool sent_only = false;
  if (operation.kind == OperationKind::write) {
    write_completed(node, operation, ok, holders, sent_only);
  }
  if (trace_) {
    trace(node, "client completed request:" + std::to_string(complete.request.value) +
                    " status:" + core::to_string(complete.status) +
                    (operation.kind == OperationKind::write
                         ? " holders:" + std::to_string(holders.promised) +
                               " unpromised:" + std::to_string(holders.unpromised) +
                               (sent_only ? " sent-only" : "")
                         : std::string()));
  }
  bool read_error_injected = false;
  if (operation.kind == OperationKind::read && !ok && sim_node.read_errors_unexplained > 0) {
    sim_node.read_errors_unexplained -= 1;
    read_error_injected = true;
  }
  // Without an UpToDate disk of its own (it detached after an injected EIO, or never had one)
  // a node reads through its peers, and fails a read when none could serve it: its peers were
  // unreachable, not UpToDate, or failed the read themselves.
  if (operation.kind == OperationKind::read && !ok &&
      (complete.status == core::ClientStatus::no_data ||
       complete.status == core::ClientStatus::io_error) &&
      sim_node.core->disk_state() != DiskState::up_to_date) {
    read_error_injected = true;
  }
  workload_.completed(now_, NodeId{node}, complete.request, complete.status, tags, holders,
                      sent_only, read_error_injected, violations_);
  if (buffer != sim_node.read_buffers.end()) sim_node.read_buffers.erase(buffer);
  last_progress_ = now_;
  if (workload_.done()) return workload_finished();
  schedule_tick(Duration{static_cast<std::int64_t>(workload_prng_.between(0, 10'000))});
}

// Protocol C: an acknowledged write is on the disk of every node it had to reach.
void Simulation::write_completed(std::uint8_t node, const ClientOperation& operation, bool ok,
                                 Holders& holders, bool& sent_only) {
  auto found = write_traces_.find(operation.tag);
  DITTO_ASSERT(found != write_traces_.end());
  const WriteTrace trace = found->second;
  write_traces_.erase(found);
  holders.promised = trace.holders;
  // A write that a node completed only on an Inconsistent disk, still Inconsistent now, is no
  // promise of that node's (sim/oracle.h).
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    const std::uint32_t bit = 1u << peer;
    if ((trace.holders & bit) == 0 || (trace.completed_consistent & bit) != 0) continue;
    if (!alive(peer) || nodes_[peer]->core->disk_state() != DiskState::inconsistent) continue;
    holders.promised &= ~bit;
    holders.unpromised |= bit;
  }
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    if (peer == node || (holders.promised & (1u << peer)) == 0 || !alive(peer)) continue;
    if (nodes_[peer]->core->disk_state() != DiskState::up_to_date) continue;
    holders.up_to_date_peers |= 1u << peer;
  }
  if (!ok) return;
  // Protocols A and B acknowledge a write once it is sent: when the Primary's own disk failed
  // it and no disk had it yet, a connection lost afterwards takes it along (as DRBD's protocol
  // A does; visible once the Primary attaches a disk again, swarm seed 605).
  sent_only = options_.protocol != Protocol::c && trace.holders == 0 &&
              ((trace.failed >> node) & 1u) != 0;
  std::uint32_t required = trace.expected & ~trace.failed;
  // Protocols A and B acknowledge before the peers' disks have the write: only the local disk
  // must hold it (the oracle still checks what every node that claims UpToDate holds).
  if (options_.protocol != Protocol::c) required &= 1u << node;
  // A Primary without an UpToDate disk writes through its peers only: a write that waited for
  // the activity log while its disk detached was never submitted locally, and a disk attached
  // again is Inconsistent until its resync ends, which brings it the block (the core marks it
  // for its resync sources; quorum swarm seed 1688).
  if (nodes_[node]->core->disk_state() != DiskState::up_to_date) required &= ~(1u << node);
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    if (peer == node) continue;
    const Connection& entry = connection(node, peer);
    if (entry.epoch != trace.epochs[peer] || entry.state != Connection::State::up) {
      required &= ~(1u << peer);  // the connection broke: the Primary stopped waiting for it
    }
    if (alive(peer) && nodes_[peer]->core->disk_state() != DiskState::up_to_date) {
      required &= ~(1u << peer);  // no longer a replica (its disk detached or is Outdated)
    }
  }
  const std::uint32_t missing = required & ~trace.holders;
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    if ((missing >> peer) & 1u) {
      violations_.add("protocol C: write " + std::to_string(operation.tag) +
                      " was acknowledged by " + node_name(node) + " before " + node_name(peer) +
                      " stored it");
    }
  }
}

void Simulation::primary_lost() {
  has_primary_ = false;
  workload_.abandon_all();
  write_traces_.clear();
  if (!operator_busy_) {
    // The operator notices once the peers surely did.
    operator_busy_ = true;
    schedule(Duration{options_.detection_delay_max.ns + Duration::from_ms(1).ns},
             make_event(EventKind::operator_check, 0));
  }
  if (workload_.done()) workload_finished();
}

void Simulation::on_operator_check() {
  operator_busy_ = false;
  if (has_primary_) return;
  bool hope = false;
  for (std::uint32_t step = 1; step <= options_.nodes; ++step) {
    const auto node = static_cast<std::uint8_t>((primary_ + step) % options_.nodes);
    const SimNode& candidate = *nodes_[node];
    if (!candidate.alive || candidate.core->disk_state() != DiskState::up_to_date) continue;
    hope = true;
    if (candidate.paused || candidate.promotion_requested) continue;
    request_promotion(node, static_cast<std::uint8_t>(Reason::failover));
    if (has_primary_ || nodes_[node]->promotion_requested) return;
  }
  if (!hope) {
    // Every node that was UpToDate is gone; restarted nodes come back Outdated and there is no
    // resync yet, so no Primary can be found any more.
    gave_up_ = true;
    workload_.give_up();
    if (workload_.done()) workload_finished();
    return;
  }
  // A promotion refused at once (no quorum, say) already scheduled the retry: one is enough,
  // or every check would schedule more and the queue would grow without bound.
  if (operator_busy_) return;
  operator_busy_ = true;
  schedule(operator_retry, make_event(EventKind::operator_check, 0));
}

void Simulation::request_promotion(std::uint8_t node, std::uint8_t reason) {
  SimNode& sim_node = *nodes_[node];
  if (!sim_node.alive) return;
  sim_node.promotion_reason = static_cast<Reason>(reason);
  // Its data is UpToDate: on its own disk, or (a node without a disk, §9) on a connected peer.
  bool peer_up_to_date = false;
  for (const core::PeerStatus& peer : sim_node.core->peers()) {
    peer_up_to_date = peer_up_to_date || (peer.connection == ConnectionState::connected &&
                                          peer.disk == DiskState::up_to_date);
  }
  const DiskState disk = sim_node.core->disk_state();
  sim_node.up_to_date_at_promotion =
      disk == DiskState::up_to_date || (disk == DiskState::diskless && peer_up_to_date);
  const core::AdminResult result = sim_node.core->on_admin(now_, core::Promote{});
  hash_.add(result.ok ? 1 : 0);
  if (result.ok && result.pending) {
    sim_node.promotion_requested = true;
    drain(node);
    return;
  }
  drain(node);
  promotion_decided(node, result);
}

void Simulation::promotion_decided(std::uint8_t node, const core::AdminResult& result) {
  SimNode& sim_node = *nodes_[node];
  hash_.add(result.ok ? 0x900d : 0xbad);
  switch (sim_node.promotion_reason) {
    case Reason::split_brain:
      if (!result.ok && options_.fencing != core::FencingPolicy::dont_care) {
        // Fencing refused it (the handler did not fence node 0): node 0 stays the only
        // Primary, so no split brain follows (tests/sim/fencing_test.cpp).
        result_.promotions_refused += 1;
        split_waiting_ = false;
        return schedule_tick(Duration{0});
      }
      if (!result.ok) {
        violations_.add("split-brain scenario: promoting " + node_name(node) +
                        " during the partition was refused: " + result.code);
        return;
      }
      split_writers_ = true;
      split_waiting_ = false;
      return schedule_tick(Duration{0});
    case Reason::two_primaries:
      if (!result.ok) {
        violations_.add("two-Primaries scenario: promoting " + node_name(node) +
                        " beside the Primary was refused: " + result.code + " (" + result.message +
                        ")");
        return;
      }
      two_writers_ = true;
      return schedule_tick(Duration{0});
    case Reason::outdated_test:
      if (!result.ok) return;
      // after_step reported the violation; step down so the run goes on.
      (void)sim_node.core->on_admin(now_, core::Demote{});
      return drain(node);
    case Reason::initial:
      if (!result.ok) {
        violations_.add("promoting " + node_name(node) + " in a fresh cluster was refused: " +
                        result.code + " (" + result.message + ")");
        return;
      }
      break;
    case Reason::failover:
      if (!result.ok) {
        result_.promotions_refused += 1;
        if (!has_primary_ && !operator_busy_) {
          operator_busy_ = true;
          schedule(operator_retry, make_event(EventKind::operator_check, 0));
        }
        return;
      }
      result_.promoted = true;
      if (const FailoverLoss lost = workload_.oracle().failover(node, sim_node.disk.visible());
          lost.blocks > 0) {
        result_.blocks_lost_at_failover += lost.blocks;
        result_.single_copy_blocks_lost_at_failover += lost.single_copy;
        // Quorum promises that a node that may be promoted holds every acknowledged write, under
        // protocol C, even one whose only UpToDate copy was the old Primary's (sim/oracle.h).
        // Protocol A acknowledges a write once it is sent: the Primary's crash may take it
        // along whatever quorum says (DRBD's protocol A too).
        if (options_.quorum.enabled() && options_.protocol == Protocol::c) {
          violations_.add("promoting " + node_name(node) + " with quorum " +
                          core::to_string(options_.quorum.quorum) + " lost " +
                          std::to_string(lost.blocks) + " acknowledged blocks (" +
                          std::to_string(lost.single_copy) +
                          " had no UpToDate copy but the old Primary's)");
        }
      }
      break;
  }
  primary_ = node;
  has_primary_ = true;
  last_progress_ = now_;
  if (workload_.done()) return workload_finished();
  schedule_tick(Duration{0});
}

void Simulation::workload_finished() {
  if (stop_at_) return;
  admin_scenario_start();
  split_brain_heal();
  heal_all();
  stop_at_ = now_ + options_.settle_time;
}

// A run whose requests stop completing heals every fault; if it stays stuck, that is a
// liveness violation.
void Simulation::check_stall() {
  if (stop_at_ || workload_.done()) return;
  if (now_ - last_progress_ < options_.stall_timeout) return;
  if (!healed_) {
    heal_all();
    last_progress_ = now_;
    return;
  }
  violations_.add("the workload stalled: " + std::to_string(workload_.statistics().issued) +
                  " of " + std::to_string(options_.workload.operations) + " operations issued, " +
                  std::to_string(workload_.in_flight()) + " in flight, no progress for " +
                  std::to_string(options_.stall_timeout.ns / 1'000'000) + " ms after healing");
  stop_at_ = now_;
}

}  // namespace ditto::sim
