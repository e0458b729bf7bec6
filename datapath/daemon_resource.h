// One resource in the daemon: the core Node driven by the real world. It executes the Node's
// actions against the io_uring disk, the TCP transport and the NBD clients, and feeds their
// completions back as inputs — all on one io_context thread (one shard), no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>

#include "core/node.h"
#include "core/status.h"
#include "datapath/daemon_config.h"
#include "datapath/nbd_server.h"
#include "datapath/transport_tcp.h"
#include "datapath/uring_buffer_pool.h"
#include "datapath/uring_disk.h"

namespace ditto::datapath {

struct ResourceOptions {
  std::string nbd_host;        // empty: no TCP export
  std::uint16_t nbd_port = 0;
  std::string nbd_socket_path;  // empty: no unix-socket export
  std::size_t buffer_slab_bytes = 64u << 20;
};

class ResourceRunner final : public TransportHandler, public NbdBackend {
 public:
  // Opens the disk (an unreadable disk is an error naming the config location) and builds the
  // transport and NBD server; nothing listens until start().
  static Result<std::unique_ptr<ResourceRunner>> create(boost::asio::io_context& io,
                                                        DaemonConfig config,
                                                        ResourceOptions options);
  ~ResourceRunner() override;

  [[nodiscard]] Status start();
  void stop();

  [[nodiscard]] core::AdminResult admin(const core::AdminCommand& command);
  std::string status_text(core::StatusOptions options) const;
  const core::Node& node() const { return node_; }
  std::uint16_t nbd_port() const { return nbd_ ? nbd_->tcp_port() : 0; }
  std::uint16_t peer_port() const { return transport_->listen_port(); }
  const DaemonConfig& config() const { return config_; }
  std::uint32_t open_sessions() const { return open_sessions_; }
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

 private:
  // A buffer shared by the NBD connection, the core and the disk: freed at zero references.
  struct Slot {
    std::span<std::uint8_t> buffer;
    std::uint32_t references = 0;
  };

  ResourceRunner(boost::asio::io_context& io, DaemonConfig config, ResourceOptions options,
                 std::unique_ptr<UringDisk> disk);

  Instant now() const;
  std::uint64_t allocate_slot(std::span<std::uint8_t> buffer, std::uint32_t references);
  void unreference(std::uint64_t handle);
  std::span<std::uint8_t> slot_buffer(PayloadHandle handle, std::uint32_t length_bytes);

  void pump();
  void execute(core::Action& action);
  void execute_disk(const core::Action& action);
  void arm_timer(const core::ArmTimer& arm);
  void fail_disk_io_later(IoId io);
  void on_disk_completion(std::uint64_t cookie, int result);
  void log(const std::string& line) const;

  boost::asio::io_context& io_;
  DaemonConfig config_;
  ResourceOptions options_;
  std::unique_ptr<UringDisk> disk_;
  AlignedBufferPool pool_;
  core::Node node_;
  std::unique_ptr<TcpTransport> transport_;
  std::unique_ptr<NbdServer> nbd_;

  std::vector<Slot> slots_;  // index = handle - 1
  std::vector<std::uint64_t> free_slots_;
  std::unordered_map<std::uint64_t, std::function<void(std::uint32_t)>> client_done_;
  std::uint64_t next_request_ = 1;
  std::uint64_t next_session_ = 1;
  std::uint32_t open_sessions_ = 0;
  std::deque<IoId> failed_ios_;
  bool pumping_ = false;
  bool stopped_ = false;
  std::function<void(const std::string& line)> event_sink_;
  std::unordered_map<std::uint64_t, std::unique_ptr<boost::asio::steady_timer>> timers_;
  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
};

}  // namespace ditto::datapath
