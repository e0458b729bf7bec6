// The daemon's control socket: a unix stream socket (mode 0600, so only root or the daemon's
// user may use it) that takes one command line per connection and answers with an exit status
// line followed by text, then closes. dittoadm is its client.
//
// Request:  "<verb> <resource> [--flags...]\n"   e.g. "status r0 --json"
// Response: "<exit status>\n<text>"              0 = success
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio.hpp>

#include "core/result.h"

namespace ditto::datapath {

struct ControlReply {
  int exit_status = 0;
  std::string text;
};

class ControlServer {
 public:
  using Handler = std::function<ControlReply(const std::vector<std::string>& words)>;

  ControlServer(boost::asio::io_context& io, Handler handler);
  ~ControlServer();
  [[nodiscard]] Status listen(const std::string& path);
  void stop();

 private:
  void accept();

  boost::asio::io_context& io_;
  Handler handler_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::string path_;
};

// Splits a command line on spaces (no quoting: resource names and flags have no spaces).
std::vector<std::string> split_words(std::string_view line);

}  // namespace ditto::datapath
