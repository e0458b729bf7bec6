// Loopback TCP, the floor under the replication traffic here, in two modes:
//   round trips: a client and a server thread exchange a small message back and forth over
//     127.0.0.1 with TCP_NODELAY, the floor under any replicated write's latency;
//   stream: the client writes message_bytes chunks for the given seconds, the server thread
//     reads them (default socket buffers, as dittod's peer connections), the ceiling of a resync.
// Usage: ditto-bench-tcp-rtt [round_trips] [message_bytes]   (prints p50 and p99 in µs)
//        ditto-bench-tcp-rtt stream [seconds] [message_bytes]  (prints MiB/s)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

bool full_read(int fd, char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::read(fd, data + done, size - done);
    if (got <= 0) return false;
    done += static_cast<std::size_t>(got);
  }
  return true;
}

bool full_write(int fd, const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t put = ::write(fd, data + done, size - done);
    if (put <= 0) return false;
    done += static_cast<std::size_t>(put);
  }
  return true;
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// A listener on 127.0.0.1 at an ephemeral port, its address in `address`; -1 on failure.
int listen_loopback(sockaddr_in& address) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  address = sockaddr_in{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listener < 0 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("listen");
    return -1;
  }
  return listener;
}

int connect_to(const sockaddr_in& address) {
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    std::perror("connect");
    return -1;
  }
  no_delay(client);
  return client;
}

int run_round_trips(int round_trips, std::size_t message_bytes) {
  sockaddr_in address;
  const int listener = listen_loopback(address);
  if (listener < 0) return 1;
  std::thread server([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    no_delay(fd);
    std::vector<char> buffer(message_bytes);
    while (full_read(fd, buffer.data(), buffer.size()) &&
           full_write(fd, buffer.data(), buffer.size())) {
    }
    ::close(fd);
  });
  const int client = connect_to(address);
  if (client < 0) return 1;
  std::vector<char> buffer(message_bytes, 'x');
  std::vector<double> samples_us;
  samples_us.reserve(static_cast<std::size_t>(round_trips));
  for (int i = 0; i < round_trips; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (!full_write(client, buffer.data(), buffer.size()) ||
        !full_read(client, buffer.data(), buffer.size())) {
      std::fprintf(stderr, "round trip failed\n");
      return 1;
    }
    const auto end = std::chrono::steady_clock::now();
    samples_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  ::close(client);
  server.join();
  ::close(listener);
  std::sort(samples_us.begin(), samples_us.end());
  const auto at = [&](double fraction) {
    return samples_us[static_cast<std::size_t>(fraction * (samples_us.size() - 1))];
  };
  std::printf("tcp_rtt_us p50=%.1f p99=%.1f bytes=%zu round_trips=%d\n", at(0.50), at(0.99),
              message_bytes, round_trips);
  return 0;
}

// The client streams for `seconds`; the rate counts the bytes the server has read by the time
// it sees the end of the stream, over the time from the first write to that moment.
int run_stream(double seconds, std::size_t message_bytes) {
  sockaddr_in address;
  const int listener = listen_loopback(address);
  if (listener < 0) return 1;
  std::uint64_t received_bytes = 0;
  std::chrono::steady_clock::time_point received_end;
  std::thread server([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    std::vector<char> buffer(message_bytes);
    for (;;) {
      const ssize_t got = ::read(fd, buffer.data(), buffer.size());
      if (got <= 0) break;
      received_bytes += static_cast<std::uint64_t>(got);
    }
    received_end = std::chrono::steady_clock::now();
    ::close(fd);
  });
  const int client = connect_to(address);
  if (client < 0) return 1;
  std::vector<char> buffer(message_bytes, 'x');
  const auto start = std::chrono::steady_clock::now();
  const auto stop = start + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < stop) {
    if (!full_write(client, buffer.data(), buffer.size())) {
      std::fprintf(stderr, "stream write failed\n");
      return 1;
    }
  }
  ::close(client);
  server.join();
  ::close(listener);
  const double elapsed_s = std::chrono::duration<double>(received_end - start).count();
  std::printf("tcp_stream_mib_per_s=%.0f bytes=%zu seconds=%.2f\n",
              static_cast<double>(received_bytes) / 1048576.0 / elapsed_s, message_bytes,
              elapsed_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "stream") == 0) {
    const double seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
    const std::size_t message_bytes = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1u << 20;
    if (seconds <= 0 || seconds > 600 || message_bytes == 0 || message_bytes > (16u << 20)) {
      std::fprintf(stderr, "usage: %s stream [seconds 0..600] [message_bytes 1..16777216]\n",
                   argv[0]);
      return 2;
    }
    return run_stream(seconds, message_bytes);
  }
  const int round_trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::size_t message_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  if (round_trips <= 0 || message_bytes == 0 || message_bytes > (1u << 20)) {
    std::fprintf(stderr, "usage: %s [round_trips > 0] [message_bytes 1..1048576]\n", argv[0]);
    return 2;
  }
  return run_round_trips(round_trips, message_bytes);
}
