// Data generation identifiers of one volume (drbd9-semantics.md §3): the current UUID, one
// bitmap UUID per peer node id, the history; the rotations that change them (§3.2); the
// uuid_compare rule table (§3.4) and the sync-handshake decision pipeline (§3.5). Pure: the
// randomness for a new UUID is an argument.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/types.h"

namespace ditto {

inline constexpr std::uint64_t uuid_primary_bit = 1;
inline constexpr std::uint64_t uuid_just_created_value = 4;
inline constexpr std::uint32_t generation_node_slots = 32;

// UUID flags exchanged at the handshake (P_UUIDS110, §3.3).
namespace uuid_flag {
inline constexpr std::uint64_t discard_my_data = 1u << 0;
inline constexpr std::uint64_t crashed_primary = 1u << 1;
inline constexpr std::uint64_t inconsistent = 1u << 2;
inline constexpr std::uint64_t skip_initial_sync = 1u << 3;
inline constexpr std::uint64_t new_datagen = 1u << 4;
inline constexpr std::uint64_t stable = 1u << 5;
inline constexpr std::uint64_t got_stable = 1u << 6;
inline constexpr std::uint64_t resync = 1u << 7;
inline constexpr std::uint64_t reconnect = 1u << 8;
inline constexpr std::uint64_t diskless_primary = 1u << 9;
inline constexpr std::uint64_t primary_lost_quorum = 1u << 10;
inline constexpr std::uint64_t sync_target = 1u << 11;
// ditto's own: the node restarted below UpToDate and has not been UpToDate since, so a crash
// may have lost writes it had acknowledged (lost unflushed writes): its newer generation does
// not make it a source toward an UpToDate peer.
inline constexpr std::uint64_t restarted_behind = 1ull << 40;
// ditto's own (DRBD sends its user_isp in P_STATE): the sender's user paused the resync with
// the receiver (pause-sync), which shows it as resync-suspended:peer. Not part of the
// handshake's decision (a peer that does not know the bit ignores it: no version change).
inline constexpr std::uint64_t resync_paused_by_user = 1ull << 41;
// ditto's own: the node started after a Primary crash (apply-al marked its hot extents; DRBD's
// CRASHED_PRIMARY as far as csums-after-crash-only is concerned). No handshake rule reads it.
inline constexpr std::uint64_t after_primary_crash = 1ull << 42;
// ditto's own: the sender is a Secondary connected to a Primary with an UpToDate disk. DRBD
// reconciles two Secondaries of one generation only after a common lost Primary (§3.5 step 3); a
// handshake in which either side still has its Primary leaves their bits alone
// (Node::resync_same_generation). Like the quorum flags no part of the state a report must keep for
// its handshake (resync_not_now).
inline constexpr std::uint64_t primary_connected = 1ull << 43;
// ditto's own: the sender is Inconsistent, and the resync source it lost was UpToDate (it left or
// crashed with its disk): that disk holds the sender's generation in full and may come back, so
// an older peer's data is no full sync for the sender (generation_handshake.cpp).
inline constexpr std::uint64_t newer_copy_away = 1ull << 47;
}  // namespace uuid_flag

struct Generations {
  std::uint64_t current = uuid_just_created_value;
  std::array<std::uint64_t, generation_node_slots> bitmap{};   // toward node id n; 0 = none
  std::array<std::uint64_t, generation_node_slots> history{};  // newest first
  friend bool operator==(const Generations&, const Generations&) = default;
};

// The value compared: bit 0 (Primary) masked off, and 0 treated as "just created" (4).
std::uint64_t comparable_current(std::uint64_t uuid);
// Bitmap and history values compare with bit 0 masked; 0 stays "none".
constexpr std::uint64_t comparable_uuid(std::uint64_t uuid) {
  return uuid & ~uuid_primary_bit;
}

// current:bitmap-UUIDs(non-zero, node=uuid):history(non-zero), UUIDs as 16 upper-case hex
// digits (drbdsetup show-gi, abridged).
std::string generations_text(const Generations& uuids);

// Whether `uuid` (comparable) is one of the bitmap or history UUIDs of `uuids`: the data it
// names is an ancestor of the data of `uuids.current`.
bool generation_behind(const Generations& uuids, std::uint64_t uuid);

// push_history (§3.1): ignores 0, just-created, the current UUID, values already held.
void push_history(Generations& uuids, std::uint64_t uuid);
// Sets the bitmap UUID toward `node`; a replaced non-zero value goes to the history.
void set_bitmap_uuid(Generations& uuids, std::uint32_t node, std::uint64_t uuid);

// ---- Rotations (§3.2) ----

struct NewCurrentInput {
  // Nodes whose bitmap slot must remember the old generation: peers that do not have the data
  // (disk not Consistent/UpToDate, or weak), and configured nodes never seen.
  std::uint32_t rotate_into_nodes = 0;
  bool primary = false;  // the new UUID carries the Primary bit
  bool forced = false;   // primary --force, day 0, user new-current-uuid: bump even if no slot
};

// The new-generation bump. Returns false (nothing changed) when no slot took the old UUID and
// the bump is not forced: every peer already has the data.
bool new_current_uuid(Generations& uuids, const NewCurrentInput& input, std::uint64_t random);

// A bump is flagged by promotion, losing a peer's disk while Primary, entering Ahead, ... and
// executed lazily before the next application write.
struct GenerationState {
  Generations uuids;
  bool new_current_pending = false;
};
void request_new_current_uuid(GenerationState& state);
// Performs a pending bump; true when the UUIDs changed and must be persisted before the write.
bool before_application_write(GenerationState& state, const NewCurrentInput& input,
                              std::uint64_t random);

// Demotion clears the Primary bit.
void clear_primary_bit(Generations& uuids);

// A Secondary receives the Primary's new current UUID (NEW_DATAGEN): an UpToDate node rotates
// its old current into the slots of `weak_nodes`, points the slots it tracks (`tracked_nodes`,
// not weak) at the new UUID, and adopts it.
void receive_new_current_uuid(Generations& uuids, std::uint64_t new_current,
                              std::uint32_t weak_nodes, std::uint32_t tracked_nodes,
                              bool up_to_date);

// Resync start on the SyncTarget: returns rs_start_uuid (the own current) and rotates it into
// the slots of `absent_nodes`.
std::uint64_t resync_target_started(Generations& uuids, std::uint32_t absent_nodes);

// Resync finished on the SyncTarget: inherit the source's history and bitmap UUIDs, take over
// its current UUID; slots toward nodes the source still tracks get rs_start_uuid, others 0.
void resync_target_finished(Generations& uuids, const Generations& source, std::uint32_t self_node,
                            std::uint32_t source_node, std::uint64_t rs_start_uuid);

// The SyncSource learns (from the peer's UUIDs) that a resync finished: with equal current
// UUIDs, every slot the peer reports as 0 while mine is non-zero is cleared (value to history).
// Returns the mask of nodes whose bitmap contents must be cleared too.
std::uint32_t source_detect_finished_resyncs(Generations& uuids, const Generations& peer);

// `new-current-uuid` by the user: all bitmap UUIDs to history and cleared, then a forced bump.
void user_new_current_uuid(Generations& uuids, bool primary, std::uint64_t random);

// ditto's own, not DRBD's: a generation this node started as Primary that no client has seen a
// completion in yet (quorum swarm seeds 2142, 2953, 5141: the Primary started it and crashed a
// moment later, before any peer learned it; the survivors promoted one of them from the old
// generation, and the crashed node came back with a generation they could only call a split
// brain, though nothing it held in it had been acknowledged). Persisted with the generations;
// a node that starts with it rolls back to the generation before (roll_back_unconfirmed): its
// writes in the unconfirmed one were never acknowledged, and the activity log of the crash
// marks them for the resync, in whichever direction it goes.
struct UnconfirmedGeneration {
  std::uint64_t current = 0;           // the unconfirmed current UUID (comparable); 0: none
  std::uint64_t previous_current = 0;  // the current UUID before it, as it was
  std::uint32_t rotated_nodes = 0;     // bitmap slots that were 0 and took a UUID at the bump
  friend bool operator==(const UnconfirmedGeneration&, const UnconfirmedGeneration&) = default;
};
// Whether `unconfirmed` names the current generation of `uuids` (a record left behind by a
// later change of the current UUID, a resync's or a peer's, names nothing).
bool names_current(const UnconfirmedGeneration& unconfirmed, const Generations& uuids);
// Back to the generation before an unconfirmed one: the previous current UUID, the slots it
// rotated into cleared (their bits stay: a superset of what the peers miss).
void roll_back_unconfirmed(Generations& uuids, const UnconfirmedGeneration& unconfirmed);

// ---- uuid_compare (§3.4) ----

enum class SyncStrategy : std::uint8_t {
  no_sync,
  retry_connect,
  source_use_bitmap,
  target_use_bitmap,
  source_set_bitmap,
  target_set_bitmap,
  source_copy_bitmap,
  target_clear_bitmap,
  source_if_both_failed,
  target_if_both_failed,
  split_brain_auto_recover,
  split_brain_disconnect,
  unrelated_data,
};

// Numbered as in the §3.4 table.
enum class UuidRule : std::uint8_t {
  initial_handshake_changed = 0,
  just_created_both = 1,
  just_created_self = 2,
  just_created_peer = 3,
  sync_source_missed_finish = 4,
  sync_target_peer_missed_finish = 5,
  reconnected = 6,
  crashed_primary = 7,
  lost_quorum = 8,
  lost_quorum_reconnect = 9,
  both_off = 10,
  bitmap_peer = 11,
  bitmap_peer_other = 12,
  bitmap_self = 13,
  bitmap_self_other = 14,
  history_peer = 15,
  history_self = 16,
  bitmap_both = 17,
  history_both = 18,
  unrelated = 19,
};

std::string_view to_string(UuidRule rule);
std::string_view to_string(SyncStrategy strategy);

struct UuidCompareInput {
  Generations self;
  Generations peer;
  std::uint32_t self_node = 0;
  std::uint32_t peer_node = 1;
  std::uint64_t self_flags = 0;  // uuid_flag bits
  std::uint64_t peer_flags = 0;
  bool changed_while_connecting = false;  // rule 0
  bool resolve_conflicts = false;         // I hold the resolve-conflicts bit
  bool rs_source_missed_end = false;      // rule 4
  bool rs_peer_missed_end = false;        // rule 5
  Protocol protocol = Protocol::c;        // rule 7 applies to A and B only
};

struct UuidCompareResult {
  UuidRule rule = UuidRule::unrelated;
  SyncStrategy strategy = SyncStrategy::unrelated_data;
  std::int32_t bitmap_node = -1;  // rules 12 and 14: the node whose slot matched
  friend bool operator==(const UuidCompareResult&, const UuidCompareResult&) = default;
};

UuidCompareResult uuid_compare(const UuidCompareInput& input);

// ---- Decision pipeline after uuid_compare (§3.5, §6) ----

enum class AfterSplitBrain0 {
  disconnect,
  discard_younger_primary,
  discard_older_primary,
  discard_zero_changes,
  discard_least_changes,
  discard_local,
  discard_remote,
};
enum class AfterSplitBrain1 {
  disconnect,
  consensus,
  violently_as0p,
  discard_secondary,
  call_pri_lost_after_sb
};
enum class AfterSplitBrain2 { disconnect, violently_as0p, call_pri_lost_after_sb };
enum class RrConflict { disconnect, retry_connect, call_pri_lost, violently, auto_discard };
// The drbd.conf names ("discard-zero-changes", "call-pri-lost-after-sb", ...); the *_count
// constants are the number of values of each, for parsing by name.
std::string_view to_string(AfterSplitBrain0 policy);
std::string_view to_string(AfterSplitBrain1 policy);
std::string_view to_string(AfterSplitBrain2 policy);
std::string_view to_string(RrConflict policy);
inline constexpr std::size_t after_split_brain_0_count = 7;
inline constexpr std::size_t after_split_brain_1_count = 5;
inline constexpr std::size_t after_split_brain_2_count = 3;
inline constexpr std::size_t rr_conflict_count = 5;

// The net options that decide a split brain (drbd.conf `net { after-sb-0pri ...; }`, §6).
// discard-node-NAME is resolved by the configuration into discard_local / discard_remote.
struct SplitBrainPolicy {
  AfterSplitBrain0 after_sb_0pri = AfterSplitBrain0::disconnect;
  AfterSplitBrain1 after_sb_1pri = AfterSplitBrain1::disconnect;
  AfterSplitBrain2 after_sb_2pri = AfterSplitBrain2::disconnect;
  RrConflict rr_conflict = RrConflict::disconnect;
  bool always_asbp = false;
  friend bool operator==(const SplitBrainPolicy&, const SplitBrainPolicy&) = default;
};

struct HandshakeInput {
  UuidCompareInput compare;
  DiskState self_disk = DiskState::up_to_date;
  DiskState peer_disk = DiskState::up_to_date;
  Role self_role = Role::secondary;
  Role peer_role = Role::secondary;
  std::uint64_t self_dirty_bits = 0;  // my bits set toward the peer
  std::uint64_t peer_dirty_bits = 0;
  AfterSplitBrain0 after_sb_0pri = AfterSplitBrain0::disconnect;
  AfterSplitBrain1 after_sb_1pri = AfterSplitBrain1::disconnect;
  AfterSplitBrain2 after_sb_2pri = AfterSplitBrain2::disconnect;
  bool always_asbp = false;
  RrConflict rr_conflict = RrConflict::disconnect;
  bool quorum_enabled = false;
  bool self_has_quorum = false;
  bool peer_has_quorum = false;
  bool tentative = false;
};

enum class HandshakeOutcome {
  established,    // no resync
  become_source,  // WFBitMapS
  become_target,  // WFBitMapT
  disconnect,
  retry_connect,
  standalone,  // split brain not resolved
  dry_run,     // --tentative: report only
};

enum class BitmapEdit { none, copy_slot, set_all };

struct HandshakeDecision {
  UuidCompareResult compare;
  SyncStrategy strategy = SyncStrategy::no_sync;  // after every override
  HandshakeOutcome outcome = HandshakeOutcome::established;
  BitmapEdit bitmap_edit = BitmapEdit::none;
  std::int32_t copy_from_node = -1;
  bool record_peer_current_as_bitmap_uuid = false;  // non-fresh full sync as source
  bool full_sync_across_branches = false;  // an Inconsistent side of a split brain is the target
  bool clear_stale_bitmap_uuid = false;             // missed-finish rule without UpToDate source
  bool call_initial_split_brain = false;
  bool call_split_brain = false;
  bool call_pri_lost = false;  // rr-conflict call-pri-lost
  // call-pri-lost-after-sb: this node (a Primary that loses) demotes before it becomes the
  // SyncTarget; peer_demotes: the peer (a Primary that loses) does.
  bool call_pri_lost_after_sb = false;
  bool peer_demotes = false;
  // Established without the resync the generations would call for: it waits (`reason`) until
  // a resync of either side ends and the handshake runs again (Node::defer_resync).
  bool defer_resync = false;
  std::string_view reason;
};

HandshakeDecision sync_handshake(const HandshakeInput& input);

}  // namespace ditto
