// One NBD client connection. See nbd_connection.h; § refer to reference/nbd-protocol.md.
#include "datapath/nbd_connection.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/assert.h"

namespace ditto::datapath::nbd_detail {

namespace asio = boost::asio;

namespace {
// Brackets the backend submissions of one handler (NbdBackend::begin_submissions).
class SubmissionBatch {
 public:
  explicit SubmissionBatch(NbdBackend& backend) : backend_(backend) {
    backend_.begin_submissions();
  }
  ~SubmissionBatch() { backend_.end_submissions(); }
  SubmissionBatch(const SubmissionBatch&) = delete;
  SubmissionBatch& operator=(const SubmissionBatch&) = delete;

 private:
  NbdBackend& backend_;
};

// The client closed or reset the socket: an ordinary end, not worth a log line.
bool peer_went_away(const boost::system::error_code& error) {
  return error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::broken_pipe || error == asio::error::operation_aborted;
}
}  // namespace

Connection::Connection(NbdServer& server, Socket socket, std::uint64_t number)
    : server_(&server),
      backend_(server.backend_),
      options_(server.options_),
      socket_(std::move(socket)),
      number_(number),
      retry_timer_(socket_.get_executor()),
      input_(options_.receive_buffer_bytes) {
  DITTO_ASSERT(options_.requests_in_flight_max > 0);
  DITTO_ASSERT(input_.size() >= nbd::request_header_size_bytes);
}

void Connection::start() {
  const auto greeting = nbd::encode_greeting();
  queue_bytes(std::vector<std::uint8_t>(greeting.begin(), greeting.end()));
  read_some();
}

// ---- Input buffering ----

std::span<const std::uint8_t> Connection::available() const {
  return std::span(input_).subspan(input_begin_, input_end_ - input_begin_);
}

void Connection::consume(std::size_t bytes) {
  DITTO_ASSERT(bytes <= input_end_ - input_begin_);
  input_begin_ += bytes;
  if (input_begin_ == input_end_) input_begin_ = input_end_ = 0;
}

// Makes room for `bytes` unconsumed bytes in total, and for some free space after them.
void Connection::reserve_input(std::size_t bytes) {
  const std::size_t held = input_end_ - input_begin_;
  if (input_begin_ > 0 &&
      (input_.size() - input_end_ < input_.size() / 4 || input_.size() - input_begin_ < bytes)) {
    std::memmove(input_.data(), input_.data() + input_begin_, held);
    input_begin_ = 0;
    input_end_ = held;
  }
  if (input_.size() < bytes) input_.resize(bytes);
  DITTO_ASSERT(input_.size() - input_begin_ >= bytes);
}

void Connection::read_some() {
  if (reading_ || (phase_ != Phase::client_flags && phase_ != Phase::options &&
                   phase_ != Phase::transmission)) {
    return;
  }
  reserve_input(input_end_ - input_begin_ + 1);
  DITTO_ASSERT(input_end_ < input_.size());
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(input_.data() + input_end_, input_.size() - input_end_),
      [self = shared_from_this()](const boost::system::error_code& error, std::size_t bytes) {
        self->on_read(error, bytes);
      });
}

void Connection::on_read(const boost::system::error_code& error, std::size_t bytes) {
  reading_ = false;
  if (phase_ == Phase::dead) return maybe_finish();
  if (peer_went_away(error)) {
    // §9: EOF at a header boundary is a normal close (fio never sends DISC); mid-message the
    // partial request is abandoned. Either way, answer what is in flight, then close.
    if (phase_ == Phase::transmission) {
      phase_ = Phase::draining;
      return maybe_finish();
    }
    return die("");
  }
  if (error) return die("read failed: " + error.message());
  input_end_ += bytes;
  process_input();
}

void Connection::process_input() {
  bool want_more = false;
  if (phase_ == Phase::client_flags || phase_ == Phase::options) {
    want_more = process_handshake();
  }
  if (phase_ == Phase::transmission) {
    const SubmissionBatch batch(backend_);
    want_more = process_requests();
  }
  if (want_more) read_some();
  maybe_finish();
}

// ---- Handshake ----

// Returns true when more input is needed to go on.
bool Connection::process_handshake() {
  while (phase_ == Phase::client_flags || phase_ == Phase::options) {
    if (phase_ == Phase::client_flags) {
      const auto parsed = nbd::parse_client_flags(available());
      if (parsed.status == nbd::ParseStatus::need_more) return true;
      if (parsed.status == nbd::ParseStatus::fatal) {
        die(parsed.error);
        return false;
      }
      consume(parsed.consumed_bytes);
      fixed_newstyle_ = (parsed.value & nbd::client_flag_fixed_newstyle) != 0;
      no_zeroes_ = (parsed.value & nbd::client_flag_no_zeroes) != 0;
      phase_ = Phase::options;
      continue;
    }
    const auto parsed = nbd::parse_option(available(), options_.option_length_max_bytes);
    if (parsed.status == nbd::ParseStatus::need_more) {
      reserve_input(parsed.need_bytes);
      return true;
    }
    if (parsed.status == nbd::ParseStatus::fatal) {
      die(parsed.error);
      return false;
    }
    if (hand_off_if_elsewhere(parsed.value)) return false;
    consume(parsed.consumed_bytes);
    handle_option(parsed.value);
  }
  return false;
}

bool Connection::hand_off_if_elsewhere(const nbd::OptionRequest& request) {
  using nbd::OptionKind;
  if (!options_.routes_export || tls_active_) return false;
  if (request.kind != OptionKind::go && request.kind != OptionKind::export_name) return false;
  if (!request.invalid_reason.empty() || (!fixed_newstyle_ && request.kind == OptionKind::go)) {
    return false;  // answered here
  }
  std::string name = request.export_name;
  if (name.empty()) {  // the default export: the first one listed
    const std::optional<NbdExportInfo> info = find_export(name);
    if (!info) return false;
    name = info->name;
  }
  if (!options_.routes_export(name)) return false;  // unknown: ERR_UNKNOWN from here
  if (writing_ || !outgoing_.empty()) {
    hand_off_waiting_ = true;  // on_written comes back once the earlier replies are out
    return true;
  }
  DITTO_ASSERT(!reading_);
  NbdHandOff hand_off;
  hand_off.export_name = name;
  const std::span<const std::uint8_t> unprocessed = available();
  hand_off.input.assign(unprocessed.begin(), unprocessed.end());
  hand_off.fixed_newstyle = fixed_newstyle_;
  hand_off.no_zeroes = no_zeroes_;
  hand_off.structured_replies = structured_replies_;
  hand_off.options_count = options_count_;
  boost::system::error_code error;
  const auto protocol = socket_.socket().local_endpoint(error).protocol();
  if (!error) {
    hand_off.family = protocol.family();
    hand_off.protocol = protocol.protocol();
    hand_off.descriptor = socket_.socket().release(error);
  }
  if (error) {
    die("cannot hand the connection to export '" + name + "': " + error.message());
    return true;
  }
  consume(unprocessed.size());
  phase_ = Phase::dead;  // the socket is no longer ours: finish quietly
  options_.hand_off(std::move(hand_off));
  maybe_finish();
  return true;
}

void Connection::resume(NbdHandOff hand_off) {
  fixed_newstyle_ = hand_off.fixed_newstyle;
  no_zeroes_ = hand_off.no_zeroes;
  structured_replies_ = hand_off.structured_replies;
  options_count_ = hand_off.options_count;
  phase_ = Phase::options;
  reserve_input(hand_off.input.size());
  std::memcpy(input_.data(), hand_off.input.data(), hand_off.input.size());
  input_begin_ = 0;
  input_end_ = hand_off.input.size();
  process_input();
  if (phase_ == Phase::options && !reading_) read_some();
}

void Connection::queue_bytes(std::vector<std::uint8_t> bytes) {
  Outgoing message;
  message.body = std::move(bytes);
  outgoing_.push_back(std::move(message));
  flush_writes();
}

void Connection::handle_option(const nbd::OptionRequest& request) {
  using nbd::OptionKind;
  const std::uint32_t option = request.option;
  if (++options_count_ > options_.options_per_connection_max) {
    return die("more than " + std::to_string(options_.options_per_connection_max) + " options");
  }
  if (!fixed_newstyle_ && request.kind != OptionKind::export_name) {
    return queue_bytes(nbd::encode_option_error(option, nbd::rep_err_invalid,
                                                "client did not agree to fixed newstyle"));
  }
  if (refuse_before_tls(request)) return;
  if (request.kind == OptionKind::export_name) return handle_export_name(request);
  if (!request.invalid_reason.empty()) {
    return queue_bytes(
        nbd::encode_option_error(option, nbd::rep_err_invalid, request.invalid_reason));
  }
  switch (request.kind) {
    case OptionKind::abort:
      queue_bytes(nbd::encode_option_ack(option));
      phase_ = Phase::draining;  // close once the ACK is out
      return;
    case OptionKind::list:
      for (const NbdExportInfo& info : backend_.list_exports()) {
        queue_bytes(nbd::encode_reply_server(option, info.name, info.description));
      }
      return queue_bytes(nbd::encode_option_ack(option));
    case OptionKind::info:
    case OptionKind::go:
      return handle_info_or_go(request);
    case OptionKind::structured_reply:
      if (structured_replies_) {
        return queue_bytes(nbd::encode_option_error(option, nbd::rep_err_invalid,
                                                    "structured replies already negotiated"));
      }
      structured_replies_ = true;
      return queue_bytes(nbd::encode_option_ack(option));
    case OptionKind::list_meta_context:
    case OptionKind::set_meta_context:
      // No metadata contexts (base:allocation) yet: an ACK alone lists/selects none, which
      // qemu reads as "all data" (§2.4 "Meta contexts").
      if (!structured_replies_) {
        return queue_bytes(nbd::encode_option_error(option, nbd::rep_err_invalid,
                                                    "negotiate structured replies first"));
      }
      return queue_bytes(nbd::encode_option_ack(option));
    case OptionKind::starttls:
      return handle_starttls(request);
    case OptionKind::export_name:
    case OptionKind::unknown:
      break;
  }
  queue_bytes(nbd::encode_option_error(option, nbd::rep_err_unsup,
                                       "option " + std::to_string(option) + " is not supported"));
}

std::optional<NbdExportInfo> Connection::find_export(const std::string& name) {
  std::vector<NbdExportInfo> exports = backend_.list_exports();
  if (name.empty() && !exports.empty()) return exports.front();  // the default export
  for (NbdExportInfo& info : exports) {
    if (info.name == name) return std::move(info);
  }
  return std::nullopt;
}

void Connection::handle_info_or_go(const nbd::OptionRequest& request) {
  const bool go = request.kind == nbd::OptionKind::go;
  const std::optional<NbdExportInfo> info = find_export(request.export_name);
  if (!info) {
    return queue_bytes(nbd::encode_option_error(request.option, nbd::rep_err_unknown,
                                                "no export named '" + request.export_name + "'"));
  }
  if (go) {
    Result<std::uint64_t> session = backend_.open_export(info->name);
    if (!session.ok()) {
      return queue_bytes(
          nbd::encode_option_error(request.option, nbd::rep_err_policy, session.error().message));
    }
    session_ = session.value();
  }
  send_export_infos(request, *info, nbd::transmission_flags(*info, structured_replies_));
  queue_bytes(nbd::encode_option_ack(request.option));
  if (go) enter_transmission(*info);
}

void Connection::send_export_infos(const nbd::OptionRequest& request, const NbdExportInfo& info,
                                   std::uint16_t flags) {
  const std::uint32_t option = request.option;
  queue_bytes(nbd::encode_info_export(option, info.size_bytes, flags));
  const auto& wanted = request.info_requests;
  if (std::find(wanted.begin(), wanted.end(), nbd::info_name) != wanted.end()) {
    queue_bytes(nbd::encode_info_text(option, nbd::info_name, info.name));
  }
  if (std::find(wanted.begin(), wanted.end(), nbd::info_description) != wanted.end() &&
      !info.description.empty()) {
    queue_bytes(nbd::encode_info_text(option, nbd::info_description, info.description));
  }
  // Sent even unrequested (allowed, §2.4): it tells every client our 32 MiB maximum.
  queue_bytes(nbd::encode_info_block_size(option, options_.block_size_minimum_bytes,
                                          options_.block_size_preferred_bytes,
                                          options_.payload_size_max_bytes));
}

void Connection::handle_export_name(const nbd::OptionRequest& request) {
  // EXPORT_NAME cannot carry an error: every failure is a hard disconnect (§9).
  if (!request.invalid_reason.empty()) return die(request.invalid_reason);
  const std::optional<NbdExportInfo> info = find_export(request.export_name);
  if (!info) return die("EXPORT_NAME for unknown export '" + request.export_name + "'");
  Result<std::uint64_t> session = backend_.open_export(info->name);
  if (!session.ok()) return die("export '" + info->name + "': " + session.error().message);
  session_ = session.value();
  queue_bytes(nbd::encode_export_name_reply(
      info->size_bytes, nbd::transmission_flags(*info, structured_replies_), no_zeroes_));
  enter_transmission(*info);
}

void Connection::enter_transmission(const NbdExportInfo& info) {
  DITTO_ASSERT(session_.has_value());
  transmission_.export_size_bytes = info.size_bytes;
  transmission_.transmission_flags = nbd::transmission_flags(info, structured_replies_);
  transmission_.structured_replies = structured_replies_;
  transmission_.payload_size_max_bytes = options_.payload_size_max_bytes;
  transmission_.block_size_minimum_bytes = options_.block_size_minimum_bytes;
  phase_ = Phase::transmission;
}

// ---- Transmission ----

// Parses and starts requests from the buffered input. Returns true when more input is needed.
bool Connection::process_requests() {
  while (phase_ == Phase::transmission && !reading_) {
    if (skip_payload_bytes_ > 0) {  // the payload of a rejected WRITE
      const std::size_t skipped = std::min<std::uint64_t>(skip_payload_bytes_, available().size());
      consume(skipped);
      skip_payload_bytes_ -= skipped;
      if (skip_payload_bytes_ > 0) return true;
    }
    if (in_flight_ >= options_.requests_in_flight_max) return false;  // backpressure
    const auto parsed = nbd::parse_request_header(available(), options_.write_skip_max_bytes);
    if (parsed.status == nbd::ParseStatus::need_more) return true;
    if (parsed.status == nbd::ParseStatus::fatal) {
      die(parsed.error);
      return false;
    }
    const nbd::RequestHeader& header = parsed.value;
    const nbd::CheckedRequest checked = nbd::check_request(header, transmission_);
    if (checked.verdict == nbd::RequestVerdict::disconnect) {
      consume(parsed.consumed_bytes);
      phase_ = Phase::draining;  // §4.2: finish in-flight requests, ignore later bytes
      return false;
    }
    if (checked.verdict == nbd::RequestVerdict::reject) {
      consume(parsed.consumed_bytes);
      skip_payload_bytes_ = nbd::request_payload_bytes(header);
      ++in_flight_;
      Request request;
      request.cookie = header.cookie;
      request.io.op = header.type == nbd::cmd_read ? NbdOp::read : NbdOp::write;
      queue_reply(request, checked.error, checked.reason);
      continue;
    }
    if (!start_request(header, checked.io)) return false;
  }
  return false;
}

// Consumes the header and starts one checked request. Returns false (consuming nothing) when
// the backend has no buffer, or when the rest of a WRITE payload is being read.
bool Connection::start_request(const nbd::RequestHeader& header, const NbdIo& io) {
  Request request;
  request.cookie = header.cookie;
  request.io = io;
  if (io.length_bytes == 0 && io.op != NbdOp::flush) {
    // §9: zero length is unspecified; answer success without touching the backend.
    consume(nbd::request_header_size_bytes);
    ++in_flight_;
    queue_reply(request, 0, "");
    return true;
  }
  if (io.op == NbdOp::read || io.op == NbdOp::write) {
    request.buffer = backend_.allocate_buffer(io.length_bytes);
    if (request.buffer.data == nullptr) {
      arm_buffer_retry();
      return false;
    }
    DITTO_ASSERT(request.buffer.size_bytes >= io.length_bytes);
  }
  consume(nbd::request_header_size_bytes);
  ++in_flight_;
  if (io.op == NbdOp::write) {
    const std::size_t copied = std::min<std::size_t>(io.length_bytes, available().size());
    std::memcpy(request.buffer.data, available().data(), copied);
    consume(copied);
    if (copied < io.length_bytes) {
      // Read the rest of the payload straight into the backend's buffer.
      reading_ = true;
      asio::async_read(socket_,
                       asio::buffer(request.buffer.data + copied, io.length_bytes - copied),
                       [self = shared_from_this(), request](const boost::system::error_code& error,
                                                            std::size_t) {
                         self->on_payload_read(error, request);
                       });
      return false;
    }
  }
  submit(request);
  return true;
}

void Connection::on_payload_read(const boost::system::error_code& error, Request request) {
  reading_ = false;
  if (error || phase_ == Phase::dead) {
    // EOF in the middle of a WRITE payload: abandon the partial write (§9).
    backend_.release_buffer(request.buffer);
    --in_flight_;
    return die(error && !peer_went_away(error) ? "read failed: " + error.message() : "");
  }
  const SubmissionBatch batch(backend_);
  submit(request);
  process_input();
}

void Connection::submit(const Request& request) {
  DITTO_ASSERT(session_.has_value());
  ++backend_pending_;
  backend_.submit(*session_, request.io, request.buffer,
                  [self = shared_from_this(), request](std::uint32_t error) {
                    self->on_done(request, error, error == 0 ? "" : "backend I/O failed");
                  });
}

void Connection::on_done(const Request& request, std::uint32_t error, const std::string& reason) {
  DITTO_ASSERT(backend_pending_ > 0);
  --backend_pending_;
  if (request.io.op != NbdOp::read && request.buffer.data != nullptr) {
    backend_.release_buffer(request.buffer);
  }
  if (phase_ == Phase::dead) {
    if (request.io.op == NbdOp::read) backend_.release_buffer(request.buffer);
    --in_flight_;
    return maybe_finish();
  }
  queue_reply(request, error, reason);
}

// Queues the one reply for `request`; READ data goes out from the request's buffer.
void Connection::queue_reply(const Request& request, std::uint32_t error,
                             const std::string& reason) {
  Outgoing message;
  message.ends_request = true;
  const bool read = request.io.op == NbdOp::read;
  const bool has_data = read && error == 0 && request.io.length_bytes > 0;
  if (read && error != 0 && request.buffer.data != nullptr) {
    backend_.release_buffer(request.buffer);
  }
  if (read && structured_replies_) {
    // §4.3: never a simple reply to a READ once structured replies are on.
    if (error != 0) {
      message.body = nbd::encode_error_done(request.cookie, error, reason);
    } else if (has_data) {
      const auto head = nbd::encode_offset_data_done(request.cookie, request.io.offset_bytes,
                                                     request.io.length_bytes);
      std::copy(head.begin(), head.end(), message.head.begin());
      message.head_bytes = head.size();
    } else {
      const auto head = nbd::encode_none_done(request.cookie);
      std::copy(head.begin(), head.end(), message.head.begin());
      message.head_bytes = head.size();
    }
  } else {
    const auto head = nbd::encode_simple_reply(request.cookie, error);
    std::copy(head.begin(), head.end(), message.head.begin());
    message.head_bytes = head.size();
  }
  if (has_data) {
    message.payload = request.buffer;
    message.payload_bytes = request.io.length_bytes;
  }
  outgoing_.push_back(std::move(message));
  schedule_flush_writes();
}

// Replies start going out once the handlers that are ready now have run: the replies of one
// batch of completions (a reap of the disk ring, the acks of one read from a peer) leave in one
// gathered system call instead of the first alone and the rest after its write completed.
void Connection::schedule_flush_writes() {
  if (writing_ || flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->write_replies_now();
  });
}

void Connection::arm_buffer_retry() {
  if (waiting_for_buffer_) return;
  waiting_for_buffer_ = true;
  retry_timer_.expires_after(std::chrono::microseconds(options_.buffer_retry_us));
  retry_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    self->waiting_for_buffer_ = false;
    if (!error && self->phase_ == Phase::transmission) self->process_input();
    self->maybe_finish();
  });
}

// ---- Output ----

// Collects the buffers of the messages at the front of outgoing_ (at most 64) into
// write_buffers_ and counts them in writing_count_. Returns their size in bytes.
std::size_t Connection::gather_writes() {
  DITTO_ASSERT(writing_count_ == 0);
  constexpr std::size_t messages_per_write_max = 64;
  write_buffers_.clear();
  std::size_t total_bytes = 0;
  for (const Outgoing& message : outgoing_) {
    if (writing_count_ == messages_per_write_max) break;
    if (message.head_bytes > 0) {
      write_buffers_.push_back(asio::buffer(message.head.data(), message.head_bytes));
    }
    if (!message.body.empty()) write_buffers_.push_back(asio::buffer(message.body));
    if (message.payload_bytes > 0) {
      write_buffers_.push_back(asio::buffer(message.payload.data, message.payload_bytes));
    }
    total_bytes += message.head_bytes + message.body.size() + message.payload_bytes;
    ++writing_count_;
  }
  return total_bytes;
}

// Starts one gathered write of everything queued, unless a write is already running.
void Connection::flush_writes() {
  if (writing_ || outgoing_.empty() || phase_ == Phase::dead) return;
  gather_writes();
  writing_ = true;
  asio::async_write(socket_, write_buffers_,
                    [self = shared_from_this()](const boost::system::error_code& error,
                                                std::size_t) { self->on_written(error); });
}

// The posted flush of the replies of a batch. On a plain socket the gathered write is tried at
// once, non-blocking: the socket almost always takes all of it, and then the write is done in
// this handler (one sendmsg) instead of a completion handler one loop turn later. What the
// socket does not take goes out with async_write as before. TLS always goes through the stream.
void Connection::write_replies_now() {
  if (writing_ || outgoing_.empty() || phase_ == Phase::dead) return;
  if (tls_active_ || (phase_ != Phase::transmission && phase_ != Phase::draining)) {
    return flush_writes();
  }
  const std::size_t total_bytes = gather_writes();
  boost::system::error_code error;
  Socket& socket = socket_.socket();
  if (!socket.non_blocking()) socket.non_blocking(true, error);
  std::size_t written = 0;
  if (!error) written = socket.write_some(write_buffers_, error);
  if (error == asio::error::would_block || error == asio::error::try_again) {
    error = {};
    written = 0;
  }
  writing_ = true;
  if (error || written == total_bytes) return on_written(error);
  // Partly taken: the rest of the same buffers, after the bytes the socket took.
  std::size_t skip = written;
  std::size_t first = 0;
  while (skip >= write_buffers_[first].size()) skip -= write_buffers_[first++].size();
  write_buffers_.erase(write_buffers_.begin(),
                       write_buffers_.begin() + static_cast<std::ptrdiff_t>(first));
  write_buffers_.front() += skip;
  asio::async_write(socket_, write_buffers_,
                    [self = shared_from_this()](const boost::system::error_code& result,
                                                std::size_t) { self->on_written(result); });
}

void Connection::on_written(const boost::system::error_code& error) {
  DITTO_ASSERT(writing_ && writing_count_ <= outgoing_.size());
  writing_ = false;
  const std::size_t written = writing_count_;
  writing_count_ = 0;
  if (error || phase_ == Phase::dead) {
    drop_unsent(0);
    return die(error && !peer_went_away(error) ? "write failed: " + error.message() : "");
  }
  const bool was_blocked = in_flight_ >= options_.requests_in_flight_max;
  for (std::size_t i = 0; i < written; ++i) {
    Outgoing& message = outgoing_.front();
    if (message.payload.data != nullptr) backend_.release_buffer(message.payload);
    if (message.ends_request) --in_flight_;
    outgoing_.pop_front();
  }
  flush_writes();
  if (phase_ == Phase::tls_handshake && !writing_) start_tls_handshake();  // the ACK is out
  if (hand_off_waiting_ && !writing_ && outgoing_.empty()) {
    hand_off_waiting_ = false;
    process_input();  // parses the chosen option again and hands the connection off
    return;
  }
  if (was_blocked && phase_ == Phase::transmission) process_input();  // resume reading
  maybe_finish();
}

// Releases and forgets queued messages from index `from` on (they will never be written).
void Connection::drop_unsent(std::size_t from) {
  while (outgoing_.size() > from) {
    Outgoing& message = outgoing_.back();
    if (message.payload.data != nullptr) backend_.release_buffer(message.payload);
    if (message.ends_request) --in_flight_;
    outgoing_.pop_back();
  }
}

// ---- Ending ----

void Connection::die(const std::string& reason) {
  if (phase_ == Phase::dead) return;
  if (!reason.empty()) {
    std::fprintf(stderr, "nbd: connection %llu closed: %s\n",
                 static_cast<unsigned long long>(number_), reason.c_str());
  }
  phase_ = Phase::dead;
  boost::system::error_code ignored;
  socket_.close(ignored);  // cancels the outstanding read and write
  retry_timer_.cancel();
  drop_unsent(writing_ ? writing_count_ : 0);
  maybe_finish();
}

void Connection::maybe_finish() {
  if (finished_ || reading_ || writing_ || waiting_for_buffer_ || backend_pending_ > 0) return;
  if (phase_ == Phase::draining) {
    if (in_flight_ > 0 || !outgoing_.empty()) return;
  } else if (phase_ != Phase::dead) {
    return;
  }
  DITTO_ASSERT_EQ(in_flight_, 0u);
  DITTO_ASSERT(outgoing_.empty());
  finished_ = true;
  phase_ = Phase::dead;
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (session_) backend_.close_export(*session_);
  if (server_ != nullptr) server_->forget(this);  // may drop the last owner but one
}

}  // namespace ditto::datapath::nbd_detail
