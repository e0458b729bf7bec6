#include "faults/impairment_proxy.h"

#include <utility>  // before Boost.Asio's awaitable.hpp, which uses std::exchange unincluded

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <future>
#include <list>

#include "core/prng.h"

namespace ditto::faults {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr std::size_t chunk_bytes_max = 64 * 1024;
// A direction holds at most this much read but not yet written (then it stops reading, and TCP
// pushes back on the sender).
constexpr std::size_t queued_bytes_max = 4u << 20;
constexpr auto blocked_poll = std::chrono::milliseconds(2);

struct Chunk {
  Clock::time_point deliver_at;
  std::vector<char> bytes;
};

}  // namespace

struct ImpairmentLayer::Io {
  asio::io_context context;
  asio::executor_work_guard<asio::io_context::executor_type> guard{context.get_executor()};
};

// One forwarded connection: the dialer's socket, the acceptor's, and a queue per direction.
struct Session : std::enable_shared_from_this<Session> {
  explicit Session(asio::io_context& context)
      : sockets{tcp::socket(context), tcp::socket(context)},
        wake{asio::steady_timer(context), asio::steady_timer(context)} {}
  tcp::socket sockets[2];  // [0] the dialer's side, [1] the acceptor's
  asio::steady_timer wake[2];
  std::deque<Chunk> queues[2];
  std::size_t queued_bytes[2] = {0, 0};
  Clock::time_point last_delivery[2];
  Clock::time_point rate_free_at[2];
  bool closed = false;

  void close(bool reset) {
    if (closed) return;
    closed = true;
    for (tcp::socket& socket : sockets) {
      error_code ignored;
      if (reset) socket.set_option(asio::socket_base::linger(true, 0), ignored);
      socket.close(ignored);
    }
    for (asio::steady_timer& timer : wake) timer.cancel();
  }
};

struct ImpairmentLayer::Proxy {
  Proxy(asio::io_context& context, std::uint16_t listen_port, std::uint16_t upstream,
        std::uint64_t seed_value)
      : acceptor(context, tcp::endpoint(asio::ip::address_v4::loopback(), listen_port)),
        upstream_port(upstream),
        seed(seed_value) {}
  tcp::acceptor acceptor;
  std::uint16_t upstream_port;
  std::uint64_t seed;
  DirectionImpairment impairments[2];
  Prng prngs[2] = {Prng::derive(seed, 1), Prng::derive(seed, 2)};
  std::list<std::weak_ptr<Session>> sessions;
  ProxyStatistics statistics;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> start_session(tcp::socket dialer);
  asio::awaitable<void> read_loop(std::shared_ptr<Session> session, int direction);
  asio::awaitable<void> write_loop(std::shared_ptr<Session> session, int direction);
  Clock::time_point delivery_time(Session& session, int direction, std::size_t size);
};

namespace {

asio::awaitable<void> sleep_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(duration);
  error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace

asio::awaitable<void> ImpairmentLayer::Proxy::accept_loop() {
  for (;;) {
    error_code error;
    tcp::socket dialer = co_await acceptor.async_accept(
        asio::redirect_error(asio::use_awaitable, error));
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) continue;
    asio::co_spawn(acceptor.get_executor(), start_session(std::move(dialer)), asio::detached);
  }
}

asio::awaitable<void> ImpairmentLayer::Proxy::start_session(tcp::socket dialer) {
  auto session = std::make_shared<Session>(
      static_cast<asio::io_context&>(acceptor.get_executor().context()));
  session->sockets[0] = std::move(dialer);
  // Registered before the upstream connect, so a reset now reaches it too.
  sessions.remove_if([](const std::weak_ptr<Session>& entry) { return entry.expired(); });
  sessions.push_back(session);
  error_code error;
  co_await session->sockets[1].async_connect(
      tcp::endpoint(asio::ip::address_v4::loopback(), upstream_port),
      asio::redirect_error(asio::use_awaitable, error));
  if (error || session->closed) {
    session->close(true);  // the acceptor is down: the dialer sees the refusal as a reset
    co_return;
  }
  for (tcp::socket& socket : session->sockets) {
    socket.set_option(tcp::no_delay(true), error);
  }
  statistics.connections += 1;
  const auto executor = acceptor.get_executor();
  for (int direction = 0; direction < 2; ++direction) {
    asio::co_spawn(executor, read_loop(session, direction), asio::detached);
    asio::co_spawn(executor, write_loop(session, direction), asio::detached);
  }
}

Clock::time_point ImpairmentLayer::Proxy::delivery_time(Session& session, int direction,
                                                        std::size_t size) {
  const DirectionImpairment& impairment = impairments[direction];
  Clock::time_point at = Clock::now();
  if (impairment.delay) {
    at += std::chrono::nanoseconds(impairment.delay->sample(prngs[direction]).ns);
  }
  // A link keeps its order: a chunk never overtakes the one before it.
  at = std::max(at, session.last_delivery[direction]);
  if (impairment.rate_bytes_per_second > 0) {
    at = std::max(at, session.rate_free_at[direction]);
    const auto transmit_ns =
        static_cast<std::int64_t>(size * 1'000'000'000ull / impairment.rate_bytes_per_second);
    session.rate_free_at[direction] = at + std::chrono::nanoseconds(transmit_ns);
    at = session.rate_free_at[direction];
  }
  session.last_delivery[direction] = at;
  return at;
}

asio::awaitable<void> ImpairmentLayer::Proxy::read_loop(std::shared_ptr<Session> session,
                                                        int direction) {
  tcp::socket& from = session->sockets[direction];
  while (!session->closed) {
    std::vector<char> bytes(chunk_bytes_max);
    error_code error;
    const std::size_t got = co_await from.async_read_some(
        asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      session->close(false);
      co_return;
    }
    bytes.resize(got);
    const std::uint32_t loss = impairments[direction].loss_percent;
    if (loss > 0 && prngs[direction].below(100) < loss) {
      statistics.resets += 1;
      session->close(true);
      co_return;
    }
    session->queued_bytes[direction] += got;
    session->queues[direction].push_back(
        Chunk{delivery_time(*session, direction, got), std::move(bytes)});
    session->wake[direction].cancel();
    while (!session->closed && session->queued_bytes[direction] > queued_bytes_max) {
      co_await sleep_for(std::chrono::milliseconds(1));
    }
  }
}

asio::awaitable<void> ImpairmentLayer::Proxy::write_loop(std::shared_ptr<Session> session,
                                                         int direction) {
  tcp::socket& to = session->sockets[1 - direction];
  asio::steady_timer& wake = session->wake[direction];
  while (!session->closed) {
    std::deque<Chunk>& queue = session->queues[direction];
    error_code error;
    if (queue.empty()) {
      wake.expires_at(Clock::time_point::max());
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, error));
      continue;
    }
    if (impairments[direction].blocked) {  // a partition: hold everything
      co_await sleep_for(blocked_poll);
      continue;
    }
    if (Clock::now() < queue.front().deliver_at) {
      wake.expires_at(queue.front().deliver_at);
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, error));
      continue;
    }
    Chunk chunk = std::move(queue.front());
    queue.pop_front();
    session->queued_bytes[direction] -= chunk.bytes.size();
    co_await asio::async_write(to, asio::buffer(chunk.bytes),
                               asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      session->close(false);
      co_return;
    }
    statistics.bytes[direction] += chunk.bytes.size();
  }
}

ImpairmentLayer::ImpairmentLayer() : io_(std::make_unique<Io>()) {
  thread_ = std::thread([this] { io_->context.run(); });
}

ImpairmentLayer::~ImpairmentLayer() {
  run_on_io([this] {
    for (const std::shared_ptr<Proxy>& proxy : proxies_) {
      error_code ignored;
      proxy->acceptor.close(ignored);
      for (const std::weak_ptr<Session>& entry : proxy->sessions) {
        if (auto session = entry.lock()) session->close(false);
      }
    }
  });
  io_->guard.reset();
  io_->context.stop();
  thread_.join();
}

template <class Function>
void ImpairmentLayer::run_on_io(Function function) {
  std::promise<void> done;
  asio::post(io_->context, [&] {
    function();
    done.set_value();
  });
  done.get_future().wait();
}

int ImpairmentLayer::add_proxy(std::uint16_t listen_port, std::uint16_t upstream_port,
                               std::uint64_t seed) {
  auto proxy = std::make_shared<Proxy>(io_->context, listen_port, upstream_port, seed);
  run_on_io([&] {
    proxies_.push_back(proxy);
    asio::co_spawn(io_->context, proxy->accept_loop(), asio::detached);
  });
  return static_cast<int>(proxies_.size()) - 1;
}

void ImpairmentLayer::set(int proxy, int direction, const DirectionImpairment& impairment) {
  run_on_io([&] {
    Proxy& target = *proxies_.at(static_cast<std::size_t>(proxy));
    target.impairments[direction] = impairment;
    for (const std::weak_ptr<Session>& entry : target.sessions) {
      if (auto session = entry.lock()) session->wake[direction].cancel();
    }
  });
}

void ImpairmentLayer::reset_connections(int proxy) {
  run_on_io([&] {
    Proxy& target = *proxies_.at(static_cast<std::size_t>(proxy));
    for (const std::weak_ptr<Session>& entry : target.sessions) {
      if (auto session = entry.lock(); session && !session->closed) {
        target.statistics.resets += 1;
        session->close(true);
      }
    }
  });
}

ProxyStatistics ImpairmentLayer::statistics(int proxy) {
  ProxyStatistics copy;
  run_on_io([&] { copy = proxies_.at(static_cast<std::size_t>(proxy))->statistics; });
  return copy;
}

}  // namespace ditto::faults
