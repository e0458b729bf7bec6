#include "datapath/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ditto::datapath {
namespace {

constexpr std::size_t request_size_max_bytes = 4096;

class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(boost::asio::local::stream_protocol::socket socket,
                 ControlServer::Handler handler)
      : socket_(std::move(socket)), handler_(std::move(handler)) {}

  void start() { read(); }

 private:
  void read() {
    auto self = shared_from_this();
    boost::asio::async_read_until(
        socket_, boost::asio::dynamic_buffer(request_, request_size_max_bytes), '\n',
        [this, self](boost::system::error_code error, std::size_t length) {
          if (error) {
            reply({2, "error: request line missing or longer than 4096 bytes\n"});
            return;
          }
          const std::string line = request_.substr(0, length - 1);
          reply(handler_(split_words(line)));
        });
  }

  void reply(const ControlReply& reply) {
    response_ = std::to_string(reply.exit_status) + "\n" + reply.text;
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(response_),
                             [this, self](boost::system::error_code, std::size_t) {
                               boost::system::error_code ignored;
                               socket_.shutdown(boost::asio::socket_base::shutdown_both, ignored);
                               socket_.close(ignored);
                             });
  }

  boost::asio::local::stream_protocol::socket socket_;
  ControlServer::Handler handler_;
  std::string request_;
  std::string response_;
};

}  // namespace

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::size_t position = 0;
  while (position < line.size()) {
    while (position < line.size() && (line[position] == ' ' || line[position] == '\t')) ++position;
    std::size_t end = position;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
    if (end > position) words.emplace_back(line.substr(position, end - position));
    position = end;
  }
  return words;
}

ControlServer::ControlServer(boost::asio::io_context& io, Handler handler)
    : io_(io), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::listen(const std::string& path) {
  namespace local = boost::asio::local;
  // The default lives in /run/ditto, which may not exist yet: create it, private to root.
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) ::mkdir(path.substr(0, slash).c_str(), 0700);
  ::unlink(path.c_str());  // a stale socket from a previous run
  boost::system::error_code error;
  auto acceptor = std::make_unique<local::stream_protocol::acceptor>(io_);
  acceptor->open(local::stream_protocol(), error);
  if (!error) {
    // Create the socket file with mode 0600: only the daemon's user (root) may connect.
    const mode_t previous = ::umask(0177);
    acceptor->bind(local::stream_protocol::endpoint(path), error);
    ::umask(previous);
  }
  if (!error) acceptor->listen(16, error);
  if (error) {
    return Error{"control socket " + path + ": " + error.message()};
  }
  acceptor_ = std::move(acceptor);
  path_ = path;
  accept();
  return Status::success();
}

void ControlServer::accept() {
  acceptor_->async_accept([this](boost::system::error_code error,
                                 boost::asio::local::stream_protocol::socket socket) {
    if (error) return;  // closed by stop()
    std::make_shared<ControlSession>(std::move(socket), handler_)->start();
    accept();
  });
}

void ControlServer::stop() {
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->close(ignored);
  acceptor_.reset();
  ::unlink(path_.c_str());
}

}  // namespace ditto::datapath
