// The block oracle: "no acknowledged write is lost" and per-block linearizable reads
// (simulation-anchors.md §5.2), for a cluster whose replicas may legitimately fall behind.
//
// Every write carries a unique 64-bit tag, and tags grow in issue order. The workload never has
// two requests in flight on one block, so each block's writes form a sequence. For a block and
// a baseline (the last acknowledged write someone must have) the allowed contents are the
// baseline's tag or the tag of any later write to that block (in flight, failed, abandoned at a
// crash, or acknowledged without this replica).
//
// Two kinds of baselines:
// - the lineage: what the client was promised. Every acknowledged write advances it. Reads and
//   the final Primary are checked against it. A failover to node N continues the lineage from
//   what N holds: acknowledged writes N never had are lost at that moment. Without fencing or
//   quorum (not implemented yet) DRBD loses them too when an operator promotes a node that was
//   cut off; the simulator counts them (and checks that protocol C was kept: see simulation).
// - per node: the last acknowledged write that node had completed on its disk when the client
//   got the acknowledgement. A node that claims UpToDate at the end must still hold it.
//   Except a write the node completed on an Inconsistent disk that was still Inconsistent at the
//   acknowledgement: that is no promise. DRBD never uses an Inconsistent disk as a source, and
//   its handshake may replace everything such a node holds by a full sync from any consistent
//   node, also one of another lineage (the Primary's disk detached while its other replicas
//   were its Inconsistent SyncTargets: swarm seed 520). Such a write still advances the lineage
//   (reads, the final Primary, failover loss counting) and the replicas-identical check still
//   applies; the oracle keeps it as the node's "unpromised" write and counts the blocks a node
//   ends UpToDate without (inconsistent_writes_overwritten), so the exception stays visible.
//   Likewise every write a node held on a disk that detached and was attached again
//   (disk_attached): the disk comes back Outdated or Inconsistent, DRBD resyncs it from any
//   UpToDate node, and when that node lacks a write only the detached disk and a Primary whose
//   disk then failed too had, the write is gone (quorum swarm seed 750).
// A failover also counts the lost blocks whose last acknowledged write had no UpToDate copy but
// the old Primary's at the acknowledgement (FailoverLoss::single_copy). DRBD counts a connected
// peer whose disk is Inconsistent, Outdated or failed as a voter toward quorum (calc_quorum,
// drbd9-semantics.md §8.1), so a Primary whose other voters are such peers acknowledges writes
// it alone holds; when it crashes, an UpToDate node of the older generation may have quorum
// with those peers (quorum swarm seeds 1821, 2499, 8143; quorum-minimum-redundancy, off by
// default, is DRBD's remedy). ditto keeps those writes too (a Secondary without a disk tells a
// node its lost Primary left behind, core/node_peer_ack.cpp): with quorum and protocol C any
// block lost at a failover is a violation; the count says which kind it was.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ditto::sim {

// Violations as sentences, bounded in memory; the count keeps growing past the bound.
class Violations {
 public:
  static constexpr std::size_t stored_max = 100;
  void add(std::string text) {
    count_ += 1;
    if (texts_.size() < stored_max) texts_.push_back(std::move(text));
  }
  std::uint64_t count() const { return count_; }
  const std::vector<std::string>& texts() const { return texts_; }

 private:
  std::uint64_t count_ = 0;
  std::vector<std::string> texts_;
};

// The nodes that had completed an acknowledged write on their disks: `promised` as a replica
// (bit n: node n), `unpromised` only on a disk that was Inconsistent then and still is.
// `up_to_date_peers`: the holders besides the acknowledging Primary whose disk was UpToDate at
// the acknowledgement.
struct Holders {
  std::uint32_t promised = 0;
  std::uint32_t unpromised = 0;
  std::uint32_t up_to_date_peers = 0;
};

// What a failover could not keep: `blocks` whose last acknowledged write the promoted node
// lacks; of those, `single_copy` ones whose write had no UpToDate copy but the old Primary's
// own when it was acknowledged (no UpToDate peer held it).
struct FailoverLoss {
  std::uint64_t blocks = 0;
  std::uint64_t single_copy = 0;
};

class BlockOracle {
 public:
  BlockOracle(std::uint64_t block_count, std::uint32_t nodes);

  void write_issued(std::uint64_t first_block, std::uint32_t block_count, std::uint64_t tag);
  // The client got status ok for `tag`; bit n of `holders.promised` is set when node n had
  // completed the write on its disk by then (of `holders.unpromised`: on an Inconsistent disk).
  void write_acknowledged(std::uint64_t tag, Holders holders);
  void write_acknowledged(std::uint64_t tag, std::uint32_t promised) {
    write_acknowledged(tag, Holders{promised, 0});
  }
  // A failed write changes nothing: it stays possible until a later write is acknowledged.

  // `node` attached its disk again after a detach: what that disk held is no promise any more
  // (it comes back Outdated or Inconsistent, and a resync from any UpToDate node replaces it,
  // also one that lacks writes only this disk had). Its promised writes become unpromised.
  void disk_attached(std::uint32_t node);

  // The lineage continues on `node` (it was promoted after the Primary was lost); `image` is
  // what its disk shows now. Returns the blocks whose last acknowledged write `node` holds
  // neither by the record of acknowledgements nor on its disk: a node also gets writes after
  // they were acknowledged (a resync from the Primary that held them), which the record of
  // holders at acknowledgement does not see. A block that fails its checksum over the write
  // (bit rot, the blocks a misdirected write was meant for) is held: the disk detected the
  // damage, a read of it fails locally and goes to a peer, never returns older data.
  FailoverLoss failover(std::uint32_t node, std::span<const std::uint64_t> image);

  // Split brain: the nodes stop replicating to each other and both take writes. split_started
  // remembers what each node held then. When a policy (or the operator) discards the victim's
  // data, the victim and the lineage continue from what the survivor holds; the victim's
  // acknowledged writes since the split on blocks where it differs from the survivor are the
  // documented loss (returned as a block count), and nothing else may be lost.
  void split_started();
  std::uint64_t split_brain_discard(std::uint32_t victim, std::uint32_t survivor);

  bool allowed(std::uint64_t block, std::uint64_t tag) const;  // against the lineage
  bool allowed_on(std::uint32_t node, std::uint64_t block, std::uint64_t tag) const;
  bool acknowledged(std::uint64_t tag) const;
  std::uint64_t last_acknowledged(std::uint64_t block) const { return lineage_.at(block); }
  std::uint64_t block_count() const { return lineage_.size(); }

  // Checks tags observed at `first_block`.. (a read result or a disk image) against the
  // lineage; `where` names the observer, e.g. "read 17 on node 1".
  void check(std::string_view where, std::uint64_t first_block,
             std::span<const std::uint64_t> observed, Violations& violations) const;
  // Checks a whole disk image against what `node` must hold. Returns the blocks whose
  // unpromised write (completed on its Inconsistent disk) the image no longer holds, nor a later
  // write to the block: allowed, and counted.
  std::uint64_t check_node(std::string_view where, std::uint32_t node,
                           std::span<const std::uint64_t> image, Violations& violations) const;

  std::string describe_expected(std::uint64_t baseline) const;

 private:
  bool covers(std::uint64_t tag, std::uint64_t block) const;
  bool allowed_after(std::uint64_t baseline, std::uint64_t block, std::uint64_t tag) const;

  std::vector<std::uint64_t> lineage_;             // per block; 0: never written
  // Per block: UpToDate peers that held the last acknowledged write when it was acknowledged;
  // copies_unknown once the lineage continued from another node's record (judged strictly).
  static constexpr std::uint8_t copies_unknown = 0xff;
  std::vector<std::uint8_t> up_to_date_peer_copies_;
  std::vector<std::vector<std::uint64_t>> nodes_;  // per node, per block
  // Per node, per block: the last acknowledged write it held only on an Inconsistent disk.
  std::vector<std::vector<std::uint64_t>> unpromised_;
  std::vector<std::vector<std::uint64_t>> at_split_;  // nodes_ when the split started
  std::vector<std::uint64_t> ranges_;              // per tag: first_block << 5 | block_count
  std::vector<bool> acknowledged_;                 // per tag
};

}  // namespace ditto::sim
