// The options of one simulated run (everything but the fault and operation lists).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/fencing.h"
#include "core/generation.h"
#include "core/node_interface.h"
#include "core/quorum.h"
#include "core/read_balancing.h"
#include "core/result.h"
#include "core/types.h"
#include "netem/faults.h"
#include "netem/latency.h"

namespace ditto::sim {

inline constexpr std::uint32_t sim_nodes_min = 2;
inline constexpr std::uint32_t sim_nodes_max = 5;
inline constexpr std::uint64_t sim_operations_max = 10'000'000;

struct WorkloadOptions {
  std::uint64_t operations = 1000;
  std::uint32_t queue_depth_max = 8;
  // Fixed queue depth; 0 draws one in 1..queue_depth_max from the seed.
  std::uint32_t queue_depth = 0;
  std::uint32_t read_percent = 30;
  std::uint32_t flush_percent = 5;
  std::uint32_t fua_percent = 10;  // of writes
  std::uint32_t blocks_per_write_max = 4;
};

// The scripted split-brain scenario (sim/simulation_split_brain.cpp): two nodes, node 0
// Primary. When a third of the operations are issued the nodes are partitioned, node 1 is
// promoted too, and the client writes on both (share_second_percent of the writes on node 1).
// When the workload is done, `primaries_at_heal` Primaries remain (0: both demote; 1: node 0
// stays Primary; 2: both stay) and the partition heals. With manual_recovery, once both sides
// report an unresolved split brain, the operator runs `connect --discard-my-data` on node 1 and
// `connect` on node 0. Requires 2 nodes, no crash, no faults and no reads (reads during the
// split would see the other side's lineage).
struct SplitBrainScenario {
  bool enabled = false;
  std::uint32_t primaries_at_heal = 0;
  std::uint32_t share_second_percent = 50;
  bool manual_recovery = false;
};

// Two Primaries (allow-two-primaries on every node, tests/sim/two_primaries_test.cpp): at a
// quarter of the operations node 1 promotes beside node 0 and the client writes on both (the
// workload never has two requests in flight on one block, so the writes never overlap in
// flight); at half the writer moves to node 1 and node 0 demotes once its requests are done: a
// live migration. With `conflict`, at a third the client stops, and once nothing is in flight
// writes one block on both Primaries at the same instant (tags above the workload's, never
// acknowledged to the oracle): the Primaries must detect it and drop their connection; the
// client then writes on node 0 only, node 1 demotes, and the split brain found at the
// reconnect is resolved as the policies (or SplitBrainScenario::manual_recovery) say. Requires
// no crash and no faults.
struct TwoPrimariesScenario {
  bool enabled = false;
  bool conflict = false;
};

// A simulated handler (core::CallHelper): when `node` runs `helper` it exits with `exit_code`.
struct HelperScript {
  std::uint8_t node = 0;
  std::string helper;  // fence-peer, unfence-peer, split-brain, ...
  int exit_code = 0;
};

// The scripted admin scenario (sim/simulation_admin.cpp), run once the workload is done on a
// cluster with node 0 Primary: `verify` first corrupts `corrupt_blocks` acknowledged blocks on
// node 1 silently (a disk without checksums: a block holding another block's data, as a
// misdirected write or bit rot leaves it), then runs online verify from node 0 toward node 1,
// and when it finishes disconnects and reconnects node 0 from node 1 (the resync of the marked
// blocks, as DRBD does it); `invalidate` runs invalidate on node 1, `invalidate_remote` runs
// invalidate-remote on node 0 toward node 1 (both after corrupting `corrupt_blocks` blocks of
// node 1 the same way, so a checksum resync has exactly those to move). Needs no crash and no faults; settle_time must
// leave time for the full resync.
struct AdminScenario {
  enum class Kind : std::uint8_t { none, verify, invalidate, invalidate_remote };
  Kind kind = Kind::none;
  std::uint32_t corrupt_blocks = 0;
};

struct SimOptions {
  std::uint64_t seed = 1;
  std::uint32_t nodes = 3;
  std::uint64_t volume_size_bytes = 64ull * 1024 * 1024;
  // Activity-log slots of every node (NodeConfig::al_extents; DRBD's default 1237). Fewer slots
  // than the volume has extents make extents leave the log, so their bitmap pages are written
  // back during the run.
  std::uint32_t al_extents = 1237;
  // c-max-rate of every node in KiB/s (NodeConfig::c_max_rate_kib; 0: no cap). A test that
  // needs a resync slower than the simulated hardware (which outruns the default) lowers it.
  std::uint32_t c_max_rate_kib = core::NodeConfig{}.c_max_rate_kib;
  WorkloadOptions workload;
  netem::LatencyModel network = netem::lan_link();
  netem::LatencyModel disk = netem::nvme_disk();
  Duration connect_delay = Duration::from_ms(1);
  Duration reconnect_delay = Duration::from_ms(100);
  // A peer notices a crashed node (or a TCP reset) after a delay in [1 ms, detection_delay_max].
  Duration detection_delay_max = Duration::from_ms(20);
  // The failover scenario: crash the Primary (node 0) mid-run; the operator promotes a survivor.
  bool crash_primary = true;
  // Fault classes and their weights (all zero: no faults besides crash_primary).
  netem::FaultWeights faults{};
  // Quorum on every node (§8; off by default). With quorum on, a split brain found at any
  // handshake is a violation (simulation_checks.cpp).
  core::QuorumSettings quorum;
  // Fault events per 1000 client operations, when some class is enabled.
  std::uint32_t faults_per_1000_ops = 15;
  // Oracle self-test: after the run, overwrite one acknowledged block on an UpToDate survivor
  // with a stale tag. The oracle must report it.
  bool drop_acked_write_for_test = false;
  // A request that has not completed this long after it was issued stalls the run: every fault
  // is healed; if it still does not complete within the same time again, that is a violation.
  Duration stall_timeout = Duration::from_ms(30'000);
  // After the workload is done every fault is healed and the cluster runs this much longer.
  Duration settle_time = Duration::from_ms(500);
  // Liveness oracle: after the faults stop, every live node must be connected to every live
  // peer within liveness_bound of simulated time, and every live node with a disk UpToDate
  // (its resync finished) within resync_bound. A full resync over the slowest links the sim
  // draws takes several seconds, so the second bound is the longer one.
  Duration liveness_bound = Duration::from_ms(5'000);
  Duration resync_bound = Duration::from_ms(30'000);
  // Set by swarm_options: the --ops bound the swarm drew from (for the replay command).
  std::uint64_t swarm_operations_max = 0;
  // Fault classes the swarm must leave out (--without), non-zero entries.
  netem::FaultWeights swarm_excluded{};
  // Every node's split-brain policies (after-sb-*, rr-conflict) and the scripted scenario.
  SplitBrainPolicy split_brain_policy;
  SplitBrainScenario split_brain;
  TwoPrimariesScenario two_primaries;
  // Every node's fencing policy (§7) and its simulated handlers: each helper a node runs exits
  // with the code its script names, helper_delay after the call (through the event queue, so
  // deterministic). No script: exit code 0, as drbdadm reports for a handler with no command
  // (which fence-peer treats as broken).
  core::FencingPolicy fencing = core::FencingPolicy::dont_care;
  std::vector<HelperScript> helper_scripts;
  Duration helper_delay = Duration::from_ms(50);
  AdminScenario admin;
  // Checksum-based resync on every node (csums-alg crc32c: the simulator digests block tags in
  // its place) and csums-after-crash-only (§5.2).
  bool csums = false;
  bool csums_after_crash_only = false;
  // Every node's read-balancing policy (§9, core/read_balancing.h).
  core::ReadBalancing read_balancing = core::ReadBalancing::prefer_local;
  // Diskless client (§9): node 0, the initial Primary, has no disk (`disk none`) and reads and
  // writes through its peers.
  bool diskless_client = false;
  // A read cut off mid-way: when node 0 sends its n-th ReadRequest (counting from 1; 0: never),
  // the connection to that peer breaks before the answer (and reconnects after
  // reconnect_delay): the read must be retried on another peer or fail, never hang.
  std::uint32_t cut_read_peer_at = 0;
  // The replication protocol of every node (§2.1) and, for protocol A, congestion (§11,
  // node_congestion.cpp): on-congestion and congestion-fill in sectors (0: never congested).
  // Under protocol A a write is acknowledged once sent, so the "protocol C" check of which
  // peers stored it at the acknowledgement does not apply; a failover may lose the last
  // acknowledged writes (counted as blocks_lost_at_failover, as without fencing).
  Protocol protocol = Protocol::c;
  core::OnCongestion on_congestion = core::OnCongestion::block;
  std::uint32_t congestion_fill_sectors = 0;
};

[[nodiscard]] Status validate(const SimOptions& options);

// The command that replays a run from its seed.
std::string replay_command(const SimOptions& options);

// A swarm configuration for `seed` (Groce et al.): random node count 2..5, random number of
// operations in [ops_max / 4, ops_max], random fault classes with random weights (never one of
// `excluded`). With `draw_quorum`, one in three clusters of 3 or more nodes runs with quorum
// majority (io-error or suspend-io, from a stream of its own so the other draws stay as they
// were). `ditto-sim run|campaign --swarm --swarm-quorum` turns it on; CI campaigns leave it off
// until the bugs it exposes are fixed (tests/sim/quorum_test.cpp, the DISABLED_ regressions).
// With `draw_reads` (--swarm-reads), any read-balancing policy; with `draw_diskless`
// (--swarm-diskless), one cluster in three has a diskless client (node 0, the initial Primary).
// With `draw_congestion` (--swarm-congestion), one cluster in three runs protocol A with
// on-congestion pull-ahead or disconnect and a small congestion-fill (8..256 sectors).
// Each from a stream of its own: a drawn policy or client replays with its flag, an undrawn one
// the same with or without it.
SimOptions swarm_options(std::uint64_t seed, std::uint64_t operations_max,
                         const netem::FaultWeights& excluded = {}, bool draw_quorum = false,
                         bool draw_reads = false, bool draw_diskless = false,
                         bool draw_congestion = false);

}  // namespace ditto::sim
