// Read balancing (drbd9-semantics.md §9): which node serves a client read, as one pure function.
//
// The Node (core/node_read.cpp) collects the candidates — the connected peers whose disk is
// UpToDate, in node-id order — and asks choose_read_source for every read it starts (and again,
// without the peers already tried, when a peer could not serve it).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace ditto::core {

// DRBD's `disk { read-balancing ...; }`.
enum class ReadBalancing : std::uint8_t {
  prefer_local,           // the default: a peer only when the local disk cannot serve
  prefer_remote,          // a peer whenever there is one
  round_robin,            // alternate over the local disk and the peers, request by request
  least_pending,          // a peer when the local disk has more requests in flight than it
  when_congested_remote,  // as prefer-local (DRBD: the congestion API is gone since Linux 5.18)
  striping_32k,           // by stripe of the request's first sector: stripes alternate over
  striping_64k,           // the local disk and the peers
  striping_128k,
  striping_256k,
  striping_512k,
  striping_1m,
};

const char* to_string(ReadBalancing policy);
// drbdsetup's spelling ("prefer-local", ..., "32K-striping", ..., "1M-striping"); nullopt for
// anything else.
std::optional<ReadBalancing> parse_read_balancing(std::string_view text);

// A peer that may serve a read: connected, its disk UpToDate. `pending`: the requests this node
// has outstanding with it (reads sent, writes not yet acknowledged).
struct ReadCandidate {
  NodeId node;
  std::uint32_t pending = 0;
};

struct ReadChoice {
  ReadBalancing policy = ReadBalancing::prefer_local;
  bool local_possible = false;      // the local disk is UpToDate
  std::uint32_t local_pending = 0;  // requests in flight on the local disk
  Sector sector;                    // the read's first sector
  std::span<const ReadCandidate> candidates;  // in node-id order
  // The node's running count of reads it placed: round-robin and the choice among several
  // peers rotate with it.
  std::uint64_t rotation = 0;
};

// Where the read goes: nullopt for the local disk, else the peer. The node set is the local
// disk (when possible) followed by the candidates. Round-robin takes entry `rotation` of it
// (modulo its size), n-striping entry `sector >> (log2(n) - 9)` of it, so with a local disk and
// one peer stripe bit 0 decides, as DRBD's `(sector >> (shift - 9)) & 1`. A striped read that
// crosses a stripe boundary goes where its first sector's stripe goes (as in DRBD: the request
// is not split, which would need partial completions, and its data stays consistent because
// one node serves all of it). prefer-remote picks among the candidates by rotation,
// least-pending the candidate with the fewest pending requests (by rotation among those tied),
// and goes remote only when the local disk has more in flight. Requires local_possible or a
// candidate.
std::optional<NodeId> choose_read_source(const ReadChoice& choice);

}  // namespace ditto::core
