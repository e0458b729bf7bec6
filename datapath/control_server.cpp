#include "datapath/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>

namespace ditto::datapath {
namespace {

constexpr std::size_t request_size_max_bytes = 4096;
using Socket = boost::asio::local::stream_protocol::socket;

}  // namespace

class ControlServer::Session : public std::enable_shared_from_this<ControlServer::Session> {
 public:
  Session(Socket socket, ControlServer::Handler handler,
          std::shared_ptr<std::vector<std::weak_ptr<Session>>> subscribers)
      : socket_(std::move(socket)),
        handler_(std::move(handler)),
        subscribers_(std::move(subscribers)) {}

  void start() { read(); }

  // Queues one line for a subscriber; drops the subscriber if it is too far behind.
  void push(std::string line) {
    if (closed_) return;
    if (!resource_.empty() && events2_resource(line) != resource_) return;
    if (timestamps_) line = events2_timestamp() + " " + line;
    line += '\n';
    backlog_bytes_ += line.size();
    if (backlog_bytes_ > ControlServer::subscriber_backlog_bytes_max) {
      std::fprintf(stderr, "dittod: dropping an events2 subscriber that fell behind\n");
      close();
      return;
    }
    outgoing_.push_back(std::move(line));
    if (outgoing_.size() == 1) write_next();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::socket_base::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  std::unique_ptr<boost::asio::steady_timer> timer_;

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
    if (reply.wait) {
      wait_for(reply.wait);
      return;
    }
    timestamps_ = reply.timestamps;
    resource_ = reply.events_resource;
    if (reply.subscribe && reply.exit_status == 0) {
      subscribers_->push_back(weak_from_this());
      push_raw(std::to_string(reply.exit_status) + "\n" + reply.text);
      watch_for_close();
      return;
    }
    response_ = std::to_string(reply.exit_status) + "\n" + reply.text;
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(response_),
                             [this, self](boost::system::error_code, std::size_t) { close(); });
  }

  // Polls a deferred outcome on a timer; the io_context keeps running meanwhile, so the core
  // can finish its two-phase commit.
  void wait_for(std::function<std::optional<ControlReply>()> poll) {
    if (auto done = poll()) {
      reply(*done);
      return;
    }
    if (!timer_) timer_ = std::make_unique<boost::asio::steady_timer>(socket_.get_executor());
    timer_->expires_after(std::chrono::milliseconds(5));
    auto self = shared_from_this();
    timer_->async_wait([this, self, poll = std::move(poll)](boost::system::error_code error) {
      if (error || closed_) return;
      wait_for(poll);
    });
  }

  void push_raw(std::string text) {
    backlog_bytes_ += text.size();
    outgoing_.push_back(std::move(text));
    if (outgoing_.size() == 1) write_next();
  }

  void write_next() {
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(outgoing_.front()),
                             [this, self](boost::system::error_code error, std::size_t) {
                               if (error || closed_) {
                                 close();
                                 return;
                               }
                               backlog_bytes_ -= outgoing_.front().size();
                               outgoing_.pop_front();
                               if (!outgoing_.empty()) write_next();
                             });
  }

  // A subscriber sends nothing more; a completed read means it hung up.
  void watch_for_close() {
    auto self = shared_from_this();
    socket_.async_read_some(boost::asio::buffer(discard_),
                            [this, self](boost::system::error_code error, std::size_t) {
                              if (error) {
                                close();
                                return;
                              }
                              watch_for_close();
                            });
  }

  Socket socket_;
  ControlServer::Handler handler_;
  std::shared_ptr<std::vector<std::weak_ptr<Session>>> subscribers_;
  std::string request_;
  std::string response_;
  std::deque<std::string> outgoing_;
  std::size_t backlog_bytes_ = 0;
  std::array<char, 256> discard_{};
  std::string resource_;  // events of this resource only; empty: all
  bool timestamps_ = false;
  bool closed_ = false;
};

std::string_view events2_resource(std::string_view line) {
  std::size_t position = 0;
  while (position < line.size()) {
    const std::size_t end = std::min(line.find(' ', position), line.size());
    const std::string_view word = line.substr(position, end - position);
    if (word.substr(0, 5) == "name:") return word.substr(5);
    position = end + 1;
  }
  return {};
}

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

std::string events2_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          now.time_since_epoch())
                          .count() %
                      1'000'000;
  std::tm local{};
  ::localtime_r(&seconds, &local);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &local);
  const long offset_minutes = local.tm_gmtoff / 60;
  char text[64];
  std::snprintf(text, sizeof(text), "%s.%06lld%c%02ld:%02ld", date,
                static_cast<long long>(micros), offset_minutes < 0 ? '-' : '+',
                std::labs(offset_minutes) / 60, std::labs(offset_minutes) % 60);
  return text;
}

ControlServer::ControlServer(boost::asio::io_context& io, Handler handler)
    : io_(io),
      handler_(std::move(handler)),
      subscribers_(std::make_shared<std::vector<std::weak_ptr<Session>>>()) {}

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
  acceptor_->async_accept([this](boost::system::error_code error, Socket socket) {
    if (error) return;  // closed by stop()
    std::make_shared<Session>(std::move(socket), handler_, subscribers_)->start();
    accept();
  });
}

void ControlServer::publish(std::string_view line) {
  std::erase_if(*subscribers_, [](const std::weak_ptr<Session>& weak) { return weak.expired(); });
  // Copy first: pushing may close a session, which does not touch the list, but stay safe.
  const auto sessions = *subscribers_;
  for (const auto& weak : sessions) {
    if (auto session = weak.lock()) session->push(std::string(line));
  }
}

std::size_t ControlServer::subscriber_count() const {
  return static_cast<std::size_t>(std::count_if(
      subscribers_->begin(), subscribers_->end(),
      [](const std::weak_ptr<Session>& weak) { return !weak.expired(); }));
}

void ControlServer::stop() {
  for (const auto& weak : *subscribers_) {
    if (auto session = weak.lock()) session->close();
  }
  subscribers_->clear();
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->close(ignored);
  acceptor_.reset();
  ::unlink(path_.c_str());
}

}  // namespace ditto::datapath
