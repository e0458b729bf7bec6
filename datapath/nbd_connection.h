// One NBD client connection of NbdServer (internal to nbd_server.cpp and its tests).
//
// Lifecycle: client flags → options → transmission → draining (DISC, EOF, ABORT) or dead (bad
// bytes, socket error, server stop) → finished. "Finished" waits until no backend I/O is in
// flight, no socket operation is outstanding and (when draining) every reply is written; only
// then are close_export and the buffers' release done, so nothing is used after it is freed.
//
// Threading: everything runs on the io_context thread that owns the socket; handlers keep the
// connection alive with shared_from_this().
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datapath/nbd_protocol.h"
#include "datapath/nbd_server.h"
#include "datapath/tls_stream.h"

namespace ditto::datapath::nbd_detail {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;
  // The socket, switched to TLS in place after NBD_OPT_STARTTLS (tls_stream.h).
  using Stream = TlsStream<Socket>;

  Connection(NbdServer& server, Socket socket, std::uint64_t number);
  void start();
  // Continues a negotiation another server started (NbdServer::adopt).
  void resume(NbdHandOff hand_off);
  // Closes the socket and abandons unsent replies (server stop). Idempotent.
  void shut_down() { die(""); }
  void detach_server() { server_ = nullptr; }

 private:
  // tls_handshake: STARTTLS was acknowledged; once the ACK is written the TLS handshake runs,
  // then negotiation starts over in `options` (nbd_connection_tls.cpp).
  enum class Phase : std::uint8_t {
    client_flags,
    options,
    tls_handshake,
    transmission,
    draining,
    dead
  };

  struct Request {
    std::uint64_t cookie = 0;
    NbdIo io{NbdOp::read, 0, 0, false};
    NbdBuffer buffer;
  };

  // One whole reply, written contiguously: `head`, then `body`, then `payload_bytes` of
  // `payload` (READ data, released once written).
  struct Outgoing {
    std::array<std::uint8_t, 32> head{};
    std::size_t head_bytes = 0;
    std::vector<std::uint8_t> body;
    NbdBuffer payload;
    std::size_t payload_bytes = 0;
    bool ends_request = false;  // writing it ends one request in flight
  };

  // Input buffering.
  std::span<const std::uint8_t> available() const;
  void consume(std::size_t bytes);
  void reserve_input(std::size_t bytes);
  void read_some();
  void on_read(const boost::system::error_code& error, std::size_t bytes);
  void process_input();

  // Handshake.
  bool process_handshake();
  void handle_option(const nbd::OptionRequest& request);
  void handle_info_or_go(const nbd::OptionRequest& request);
  void handle_export_name(const nbd::OptionRequest& request);
  // Daemon-wide listener: true when `request` (not yet consumed) was handed off or waits for
  // earlier replies to be written before it is.
  bool hand_off_if_elsewhere(const nbd::OptionRequest& request);
  // TLS (nbd_connection_tls.cpp). refuse_before_tls: true when TLS is required and not yet up,
  // and `request` was answered (ERR_TLS_REQD) or ended the connection (EXPORT_NAME).
  bool refuse_before_tls(const nbd::OptionRequest& request);
  void handle_starttls(const nbd::OptionRequest& request);
  void start_tls_handshake();
  void on_tls_handshake(const boost::system::error_code& error);
  void send_export_infos(const nbd::OptionRequest& request, const NbdExportInfo& info,
                         std::uint16_t flags);
  std::optional<NbdExportInfo> find_export(const std::string& name);
  void enter_transmission(const NbdExportInfo& info);
  void queue_bytes(std::vector<std::uint8_t> bytes);

  // Transmission.
  bool process_requests();
  bool start_request(const nbd::RequestHeader& header, const NbdIo& io);
  void on_payload_read(const boost::system::error_code& error, Request request);
  void submit(const Request& request);
  void on_done(const Request& request, std::uint32_t error, const std::string& reason);
  void queue_reply(const Request& request, std::uint32_t error, const std::string& reason);
  void arm_buffer_retry();

  // Output.
  std::size_t gather_writes();
  void flush_writes();
  void schedule_flush_writes();
  void write_replies_now();
  void on_written(const boost::system::error_code& error);
  void drop_unsent(std::size_t from);

  // Ending.
  void die(const std::string& reason);
  void maybe_finish();

  NbdServer* server_;
  NbdBackend& backend_;
  const NbdServerOptions options_;
  Stream socket_;
  const std::uint64_t number_;
  boost::asio::steady_timer retry_timer_;

  Phase phase_ = Phase::client_flags;
  std::vector<std::uint8_t> input_;
  std::size_t input_begin_ = 0;
  std::size_t input_end_ = 0;
  bool reading_ = false;
  bool waiting_for_buffer_ = false;
  std::uint64_t skip_payload_bytes_ = 0;

  bool fixed_newstyle_ = false;
  bool no_zeroes_ = false;
  bool structured_replies_ = false;
  bool tls_active_ = false;  // the TLS handshake after STARTTLS succeeded
  bool tls_refusal_logged_ = false;  // one log line per plain client, not one per option
  bool hand_off_waiting_ = false;    // an export chosen elsewhere; earlier replies still queued
  std::uint32_t options_count_ = 0;
  std::optional<std::uint64_t> session_;
  nbd::TransmissionState transmission_;

  std::uint32_t in_flight_ = 0;        // parsed, reply not yet written or dropped
  std::uint32_t backend_pending_ = 0;  // submitted, done not yet called
  std::deque<Outgoing> outgoing_;
  std::vector<boost::asio::const_buffer> write_buffers_;
  std::size_t writing_count_ = 0;  // messages at the front of outgoing_ being written
  bool writing_ = false;
  bool flush_scheduled_ = false;  // a posted flush_writes is pending (schedule_flush_writes)
  bool finished_ = false;
};

}  // namespace ditto::datapath::nbd_detail
