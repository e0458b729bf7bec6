// One resource in the daemon: the core Node driven by the real world. It executes the Node's
// actions against the io_uring disk, the TCP transport and the NBD clients, and feeds their
// completions back as inputs — all on one io_context thread (one shard), no locks.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/node.h"
#include "datapath/daemon_config.h"
#include "datapath/daemon_helpers.h"
#include "datapath/daemon_resync_after.h"
#include "datapath/metadata_store.h"
#include "datapath/nbd_server.h"
#include "datapath/transport_tcp.h"
#include "datapath/uring_buffer_pool.h"
#include "datapath/uring_disk.h"

namespace ditto::datapath {

struct ResourceOptions {
  std::string nbd_host;        // empty: no TCP export
  std::uint16_t nbd_port = 0;
  std::string nbd_socket_path;  // empty: no unix-socket export
  // Set: the export requires TLS (NBD_OPT_STARTTLS) with this context (datapath/tls_context.h).
  std::shared_ptr<boost::asio::ssl::context> nbd_tls_context;
  std::size_t buffer_slab_bytes = 64u << 20;
  // Set by a shard (daemon_shard.h): the disk joins the shard's ring and buffers come from the
  // shard's pool, both shared by every resource of the shard and outliving them. Null: the
  // resource has a ring and a pool (of buffer_slab_bytes) of its own.
  UringRing* shard_ring = nullptr;
  AlignedBufferPool* shard_pool = nullptr;
  // The daemon's resync-after registry (daemon_resync_after.h); null: resync-after is ignored
  // (a resource run alone, in tests).
  std::shared_ptr<ResyncAfterRegistry> resync_after;
};

class ResourceRunner final : public TransportHandler, public NbdBackend {
 public:
  // Opens the disk (an unreadable disk is an error naming the config location), reads and checks
  // its DRBD v09 internal metadata (missing or bad metadata: an error naming the resource, the
  // disk and the field; nothing is written), sizes the volume to the data area, and builds the
  // transport and NBD server; nothing listens until start().
  static Result<std::unique_ptr<ResourceRunner>> create(boost::asio::io_context& io,
                                                        DaemonConfig config,
                                                        ResourceOptions options);
  ~ResourceRunner() override;

  // Attaches the metadata (marks it in use, metadata_store.h plan_attach), then listens.
  [[nodiscard]] Status start();
  // Stops everything; after the disk is idle, a clean shutdown writes the metadata back.
  void stop();

  [[nodiscard]] core::AdminResult admin(const core::AdminCommand& command);
  // dittoadm attach (daemon_resource_metadata.cpp): opens the disk detached before, reads and
  // checks its metadata as a start does (check_metadata, configure_activity_log), gives it to
  // the core (core::Attach) and marks the metadata in use. On any refusal or error (disk gone,
  // metadata damaged or of another layout, unrelated data) nothing changed: the node stays
  // Diskless and keeps serving through its peers; the message names the resource and the disk.
  [[nodiscard]] core::AdminResult attach_disk();
  // dittoadm adjust: applies `updated`, a re-read configuration whose differences are all
  // live-changeable (control_adjust.h checks that), to the transport and makes it the running
  // configuration. On error nothing changed.
  [[nodiscard]] Status adjust(DaemonConfig updated);
  const core::Node& node() const { return node_; }
  // The core's clock: steady time since the runner was made.
  Instant now() const;
  std::uint16_t nbd_port() const { return nbd_ ? nbd_->tcp_port() : 0; }
  // A client the daemon-wide NBD listener handed over (daemon_nbd.h).
  void adopt_nbd(NbdHandOff hand_off) { nbd_->adopt(std::move(hand_off)); }
  std::uint16_t peer_port() const { return transport_->listen_port(); }
  const DaemonConfig& config() const { return config_; }
  std::uint32_t open_sessions() const {
    return static_cast<std::uint32_t>(session_writes_.size());
  }
  const TcpTransport& transport() const { return *transport_; }
  // Receives every core Event line (events2 subscribers, control_events.h).
  void set_event_sink(std::function<void(const std::string& line)> sink) {
    event_sink_ = std::move(sink);
  }

  // TransportHandler
  void on_peer_connected(NodeId peer) override;
  void on_peer_disconnected(NodeId peer, std::string_view reason) override;
  void on_peer_message(NodeId peer, const wire::Message& message,
                       std::span<const std::uint8_t> payload) override;

  // NbdBackend
  std::vector<NbdExportInfo> list_exports() override;
  Result<std::uint64_t> open_export(std::string_view name) override;
  void close_export(std::uint64_t session) override;
  NbdBuffer allocate_buffer(std::size_t size_bytes) override;
  void release_buffer(const NbdBuffer& buffer) override;
  void submit(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
              std::function<void(std::uint32_t nbd_error)> done) override;
  // The shard ring's submissions wait for the end of the connection's batch (nbd_server.h).
  void begin_submissions() override {
    if (options_.shard_ring != nullptr) options_.shard_ring->hold_submissions();
  }
  void end_submissions() override {
    if (options_.shard_ring != nullptr) options_.shard_ring->release_submissions();
  }

 private:
  // A buffer shared by the NBD connection, the core and the disk: freed at zero references.
  struct Slot {
    std::span<std::uint8_t> buffer;
    std::uint32_t references = 0;
  };

  // A write-class NBD command waiting for this node's promotion (auto-promote).
  struct HeldIo {
    std::uint64_t session = 0;
    NbdIo io{NbdOp::write, 0, 0, false};
    NbdBuffer buffer;
    std::function<void(std::uint32_t nbd_error)> done;
  };
  // One WRITE_ZEROES command, run as replicated writes of a shared zero buffer.
  struct ZeroOperation {
    std::uint64_t next_offset_bytes = 0;
    std::uint64_t end_offset_bytes = 0;
    bool fua = false;
    std::uint32_t chunks_in_flight = 0;
    std::uint32_t error = 0;  // the first chunk's error
    std::function<void(std::uint32_t nbd_error)> done;
  };

  ResourceRunner(boost::asio::io_context& io, DaemonConfig config, ResourceOptions options,
                 std::unique_ptr<UringDisk> disk, std::unique_ptr<MetadataStore> metadata,
                 AttachPlan attach);

  // Metadata at start() and stop() (daemon_resource_metadata.cpp).
  static Result<AttachPlan> check_metadata(const DaemonConfig& config, MetadataStore& metadata);
  [[nodiscard]] Status attach_metadata();
  MetadataState metadata_state(bool clean) const;
  // False when the superblock could not be written: the disk must be detached.
  [[nodiscard]] bool write_metadata_if_changed(bool state_changed);
  void write_clean_metadata();
  // dittoadm detach (daemon_resource_metadata.cpp): the disk's state and generations when the
  // core detached it; its metadata is written back clean once no local I/O is in flight.
  struct DetachedDisk {
    DiskState disk = DiskState::diskless;
    Generations generations;
  };
  void disk_detached(DiskState disk_before, const Generations& generations);
  void write_detached_metadata(bool stopping);
  core::AdminResult attach_refusal() const;
  std::optional<DetachedDisk> detached_disk_;

  // NBD backend internals (daemon_resource_nbd.cpp).
  void submit_write_class(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
                          std::function<void(std::uint32_t nbd_error)> done);
  void execute_write_class(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
                           std::function<void(std::uint32_t nbd_error)> done);
  void start_auto_promotion();
  void resolve_held_ios();
  void auto_demote();
  void start_write_zeroes(const NbdIo& io, std::function<void(std::uint32_t nbd_error)> done);
  void continue_write_zeroes(const std::shared_ptr<ZeroOperation>& operation);

  // Handlers, StandAlone and ko-count (daemon_resource_peers.cpp).
  void run_helper(const core::CallHelper& call);
  // core::CheckDiskSize (a resize): re-read the backing size, move the metadata to the end of a
  // grown device, answer with the data area (daemon_resource_metadata.cpp).
  void check_disk_size();
  std::vector<std::string> helper_environment(const core::CallHelper& call) const;
  void helper_finished(const core::CallHelper& call, int exit_code);
  void execute_disconnect(const core::Disconnect& disconnect);
  void admin_done(const core::AdminCommand& command, const core::AdminResult& result);
  void arm_ko_timer();
  void check_ko_count();
  // resync-after (daemon_resync_after.h): publish whether we hold our dependents, and pause or
  // resume our resyncs by the chain we name, every resync_after_poll.
  void arm_resync_after_timer();
  void poll_resync_after();

  std::uint64_t allocate_slot(std::span<std::uint8_t> buffer, std::uint32_t references);
  void unreference(std::uint64_t handle);
  std::span<std::uint8_t> slot_buffer(PayloadHandle handle, std::uint32_t length_bytes);

  void pump();
  void execute(core::Action& action);
  void execute_disk(const core::Action& action);
  void arm_timer(const core::ArmTimer& arm);
  void fail_disk_io_later(IoId io);
  // Activity log and bitmap pages (daemon_resource_metadata.cpp).
  static Status configure_activity_log(DaemonConfig& config, MetadataStore& metadata,
                                       AttachPlan& attach);
  void execute_metadata_write(const core::MetadataWrite& write);
  void write_back_bitmaps();
  void on_disk_completion(std::uint64_t cookie, int result);
  void log(const std::string& line) const;

  boost::asio::io_context& io_;
  DaemonConfig config_;
  ResourceOptions options_;
  std::unique_ptr<UringDisk> disk_;
  std::unique_ptr<MetadataStore> metadata_;
  AttachPlan attach_;              // what start() writes
  bool metadata_attached_ = false;  // start() marked the metadata in use; stop() writes it back
  bool crashed_primary_ = false;     // CRASHED_PRIMARY, until the generation moves on
  std::uint64_t crashed_generation_ = 0;  // comparable current UUID at attach
  Generations metadata_generations_;       // as last compared with the superblock
  UnconfirmedGeneration metadata_unconfirmed_;   // as last compared with the superblock
  std::unique_ptr<AlignedBufferPool> own_pool_;  // null with a shard pool
  AlignedBufferPool& pool_;
  core::Node node_;
  std::unique_ptr<TcpTransport> transport_;
  std::unique_ptr<NbdServer> nbd_;

  std::vector<Slot> slots_;  // index = handle - 1
  std::vector<std::uint64_t> free_slots_;
  std::unordered_map<std::uint64_t, std::function<void(std::uint32_t)>> client_done_;
  // NBD reads in flight: RequestId → (the NBD buffer's slot, length), where the data of a read
  // a peer served is copied (core::CompleteClient::read_payload).
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint32_t>> read_destinations_;
  std::uint64_t next_request_ = 1;
  std::uint64_t next_session_ = 1;
  // Auto-promote (DRBD's `options { auto-promote yes; }`, the default): the first write-class
  // command on a Secondary promotes the node; when the last connection that wrote closes, an
  // auto-promoted node demotes again.
  bool auto_promote_ = true;
  bool auto_promoted_ = false;          // the current Primary role came from auto-promote
  bool auto_promotion_started_ = false;  // we started the pending promotion
  std::unordered_map<std::uint64_t, bool> session_writes_;  // open session → has written
  std::uint32_t writing_sessions_ = 0;
  std::deque<HeldIo> held_for_promotion_;
  std::string last_promotion_refusal_;
  // WRITE_ZEROES: one zero-filled slot shared by every zeroing command in flight.
  std::uint64_t zero_slot_ = 0;
  std::uint32_t zero_operations_ = 0;
  std::deque<IoId> failed_ios_;
  std::deque<std::pair<IoId, core::IoStatus>> metadata_completions_;
  bool bitmaps_written_ = false;  // by a clean stop: no PEER_FULL_SYNC needed
  // Reads the core asked a buffer for (DiskRead::allocate_payload, resync replies): IoId → slot.
  std::unordered_map<std::uint64_t, std::uint64_t> payload_reads_;
  // Online verify's digest reads (DiskRead::digest): IoId → scratch buffer, freed once the
  // CRC32C digest of the block is computed.
  std::unordered_map<std::uint64_t, std::span<std::uint8_t>> digest_reads_;
  void release_digest_read(std::uint64_t io);
  // Resync and verify reads that found the buffer pool busy (daemon_resource.cpp defer_read):
  // started again, in order, every deferred_retry_interval until buffers come back. Bounded
  // without a limit of its own: the core issues no more reads than its resync and verify
  // pacing (c-fill-target, the rate controller) allows in flight.
  void defer_read(const core::DiskRead& read);
  void retry_deferred_reads();
  static constexpr std::chrono::milliseconds deferred_retry_interval{2};
  std::deque<core::DiskRead> deferred_reads_;
  bool deferred_retry_armed_ = false;
  bool pumping_ = false;
  std::vector<core::Action> action_buffer_;  // pump's, kept between batches (its capacity)
  bool stopped_ = false;
  std::function<void(const std::string& line)> event_sink_;
  std::unordered_map<std::uint64_t, std::unique_ptr<boost::asio::steady_timer>> timers_;
  // Handlers (core::CallHelper) run as child processes.
  HelperRunner helpers_;
  // ko-count: per peer, messages received, the count at the last check, and how many checks
  // in a row found writes pending and no message from it.
  struct KoWatch {
    std::uint64_t messages = 0;
    std::uint64_t messages_at_check = 0;
    std::uint32_t stalled_checks = 0;
  };
  std::array<KoWatch, nodes_max> ko_watch_{};
  boost::asio::steady_timer ko_timer_;
  boost::asio::steady_timer deferred_retry_timer_;
  bool resync_dependency_active_ = false;
  boost::asio::steady_timer resync_after_timer_;
  // A metadata write failed: the disk is being detached, and no data I/O reaches it any more.
  bool metadata_failed_ = false;
  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
};

}  // namespace ditto::datapath
