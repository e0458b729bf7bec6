// Loopback TCP round trip: a client and a server thread exchange a small message back and forth
// over 127.0.0.1 with TCP_NODELAY, the floor under any replicated write's latency here.
// Usage: ditto-bench-tcp-rtt [round_trips] [message_bytes]   (prints p50 and p99 in µs)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

}  // namespace

int main(int argc, char** argv) {
  const int round_trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::size_t message_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  if (round_trips <= 0 || message_bytes == 0 || message_bytes > (1u << 20)) {
    std::fprintf(stderr, "usage: %s [round_trips > 0] [message_bytes 1..1048576]\n", argv[0]);
    return 2;
  }
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("listen");
    return 1;
  }
  std::thread server([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    no_delay(fd);
    std::vector<char> buffer(message_bytes);
    while (full_read(fd, buffer.data(), buffer.size()) &&
           full_write(fd, buffer.data(), buffer.size())) {
    }
    ::close(fd);
  });
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::perror("connect");
    return 1;
  }
  no_delay(client);
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
