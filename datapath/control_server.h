// The daemon's control socket: a unix stream socket (mode 0600, so only root or the daemon's
// user may use it) that takes one command line per connection and answers with an exit status
// line followed by text, then closes. dittoadm is its client.
//
// Request:  "<verb> <resource> [--flags...]\n"   e.g. "status r0 --json"
// Response: "<exit status>\n<text>"              0 = success
//
// A reply may instead subscribe the connection to events (dittoadm events2): after the reply
// text the connection stays open and every publish()ed line is written to it, until the client
// closes it; a subscriber may ask for the lines of one resource only (events_resource). A
// subscriber that falls more than subscriber_backlog_bytes_max behind is dropped
// (every queue is bounded).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

#include "core/result.h"

namespace ditto::datapath {

struct ControlReply {
  int exit_status = 0;
  std::string text;
  bool subscribe = false;   // keep the connection open for publish()ed lines
  bool timestamps = false;  // prefix each published line with the local time (events2 format)
  // With subscribe: only lines of this resource (their first `name:` field); empty: every line.
  std::string events_resource = {};
  // A command whose outcome comes later (a promotion's two-phase commit): the session calls
  // `wait` every few milliseconds until it returns the final reply, and sends that instead.
  // The callee bounds the wait (it answers with a timeout error itself).
  std::function<std::optional<ControlReply>()> wait = nullptr;
};

// A plain reply: an exit status and its text (the other fields left as they are by default).
inline ControlReply reply_of(int exit_status, std::string text) {
  ControlReply reply;
  reply.exit_status = exit_status;
  reply.text = std::move(text);
  return reply;
}

class ControlServer {
 public:
  using Handler = std::function<ControlReply(const std::vector<std::string>& words)>;
  static constexpr std::size_t subscriber_backlog_bytes_max = 4u << 20;

  ControlServer(boost::asio::io_context& io, Handler handler);
  ~ControlServer();
  // Replaces the handler; sessions accepted afterwards use the new one (before listen()).
  void set_handler(Handler handler) { handler_ = std::move(handler); }
  [[nodiscard]] Status listen(const std::string& path);
  void stop();
  // Writes `line` (without its newline) to every subscriber.
  void publish(std::string_view line);
  std::size_t subscriber_count() const;

  class Session;  // control_server.cpp

 private:
  void accept();

  boost::asio::io_context& io_;
  Handler handler_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::string path_;
  std::shared_ptr<std::vector<std::weak_ptr<Session>>> subscribers_;
};

// The resource an events2 line is about: the value of its first `name:` field ("" if none).
std::string_view events2_resource(std::string_view line);

// Splits a command line on spaces (no quoting: resource names and flags have no spaces).
std::vector<std::string> split_words(std::string_view line);

// The events2 timestamp of now: YYYY-MM-DDTHH:MM:SS.uuuuuu+HH:MM (local time).
std::string events2_timestamp();

}  // namespace ditto::datapath
