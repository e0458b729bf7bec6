// Fault injection: the schedule's fault events fire after their operation was issued; each
// class changes the simulated network, disks or nodes for a while and counts when it had an
// effect (RunResult::faults_fired). When the workload is done (or stalls) every fault heals.
#include <algorithm>

#include "core/activity_log.h"
#include "core/assert.h"
#include "core/metadata.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {
using netem::FaultClass;

// What drbdadm's apply-al does before an attach after a Primary crash, for a simulated disk:
// replay the activity-log ring (torn or never-written blocks are invalid), and hand the hot
// extents and the on-disk bitmaps to the new core, which marks the extents out of sync toward
// every peer. The ring continues after its newest transaction.
void apply_activity_log(const SimDisk& disk, core::NodeConfig& config) {
  std::vector<std::optional<metadata::AlTransaction>> ring;
  std::uint32_t newest = 0;
  bool any = false;
  for (const auto& [block, bytes] : disk.metadata_blocks(core::MetadataArea::activity_log)) {
    Result<metadata::AlTransaction> decoded = metadata::decode_al_transaction(bytes);
    if (!decoded) {
      ring.emplace_back(std::nullopt);
      continue;
    }
    const metadata::AlTransaction& transaction = decoded.value();
    if (transaction.transaction_type == metadata::al_type_update &&
        (!any || static_cast<std::int32_t>(transaction.tr_number - newest) > 0)) {
      newest = transaction.tr_number;
      any = true;
    }
    ring.emplace_back(transaction);
  }
  config.initial_hot_extents = replay_activity_log(ring);
  config.al_first_transaction_number = any ? newest + 1 : 0;
  // The bitmap area as far as it was written (pages never written hold zeros: in sync).
  const auto& pages = disk.metadata_blocks(core::MetadataArea::bitmap);
  const std::uint64_t page_count = pages.empty() ? 0 : pages.rbegin()->first + 1;
  std::vector<std::uint8_t> area(page_count * block_size_bytes, 0);
  for (const auto& [page, bytes] : pages) {
    std::copy(bytes.begin(), bytes.end(),
              area.begin() + static_cast<std::ptrdiff_t>(page * block_size_bytes));
  }
  const std::uint32_t slots = static_cast<std::uint32_t>(config.peers.size());
  const std::uint64_t bits = config.volume_size_bytes / Bitmap::bytes_per_bit;
  const std::size_t words = static_cast<std::size_t>((bits + 31) / 32);
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    // Beyond the pages written the area reads as zeros (unpack_bitmap_slot pads).
    std::vector<std::uint32_t> slot_words = metadata::unpack_bitmap_slot(area, slots, slot, words);
    config.initial_bitmap_words[config.peers[slot].node_id.value] = std::move(slot_words);
  }
}

// Classes whose fired counter counts their effects (slowed messages, failed I/Os, ...) rather
// than the event itself.
bool counted_per_effect(FaultClass fault) {
  switch (fault) {
    case FaultClass::slow_link:
    case FaultClass::link_flapping:
    case FaultClass::link_clog:
    case FaultClass::slow_disk:
    case FaultClass::disk_write_error:
    case FaultClass::disk_read_error:
    case FaultClass::disk_reorder:
    case FaultClass::disk_misdirected_write:
    case FaultClass::disk_bit_rot:
    case FaultClass::message_duplication:
      return true;
    default:
      return false;
  }
}
}  // namespace

void Simulation::count_fired(FaultClass fault, std::uint64_t times) {
  result_.faults_fired[netem::index(fault)] += times;
}

void Simulation::schedule_faults_after(std::uint64_t operation_index) {
  while (next_fault_ < fault_order_.size() &&
         faults_[fault_order_[next_fault_]].after_op <= operation_index) {
    const std::uint32_t index = fault_order_[next_fault_++];
    SimEvent event = make_event(EventKind::fault, faults_[index].node, faults_[index].peer);
    event.first = index;
    schedule(Duration{faults_[index].delay_ns}, event);
  }
}

void Simulation::on_fault(const SimEvent& event) {
  if (healed_) return;
  const std::uint32_t index = static_cast<std::uint32_t>(event.first);
  const FaultEvent& fault = faults_[index];
  hash_.add(static_cast<std::uint64_t>(fault.fault));
  const bool applied = fire_network_fault(fault, index) || fire_disk_fault(fault) ||
                       fire_node_fault(fault) || fire_added_fault(fault);
  if (applied && !counted_per_effect(fault.fault)) count_fired(fault.fault);
  if (applied && trace_) {
    trace(fault.node, "fault " + std::string(netem::name(fault.fault)) + " peer:node" +
                          std::to_string(fault.peer) + " duration:" +
                          std::to_string(fault.duration_ns / 1'000'000) + "ms");
  }
  if (!applied && fault.fault == FaultClass::promote_outdated && event.second < 200) {
    // No node is Outdated yet: the operator tries again a little later (for up to 2 s).
    SimEvent retry = event;
    retry.second += 1;
    schedule(Duration::from_ms(10), retry);
  }
  if (applied && fault.duration_ns > 0 && fault.fault != FaultClass::node_crash &&
      fault.fault != FaultClass::node_pause) {
    SimEvent end = make_event(EventKind::fault_end, fault.node, fault.peer);
    end.first = index;
    schedule(Duration{fault.duration_ns}, end);
  }
}

void Simulation::set_partition(const FaultEvent& fault, bool on) {
  const netem::BlockedPairs pairs =
      netem::partition_pairs(fault.fault, options_.nodes, fault.parameter);
  for (const auto& [from, to] : pairs) {
    Link& link = links_[from][to];
    if (on) {
      link.partitions += 1;
      const Connection& entry = connection(from, to);
      if (entry.state != Connection::State::up) continue;
      SimEvent timeout = make_event(EventKind::link_timeout, from, to);
      timeout.epoch = entry.epoch;
      schedule(detection_delay(), timeout);
    } else if (link.partitions > 0) {
      link.partitions -= 1;
    }
  }
  if (on) return;
  for (const auto& [from, to] : pairs) release_held(from, to);
}

bool Simulation::fire_network_fault(const FaultEvent& fault, std::uint32_t index) {
  Link& link = links_[fault.node][fault.peer];
  switch (fault.fault) {
    case FaultClass::link_delay:
      link.model = fault.model;
      return true;
    case FaultClass::slow_link:
      link.slow_until = std::max(link.slow_until, now_ + Duration{fault.duration_ns});
      link.slow_factor = std::max<std::uint32_t>(fault.parameter, 1);
      return true;
    case FaultClass::connection_reset:
      if (connection(fault.node, fault.peer).state != Connection::State::up) return false;
      break_connection(fault.node, fault.peer, true);
      return true;
    case FaultClass::partition_halves:
    case FaultClass::partition_isolate:
    case FaultClass::partition_ring:
    case FaultClass::partition_one_way:
      set_partition(fault, true);
      return true;
    case FaultClass::link_flapping: {
      SimEvent flap = make_event(EventKind::flap, fault.node, fault.peer);
      flap.first = index;
      flap.second = static_cast<std::uint64_t>((now_ + Duration{fault.duration_ns}).ns);
      schedule(Duration{0}, flap);
      return true;
    }
    case FaultClass::link_clog:
      link.clogs += 1;
      return true;
    default:
      return false;
  }
}

bool Simulation::fire_disk_fault(const FaultEvent& fault) {
  SimNode& node = *nodes_[fault.node];
  const Instant until = now_ + Duration{fault.duration_ns};
  switch (fault.fault) {
    case FaultClass::disk_latency:
      node.disk_model = fault.model;
      return true;
    case FaultClass::slow_disk:
      node.slow_until = std::max(node.slow_until, until);
      node.slow_factor = std::max<std::uint32_t>(fault.parameter, 1);
      return true;
    case FaultClass::disk_write_error:
      node.write_errors_until = std::max(node.write_errors_until, until);
      node.write_error_percent = std::min<std::uint32_t>(fault.parameter, 100);
      return true;
    case FaultClass::disk_read_error:
      node.read_errors_until = std::max(node.read_errors_until, until);
      node.read_error_percent = std::min<std::uint32_t>(fault.parameter, 100);
      return true;
    case FaultClass::disk_reorder:
      node.reorder_until = std::max(node.reorder_until, until);
      node.reorder_us_max = fault.parameter;
      return true;
    default:
      return false;
  }
}

bool Simulation::fire_node_fault(const FaultEvent& fault) {
  SimNode& node = *nodes_[fault.node];
  switch (fault.fault) {
    case FaultClass::node_crash: {
      if (!node.alive) return false;
      on_crash(fault.node);
      if (fault.duration_ns > 0) {
        schedule(Duration{fault.duration_ns}, make_event(EventKind::restart, fault.node));
      }
      return true;
    }
    case FaultClass::node_pause: {
      if (!node.alive) return false;
      const Instant until = now_ + Duration{std::max<std::int64_t>(fault.duration_ns, 1)};
      node.paused = true;
      node.paused_until = std::max(node.paused_until, until);
      SimEvent resume = make_event(EventKind::resume, fault.node);
      resume.epoch = node.incarnation;
      schedule(node.paused_until - now_, resume);
      return true;
    }
    case FaultClass::promote_outdated: {
      // The operator picks a node that is not UpToDate (the first from `node` on): the core
      // must refuse, promoting stale data would serve old blocks as current.
      for (std::uint32_t step = 0; step < options_.nodes; ++step) {
        const auto target = static_cast<std::uint8_t>((fault.node + step) % options_.nodes);
        const SimNode& candidate = *nodes_[target];
        if (!candidate.alive || candidate.paused || candidate.promotion_requested ||
            candidate.core->role() == Role::primary ||
            candidate.core->disk_state() == DiskState::up_to_date) {
          continue;
        }
        request_promotion(target, 2);
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

void Simulation::on_fault_end(const SimEvent& event) {
  const FaultEvent& fault = faults_[event.first];
  switch (fault.fault) {
    case FaultClass::partition_halves:
    case FaultClass::partition_isolate:
    case FaultClass::partition_ring:
    case FaultClass::partition_one_way:
      if (!healed_) set_partition(fault, false);
      return;
    case FaultClass::link_clog: {
      Link& link = links_[fault.node][fault.peer];
      if (link.clogs > 0) link.clogs -= 1;
      release_held(fault.node, fault.peer);
      return;
    }
    case FaultClass::disk_write_error:
      // The operator replaces the failing disk path and attaches the disk again.
      if (!healed_ && now_ >= nodes_[fault.node]->write_errors_until) {
        attach_detached_disk(fault.node);
      }
      return;
    default:
      return end_added_fault(fault);  // the others are time-bounded and end by themselves
  }
}

void Simulation::on_flap(const SimEvent& event) {
  if (healed_ || now_.ns >= static_cast<std::int64_t>(event.second)) return;
  const FaultEvent& fault = faults_[event.first];
  if (connection(fault.node, fault.peer).state == Connection::State::up) {
    break_connection(fault.node, fault.peer, true);
    count_fired(FaultClass::link_flapping);
  }
  SimEvent next = event;
  schedule(Duration::from_ms(std::max<std::uint32_t>(fault.parameter, 1)), next);
}

// The end of the faults: partitions and clogs lift, slow links and disks recover, paused nodes
// resume and crashed nodes restart.
void Simulation::heal_all() {
  if (healed_) return;
  healed_ = true;
  hash_.add(0x4ea1ull);
  for (std::uint8_t from = 0; from < options_.nodes; ++from) {
    for (std::uint8_t to = 0; to < options_.nodes; ++to) {
      Link& link = links_[from][to];
      link.partitions = 0;
      link.clogs = 0;
      link.slow_until = now_;
      link.duplicate_until = now_;
    }
  }
  for (std::uint8_t from = 0; from < options_.nodes; ++from) {
    for (std::uint8_t to = 0; to < options_.nodes; ++to) {
      if (from != to) release_held(from, to);
    }
  }
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    SimNode& sim_node = *nodes_[node];
    sim_node.slow_until = sim_node.write_errors_until = sim_node.read_errors_until = now_;
    sim_node.reorder_until = now_;
    if (clocks_[node].drift_ppm() != 0) {
      clocks_[node].set_drift(now_, 0);  // the clock keeps its offset: it never goes back
      reschedule_timers(node);
    }
    if (sim_node.alive && sim_node.paused) {
      SimEvent resume = make_event(EventKind::resume, node);
      resume.epoch = sim_node.incarnation;
      sim_node.paused_until = now_;
      on_resume(resume);
    }
    if (!sim_node.alive) on_restart(node);
    // An event, not a call: heal_all may run while one of the node's own actions executes (the
    // workload's last completion), and an attach now would send its new state ahead of the
    // rest of those actions (a stale Diskless report after it: swarm seed 2520 with attach).
    schedule(Duration{0}, make_event(EventKind::attach, node));
  }
  start_liveness_checks();
}

void Simulation::on_resume(const SimEvent& event) {
  SimNode& node = *nodes_[event.node];
  if (!node.alive || !node.paused || node.incarnation != event.epoch || now_ < node.paused_until) {
    return;
  }
  node.paused = false;
  std::vector<SimEvent> deferred;
  deferred.swap(node.deferred);
  for (const SimEvent& waiting : deferred) {
    hash_.add(0x7e5ull);
    if (!defer_if_paused(waiting)) dispatch(waiting);
  }
  if (event.node == primary_ && has_primary_) schedule_tick(Duration{0});
}

void Simulation::on_crash(std::uint8_t node) {
  SimNode& sim_node = *nodes_[node];
  DITTO_ASSERT(sim_node.alive);
  trace(node, "crash");
  result_.crashed = true;
  sim_node.alive = false;
  sim_node.paused = false;
  sim_node.deferred.clear();
  sim_node.incarnation += 1;
  sim_node.read_buffers.clear();
  sim_node.payload_tags.clear();
  sim_node.digest_reads.clear();
  sim_node.write_tags.clear();
  sim_node.timers.clear();
  sim_node.promotion_requested = false;
  sim_node.read_errors_unexplained = 0;
  CrashModel model;
  bool any_fault = false;
  for (const std::uint32_t weight : options_.faults) any_fault = any_fault || weight != 0;
  model.lose_unflushed =
      !any_fault || options_.faults[netem::index(FaultClass::disk_lost_unflushed)] != 0;
  model.tear = options_.faults[netem::index(FaultClass::disk_torn_write)] != 0;
  const CrashReport report = sim_node.disk.crash(effect_prng_, model);
  result_.crash_disk.writes_kept += report.writes_kept;
  result_.crash_disk.writes_lost += report.writes_lost;
  result_.crash_disk.writes_torn += report.writes_torn;
  if (model.lose_unflushed && report.writes_lost > 0) {
    count_fired(FaultClass::disk_lost_unflushed);
  }
  if (report.writes_torn > 0) count_fired(FaultClass::disk_torn_write);
  hash_.add(report.writes_kept);
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    if (peer == node) continue;
    side_up_[node][peer] = false;
    break_connection(node, peer, false);
  }
  if (has_primary_ && node == primary_) {
    result_.writes_in_flight_at_crash += workload_.writes_in_flight();
    primary_lost();
  }
}

// A restarted node gets a new core from what its on-disk metadata says: every generation
// identifier it last wrote, and Outdated (Inconsistent if it crashed as a SyncTarget), since it
// cannot prove it has every acknowledged write; a resync brings it back.
void Simulation::on_restart(std::uint8_t node) {
  SimNode& sim_node = *nodes_[node];
  if (sim_node.alive) return;
  trace(node, "restart");
  const core::NodeConfig config = config_from_metadata(node);
  sim_node.core = std::make_unique<core::Node>(config);
  sim_node.alive = true;
  sim_node.payloads_held = 0;
  sim_node.last_role = Role::secondary;
  sim_node.up_to_date_at_promotion = false;
  dropped_by_core_[node].fill(false);
  hash_.add(0x4e57ull + node);
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    if (peer == node || !alive(peer)) continue;
    if (connection(node, peer).state == Connection::State::down) {
      start_connecting(node, peer, options_.connect_delay);
    }
  }
}

// What a node's disk says when it is attached (at a restart or by attach): every generation
// identifier it last wrote, and Outdated (Inconsistent if it was a SyncTarget), since it cannot
// prove it has every acknowledged write; apply-al's extents and bitmaps after a Primary's run.
core::NodeConfig Simulation::config_from_metadata(std::uint8_t node) const {
  const SimNode& sim_node = *nodes_[node];
  core::NodeConfig config = node_config(options_, node, sim_node.incarnation);
  config.initial_disk_state =
      sim_node.disk.metadata_consistent() ? DiskState::outdated : DiskState::inconsistent;
  config.initial_generations = sim_node.disk.metadata_generations();
  config.initial_unconfirmed = sim_node.disk.metadata_unconfirmed();
  if (sim_node.disk.metadata_primary()) apply_activity_log(sim_node.disk, config);
  return config;
}

// dittoadm attach of a disk that detached after an injected EIO (the fault is over): the core
// gets what the disk's metadata holds, as at a restart, and resyncs what it missed. A refusal
// (the disk's data is not an ancestor of the cluster's) leaves the node Diskless.
void Simulation::attach_detached_disk(std::uint8_t node) {
  SimNode& sim_node = *nodes_[node];
  if (!sim_node.alive || sim_node.paused) return;
  core::Node& core = *sim_node.core;
  if (core.config().intentional_diskless || core.disk_state() != DiskState::diskless) return;
  const core::NodeConfig config = config_from_metadata(node);
  const core::Attach attach{config.initial_disk_state, *config.initial_generations,
                            config.initial_bitmap_words, config.initial_hot_extents,
                            config.al_first_transaction_number};
  const core::AdminResult result = core.on_admin(now_, attach);
  hash_.add(result.ok ? 0xa77ull : 0xa78ull);
  if (result.ok) workload_.oracle().disk_attached(node);
  if (trace_) trace(node, result.ok ? "attach" : "attach refused: " + result.message);
  drain(node);
}

}  // namespace ditto::sim
