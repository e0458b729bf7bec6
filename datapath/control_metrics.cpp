#include "datapath/control_metrics.h"

#include <array>
#include <cstdlib>
#include <map>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ditto::datapath {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

constexpr std::array connection_states{
    ConnectionState::standalone,     ConnectionState::disconnecting, ConnectionState::unconnected,
    ConnectionState::timeout,        ConnectionState::broken_pipe,
    ConnectionState::network_failure, ConnectionState::protocol_error,
    ConnectionState::tear_down,      ConnectionState::connecting,    ConnectionState::connected};
constexpr std::array disk_states{
    DiskState::diskless,     DiskState::attaching, DiskState::detaching, DiskState::failed,
    DiskState::negotiating,  DiskState::inconsistent, DiskState::outdated, DiskState::dunknown,
    DiskState::consistent,   DiskState::up_to_date};

class Exposition {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    text_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const std::string& labels, std::uint64_t value) {
    text_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(value) +
             "\n";
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string label(const char* key, const std::string& value) {
  return std::string(key) + "=\"" + value + "\"";
}

void resource_metrics(const ResourceRunner& runner, Exposition& out) {
  const core::Node& node = runner.node();
  const std::string name = label("name", node.config().resource_name);
  out.family("drbd_resource_resources", "gauge", "Number of resources");
  out.sample("drbd_resource_resources", "", 1);
  out.family("drbd_resource_role", "gauge", "Role of the resource (one-hot)");
  for (Role role : {Role::primary, Role::secondary, Role::unknown}) {
    out.sample("drbd_resource_role",
               name + "," + label("drbd_resource_role", std::string(to_string(role))),
               node.role() == role ? 1 : 0);
  }
  out.family("drbd_resource_suspended", "gauge", "Resource suspended");
  out.sample("drbd_resource_suspended", name, node.suspended_reason() != "no" ? 1 : 0);
  out.family("drbd_resource_maypromote", "gauge", "Resource may be promoted");
  out.sample("drbd_resource_maypromote", name, node.may_promote() ? 1 : 0);
  out.family("drbd_resource_promotionscore", "gauge", "Promotion score");
  out.sample("drbd_resource_promotionscore", name, node.promotion_score());
  out.family("drbd_resource_forceiofailures", "gauge", "Resource forces I/O failures");
  out.sample("drbd_resource_forceiofailures", name, 0);
}

void device_metrics(const ResourceRunner& runner, Exposition& out) {
  const core::Node& node = runner.node();
  const std::uint32_t minor = runner.config().self.volumes.front().minor.value_or(0);
  const std::string labels = label("name", node.config().resource_name) + "," +
                             label("volume", "0") + "," + label("minor", std::to_string(minor));
  out.family("drbd_device_state", "gauge", "Disk state of the device (one-hot)");
  for (DiskState state : disk_states) {
    out.sample("drbd_device_state",
               labels + "," + label("drbd_device_state", std::string(to_string(state))),
               node.disk_state() == state ? 1 : 0);
  }
  const bool diskless = node.disk_state() == DiskState::diskless;
  const bool client = runner.config().diskless;
  const core::NodeStatistics& statistics = node.statistics();
  const std::array<std::tuple<const char*, const char*, const char*, std::uint64_t>, 10> rows{{
      {"drbd_device_client", "gauge", "Device is a diskless client", client ? 1u : 0u},
      {"drbd_device_unintentionaldiskless", "gauge", "Diskless without being a client",
       diskless && !client ? 1u : 0u},
      {"drbd_device_quorum", "gauge", "Device has quorum", node.have_quorum() ? 1u : 0u},
      {"drbd_device_open", "gauge", "Device is open", runner.open_sessions() > 0 ? 1u : 0u},
      {"drbd_device_size_bytes", "gauge", "Device size", node.size_bytes()},
      {"drbd_device_upperpending", "gauge", "Requests from above in progress",
       statistics.upper_pending},
      {"drbd_device_lowerpending", "gauge", "Requests to the disk in progress",
       statistics.lower_pending},
      {"drbd_device_alsuspended", "gauge", "Activity log suspended", 0},
      {"drbd_device_read_bytes_total", "counter", "Bytes read", statistics.read_bytes},
      {"drbd_device_written_bytes_total", "counter", "Bytes written", statistics.written_bytes},
  }};
  for (const auto& [metric, type, help, value] : rows) {
    out.family(metric, type, help);
    out.sample(metric, labels, value);
  }
}

void connection_metrics(const ResourceRunner& runner, Exposition& out) {
  const core::Node& node = runner.node();
  const std::vector<core::PeerStatus> peers = node.peers();
  auto labels_of = [&](const core::PeerStatus& peer) {
    return label("name", node.config().resource_name) + "," + label("conn_name", peer.name) +
           "," + label("peer_node_id", std::to_string(peer.node_id.value));
  };
  out.family("drbd_connection_state", "gauge", "Connection state (one-hot)");
  for (const core::PeerStatus& peer : peers) {
    for (ConnectionState state : connection_states) {
      out.sample("drbd_connection_state",
                 labels_of(peer) + "," +
                     label("drbd_connection_state", std::string(to_string(state))),
                 peer.connection == state ? 1 : 0);
    }
  }
  out.family("drbd_connection_congested", "gauge", "Connection congested");
  for (const core::PeerStatus& peer : peers) {
    out.sample("drbd_connection_congested", labels_of(peer), peer.congested ? 1 : 0);
  }
  out.family("drbd_connection_apinflight_bytes", "gauge", "Application writes in flight");
  for (const core::PeerStatus& peer : peers) {
    out.sample("drbd_connection_apinflight_bytes", labels_of(peer),
               runner.transport().send_queue_bytes(peer.node_id));
  }
  const std::array<std::tuple<const char*, const char*, const char*>, 3> rows{{
      {"drbd_peerdevice_outofsync_bytes", "gauge", "Bytes out of sync with the peer"},
      {"drbd_peerdevice_sent_bytes", "counter", "Bytes sent to the peer"},
      {"drbd_peerdevice_received_bytes", "counter", "Bytes received from the peer"},
  }};
  for (const auto& [metric, type, help] : rows) {
    out.family(metric, type, help);
    for (const core::PeerStatus& peer : peers) {
      const std::string metric_name = metric;
      std::uint64_t value = 0;
      if (metric_name == "drbd_peerdevice_sent_bytes") value = peer.sent_bytes;
      if (metric_name == "drbd_peerdevice_received_bytes") value = peer.received_bytes;
      out.sample(metric, labels_of(peer) + "," + label("volume", "0"), value);
    }
  }
}

class MetricsSession : public std::enable_shared_from_this<MetricsSession> {
 public:
  MetricsSession(tcp::socket socket, std::function<std::string()> render)
      : stream_(std::move(socket)), render_(std::move(render)) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, request_,
                     [this, self](beast::error_code error, std::size_t) {
                       if (error) return;
                       respond();
                     });
  }

 private:
  void respond() {
    response_.version(request_.version());
    response_.keep_alive(false);
    if (request_.method() != http::verb::get || request_.target() != "/metrics") {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "only GET /metrics is served here\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4");
      response_.body() = render_();
    }
    response_.prepare_payload();
    auto self = shared_from_this();
    http::async_write(stream_, response_, [this, self](beast::error_code, std::size_t) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  std::function<std::string()> render_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

std::string metrics_text(const ResourceRunner& runner) {
  Exposition out;
  resource_metrics(runner, out);
  device_metrics(runner, out);
  connection_metrics(runner, out);
  return out.take();
}

std::string merge_metrics_texts(const std::vector<std::string>& texts) {
  struct Family {
    std::string header;  // the HELP and TYPE lines
    std::string samples;
    // A series without labels (drbd_resource_resources: how many resources) is per daemon:
    // the resources' values are summed. Name → sum.
    std::map<std::string, std::uint64_t> unlabeled;
  };
  std::vector<std::string> order;
  std::map<std::string, Family> families;
  for (const std::string& text : texts) {
    std::string current;  // the family the following samples belong to
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(start, end - start) + "\n";
      start = end + 1;
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        const std::size_t name_end = line.find(' ', 7);
        current = line.substr(7, name_end - 7);
        auto [found, inserted] = families.try_emplace(current);
        if (inserted) order.push_back(current);
        if (found->second.header.find(line.substr(0, 7)) == std::string::npos) {
          found->second.header += line;
        }
        continue;
      }
      if (current.empty()) current = line.substr(0, line.find_first_of("{ "));
      auto [found, inserted] = families.try_emplace(current);
      if (inserted) order.push_back(current);
      const std::size_t space = line.find(' ');
      if (line.find('{') == std::string::npos && space != std::string::npos) {
        found->second.unlabeled[line.substr(0, space)] +=
            std::strtoull(line.c_str() + space + 1, nullptr, 10);
        continue;
      }
      found->second.samples += line;
    }
  }
  std::string merged;
  for (const std::string& name : order) {
    const Family& family = families[name];
    merged += family.header;
    for (const auto& [series, sum] : family.unlabeled) {
      merged += series + " " + std::to_string(sum) + "\n";
    }
    merged += family.samples;
  }
  return merged;
}

MetricsServer::MetricsServer(boost::asio::io_context& io, std::function<std::string()> render)
    : io_(io), render_(std::move(render)) {}

MetricsServer::MetricsServer(boost::asio::io_context& io, const ResourceRunner& runner)
    : MetricsServer(io, [&runner] { return metrics_text(runner); }) {}

MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::listen(const std::string& host, std::uint16_t port) {
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(host, error);
  if (error) return Error{"--metrics: '" + host + "' is not an IP address"};
  auto acceptor = std::make_unique<tcp::acceptor>(io_);
  const tcp::endpoint endpoint(address, port);
  acceptor->open(endpoint.protocol(), error);
  if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor->bind(endpoint, error);
  if (!error) acceptor->listen(16, error);
  if (error) {
    return Error{"--metrics: cannot listen on " + host + ":" + std::to_string(port) + ": " +
                 error.message()};
  }
  port_ = acceptor->local_endpoint().port();
  acceptor_ = std::move(acceptor);
  accept();
  return Status::success();
}

void MetricsServer::accept() {
  acceptor_->async_accept([this](boost::system::error_code error, tcp::socket socket) {
    if (error) return;  // closed by stop()
    std::make_shared<MetricsSession>(std::move(socket), render_)->start();
    accept();
  });
}

void MetricsServer::stop() {
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->close(ignored);
  acceptor_.reset();
}

}  // namespace ditto::datapath
