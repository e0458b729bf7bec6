// NbdServer end to end: the server runs in-process on its own io_context thread with an
// in-memory backend (InMemoryTestBackend, below), and real clients drive it — nbdinfo,
// qemu-img, qemu-io and fio as child processes, libnbd in-process, and a raw socket for the
// malformed cases no real client sends. Teardown checks that every buffer was released and every
// opened export closed, after all I/O finished.
#include "datapath/nbd_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/bytes.h"

namespace ditto::datapath {
namespace {

namespace asio = boost::asio;
using Bytes = std::vector<std::uint8_t>;
using Microseconds = std::chrono::microseconds;

constexpr std::uint64_t disk_size_bytes = 16 * 1024 * 1024;
constexpr char refusal[] = "node r0 cannot become Primary: a peer is Primary";

// The test fixture backend: exports "disk" (16 MiB, every feature, multi-conn), "ro"
// (read-only, 1 MiB) and "refuses" (open_export fails). I/O completes inline or after
// `delay_for(io)`, so replies can be made to go out of order. It fails the test on any misuse:
// I/O on a closed session, close_export with I/O in flight, releasing an unknown buffer.
class InMemoryTestBackend final : public NbdBackend {
 public:
  explicit InMemoryTestBackend(asio::io_context& io) : io_(io) {
    NbdExportInfo disk{"disk", "test disk", disk_size_bytes};
    disk.supports_trim = disk.supports_write_zeroes = disk.multi_conn = true;
    NbdExportInfo read_only{"ro", "", 1024 * 1024, true};
    NbdExportInfo refuses{"refuses", "", 1024 * 1024};
    for (const NbdExportInfo& info : {disk, read_only, refuses}) {
      exports_[info.name] = {info, Bytes(info.size_bytes, 0)};
    }
  }

  // nullptr or a zero delay: complete inline, before submit returns.
  std::function<Microseconds(const NbdIo&)> delay_for;
  std::size_t buffers_max = 1024;

  std::size_t buffers_outstanding() const { return buffers_.size(); }
  std::size_t sessions_open() const { return sessions_.size(); }
  std::size_t sessions_opened = 0;
  std::size_t busy_answers = 0;
  std::uint32_t in_flight_max = 0;

  std::vector<NbdExportInfo> list_exports() override {
    std::vector<NbdExportInfo> out{exports_.at("disk").info};
    for (const auto& [name, entry] : exports_) {
      if (name != "disk") out.push_back(entry.info);
    }
    return out;
  }

  Result<std::uint64_t> open_export(std::string_view name) override {
    if (name == "refuses") return Error{refusal};
    const std::uint64_t session = ++sessions_opened;
    sessions_[session] = {std::string(name), 0};
    return session;
  }

  void close_export(std::uint64_t session) override {
    const auto it = sessions_.find(session);
    if (it == sessions_.end()) return ADD_FAILURE() << "close_export of unknown session";
    EXPECT_EQ(it->second.in_flight, 0u) << "close_export with I/O in flight";
    sessions_.erase(it);
  }

  NbdBuffer allocate_buffer(std::size_t size_bytes) override {
    if (buffers_.size() >= buffers_max) {
      ++busy_answers;
      return {};
    }
    const std::size_t rounded = (size_bytes + 4095) / 4096 * 4096;
    auto* data = static_cast<std::uint8_t*>(std::aligned_alloc(4096, rounded));
    const NbdBuffer buffer{data, size_bytes, ++next_token_};
    buffers_[buffer.token] = data;
    return buffer;
  }

  void release_buffer(const NbdBuffer& buffer) override {
    const auto it = buffers_.find(buffer.token);
    if (it == buffers_.end() || it->second != buffer.data) {
      return ADD_FAILURE() << "release of unknown buffer " << buffer.token;
    }
    std::free(buffer.data);
    buffers_.erase(it);
  }

  void submit(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
              std::function<void(std::uint32_t)> done) override {
    const auto it = sessions_.find(session);
    if (it == sessions_.end()) return ADD_FAILURE() << "submit on a closed session";
    ++it->second.in_flight;
    ++in_flight_;
    in_flight_max = std::max(in_flight_max, in_flight_);
    const Microseconds delay = delay_for ? delay_for(io) : Microseconds(0);
    auto complete = [this, session, io, buffer, done = std::move(done)] {
      Session& state = sessions_.at(session);
      apply(exports_.at(state.name).bytes, io, buffer);
      --state.in_flight;
      --in_flight_;
      done(0);
    };
    if (delay.count() == 0) return complete();
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    timer->async_wait([timer, complete](const boost::system::error_code&) { complete(); });
  }

 private:
  struct Entry {
    NbdExportInfo info;
    Bytes bytes;
  };
  struct Session {
    std::string name;
    std::uint32_t in_flight = 0;
  };

  static void apply(Bytes& disk, const NbdIo& io, const NbdBuffer& buffer) {
    std::uint8_t* at = disk.data() + io.offset_bytes;
    if (io.op == NbdOp::read) std::memcpy(buffer.data, at, io.length_bytes);
    if (io.op == NbdOp::write) std::memcpy(at, buffer.data, io.length_bytes);
    if (io.op == NbdOp::write_zeroes || io.op == NbdOp::trim) {
      std::memset(at, 0, io.length_bytes);
    }
  }

  asio::io_context& io_;
  std::map<std::string, Entry> exports_;
  std::map<std::uint64_t, Session> sessions_;
  std::map<std::uint64_t, std::uint8_t*> buffers_;
  std::uint64_t next_token_ = 0;
  std::uint32_t in_flight_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char chunk[4096];
  while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) result.output.append(chunk, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool tool_exists(const std::string& tool) {
  return run("command -v " + tool).exit_code == 0;
}

// A blocking client socket for the bytes no real client sends.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const Bytes& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Exactly `size` bytes, or fewer if the peer closed or nothing came for 5 s.
  Bytes receive(std::size_t size) {
    Bytes out(size);
    std::size_t got = 0;
    while (got < size) {
      const ssize_t n = ::recv(fd_, out.data() + got, size - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
  }
  bool closed_by_server() {
    std::uint8_t byte = 0;
    return ::recv(fd_, &byte, 1, 0) == 0;
  }
  // Option request with `data`.
  void send_option(std::uint32_t option, const Bytes& data) {
    Bytes out(16 + data.size());
    ByteWriter writer(out);
    writer.u64(nbd::options_magic);
    writer.u32(option);
    writer.u32(static_cast<std::uint32_t>(data.size()));
    writer.bytes(data);
    send(out);
  }
  // Reads one option reply; returns its type, and its data in `data`.
  std::uint32_t receive_option_reply(Bytes* data = nullptr) {
    Bytes header = receive(20);
    if (header.size() != 20) return 0;
    ByteReader reader(header);
    std::uint64_t magic = 0;
    std::uint32_t option = 0, type = 0, length = 0;
    if (!reader.u64(magic) || !reader.u32(option) || !reader.u32(type) || !reader.u32(length)) {
      return 0;
    }
    Bytes body = receive(length);
    if (data != nullptr) *data = body;
    return type;
  }
  // Greeting, client flags 0x3, GO for `name`, replies up to the ACK. Simple replies only.
  bool handshake_go(const std::string& name) {
    if (receive(18).size() != 18) return false;
    send({0, 0, 0, 3});
    Bytes data(4 + name.size() + 2);
    ByteWriter writer(data);
    writer.u32(static_cast<std::uint32_t>(name.size()));
    writer.string(name);
    writer.u16(0);
    send_option(nbd::opt_go, data);
    for (;;) {
      const std::uint32_t type = receive_option_reply();
      if (type == nbd::rep_ack) return true;
      if (type != nbd::rep_info) return false;
    }
  }
  void send_request(std::uint16_t type, std::uint64_t cookie, std::uint64_t offset,
                    std::uint32_t length, std::uint32_t magic = nbd::request_magic) {
    Bytes out(28);
    ByteWriter writer(out);
    writer.u32(magic);
    writer.u16(0);
    writer.u16(type);
    writer.u64(cookie);
    writer.u64(offset);
    writer.u32(length);
    send(out);
  }
  // A simple reply header: returns false if none came; fills error and cookie.
  bool receive_simple_reply(std::uint32_t& error, std::uint64_t& cookie) {
    const Bytes header = receive(16);
    ByteReader reader(header);
    std::uint32_t magic = 0;
    return header.size() == 16 && reader.u32(magic) && reader.u32(error) && reader.u64(cookie) &&
           magic == nbd::simple_reply_magic;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class NbdServerTest : public ::testing::Test {
 protected:
  void start_server(NbdServerOptions options = {}) {
    server_ = std::make_unique<NbdServer>(io_, backend_, options);
    ASSERT_TRUE(server_->listen_tcp("127.0.0.1", 0).ok());
    port_ = server_->tcp_port();
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      on_io([this] { server_->stop(); });
      guard_.reset();
      thread_.join();  // returns once every connection finished and every timer fired
    }
    server_.reset();
    EXPECT_EQ(backend_.buffers_outstanding(), 0u) << "a buffer was never released";
    EXPECT_EQ(backend_.sessions_open(), 0u) << "an export was never closed";
  }

  template <typename Function>
  void on_io(Function function) {
    std::promise<void> finished;
    asio::post(io_, [&] {
      function();
      finished.set_value();
    });
    finished.get_future().wait();
  }

  std::string uri(const std::string& name) const {
    return "nbd://127.0.0.1:" + std::to_string(port_) + "/" + name;
  }

  std::string temp_dir() {
    char pattern[] = "/tmp/ditto_nbd_XXXXXX";
    const char* made = ::mkdtemp(pattern);
    return made == nullptr ? "/tmp" : made;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  InMemoryTestBackend backend_{io_};
  std::unique_ptr<NbdServer> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

// Delays that make neighbouring requests finish out of order; some complete inline.
Microseconds mixed_delay(const NbdIo& io) {
  return Microseconds((io.offset_bytes / 4096) % 3 * 150);
}

struct Handle {
  nbd_handle* handle = nbd_create();
  ~Handle() { nbd_close(handle); }
};

TEST_F(NbdServerTest, NbdinfoReportsTheExportSizeAndFlags) {
  if (!tool_exists("nbdinfo")) GTEST_SKIP() << "nbdinfo is not installed";
  start_server();
  const CommandResult result = run("nbdinfo --json " + uri("disk"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto json = nlohmann::json::parse(result.output, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << result.output;
  const auto& info = json["exports"][0];
  EXPECT_EQ(info["export-size"], disk_size_bytes);
  EXPECT_EQ(info["is_read_only"], false);
  EXPECT_EQ(info["can_flush"], true);
  EXPECT_EQ(info["can_fua"], true);
  EXPECT_EQ(info["can_trim"], true);
  EXPECT_EQ(info["can_zero"], true);
  EXPECT_EQ(info["can_multi_conn"], true);
  EXPECT_EQ(info["description"], "test disk");
  EXPECT_EQ(info["block_size_maximum"], 32 * 1024 * 1024);
}

TEST_F(NbdServerTest, NbdinfoSeesAReadOnlyExportAsReadOnly) {
  if (!tool_exists("nbdinfo")) GTEST_SKIP() << "nbdinfo is not installed";
  start_server();
  const CommandResult result = run("nbdinfo --json " + uri("ro"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto json = nlohmann::json::parse(result.output, nullptr, false);
  EXPECT_EQ(json["exports"][0]["is_read_only"], true) << result.output;
  EXPECT_EQ(json["exports"][0]["export-size"], 1024 * 1024);
}

TEST_F(NbdServerTest, QemuImgConvertsARandomFileInAndOutUnchanged) {
  if (!tool_exists("qemu-img")) GTEST_SKIP() << "qemu-img is not installed";
  backend_.delay_for = mixed_delay;
  start_server();
  const std::string dir = temp_dir();
  {
    std::mt19937_64 random(42);
    Bytes bytes(disk_size_bytes);
    for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
    FILE* file = std::fopen((dir + "/in.img").c_str(), "wb");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), file), bytes.size());
    std::fclose(file);
  }
  const CommandResult in =
      run("qemu-img convert -n -f raw -O raw " + dir + "/in.img " + uri("disk"));
  ASSERT_EQ(in.exit_code, 0) << in.output;
  const CommandResult out =
      run("qemu-img convert -f raw -O raw " + uri("disk") + " " + dir + "/out.img");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const CommandResult compare = run("cmp " + dir + "/in.img " + dir + "/out.img");
  EXPECT_EQ(compare.exit_code, 0) << compare.output;
  (void)run("rm -rf " + dir);
}

TEST_F(NbdServerTest, QemuIoWritesAPatternAndReadsItBack) {
  if (!tool_exists("qemu-io")) GTEST_SKIP() << "qemu-io is not installed";
  backend_.delay_for = mixed_delay;
  start_server();
  const CommandResult result =
      run("qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab "
          "0 64k' -c 'write -z 64k 64k' -c 'read -P 0 64k 64k' -c "
          "'flush' " +
          uri("disk"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, ::testing::Not(::testing::HasSubstr("fail"))) << result.output;
  EXPECT_THAT(result.output, ::testing::HasSubstr("read 65536/65536 bytes"));
}

TEST_F(NbdServerTest, FioRandomWritesVerifyWithCrc32c) {
  if (!tool_exists("fio")) GTEST_SKIP() << "fio is not installed";
  backend_.delay_for = mixed_delay;
  start_server();
  const CommandResult result =
      run("fio --name=verify --ioengine=nbd --uri=" + uri("disk") +
          " --rw=randwrite --bs=4k --size=8M --iodepth=16 --verify=crc32c" +
          " --verify_state_save=0 --output-format=terse");
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

// libnbd: completion order is the order replies arrived.
struct CompletionLog {
  std::vector<std::uint64_t>* order;
  std::uint64_t offset;
};

int record_completion(void* user_data, int* error) {
  auto* log = static_cast<CompletionLog*>(user_data);
  if (*error == 0) log->order->push_back(log->offset);
  return 1;
}

TEST_F(NbdServerTest, RepliesGoOutOfOrderWhenTheBackendFinishesOutOfOrder) {
  backend_.delay_for = [](const NbdIo& io) {
    return Microseconds(io.op == NbdOp::read && io.offset_bytes == 0 ? 100000 : 1000);
  };
  start_server();
  Handle client;
  ASSERT_EQ(nbd_connect_uri(client.handle, uri("disk").c_str()), 0) << nbd_get_error();
  const Bytes pattern(8 * 4096, 0x5c);
  ASSERT_EQ(nbd_pwrite(client.handle, pattern.data(), pattern.size(), 0, 0), 0);
  std::vector<std::uint64_t> order;
  std::vector<CompletionLog> logs(8);
  Bytes read_back(pattern.size());
  for (std::uint64_t i = 0; i < 8; ++i) {
    logs[i] = {&order, i * 4096};
    ASSERT_GT(nbd_aio_pread(client.handle, read_back.data() + i * 4096, 4096, i * 4096,
                            {record_completion, &logs[i], nullptr}, 0),
              0);
  }
  while (nbd_aio_in_flight(client.handle) > 0) ASSERT_GE(nbd_poll(client.handle, 5000), 0);
  ASSERT_EQ(order.size(), 8u) << "every read succeeded";
  EXPECT_NE(order.front(), 0u) << "the slow first read did not hold back the others";
  EXPECT_EQ(order.back(), 0u);
  EXPECT_EQ(read_back, pattern);
  EXPECT_GE(backend_.in_flight_max, 2u) << "several requests were in flight at once";
}

TEST_F(NbdServerTest, RequestsInFlightPerConnectionStayWithinTheBound) {
  backend_.delay_for = [](const NbdIo&) { return Microseconds(3000); };
  NbdServerOptions options;
  options.requests_in_flight_max = 4;
  start_server(options);
  Handle client;
  ASSERT_EQ(nbd_connect_uri(client.handle, uri("disk").c_str()), 0) << nbd_get_error();
  const Bytes block(4096, 0x11);
  for (std::uint64_t i = 0; i < 32; ++i) {
    ASSERT_GT(
        nbd_aio_pwrite(client.handle, block.data(), block.size(), i * 4096, NBD_NULL_COMPLETION, 0),
        0);
  }
  while (nbd_aio_in_flight(client.handle) > 0) ASSERT_GE(nbd_poll(client.handle, 5000), 0);
  EXPECT_EQ(backend_.in_flight_max, 4u);
  Bytes read_back(32 * 4096);
  ASSERT_EQ(nbd_pread(client.handle, read_back.data(), read_back.size(), 0, 0), 0);
  EXPECT_EQ(read_back, Bytes(32 * 4096, 0x11));
}

TEST_F(NbdServerTest, BusyBuffersDelayRequestsButEveryOneCompletes) {
  backend_.delay_for = [](const NbdIo&) { return Microseconds(1000); };
  backend_.buffers_max = 2;
  start_server();
  Handle client;
  ASSERT_EQ(nbd_connect_uri(client.handle, uri("disk").c_str()), 0) << nbd_get_error();
  Bytes read_back(16 * 4096);
  for (std::uint64_t i = 0; i < 16; ++i) {
    ASSERT_GT(nbd_aio_pread(client.handle, read_back.data() + i * 4096, 4096, i * 4096,
                            NBD_NULL_COMPLETION, 0),
              0);
  }
  while (nbd_aio_in_flight(client.handle) > 0) ASSERT_GE(nbd_poll(client.handle, 5000), 0);
  for (std::uint64_t i = 0; i < 16; ++i) {
    EXPECT_EQ(nbd_aio_command_completed(client.handle, static_cast<std::uint64_t>(i + 1)), 1);
  }
  EXPECT_GT(backend_.busy_answers, 0u);
}

TEST_F(NbdServerTest, AWriteOnOneConnectionIsReadOnAnother) {
  backend_.delay_for = mixed_delay;
  start_server();
  Handle writer;
  Handle reader;
  ASSERT_EQ(nbd_connect_uri(writer.handle, uri("disk").c_str()), 0) << nbd_get_error();
  ASSERT_EQ(nbd_connect_uri(reader.handle, uri("disk").c_str()), 0) << nbd_get_error();
  EXPECT_EQ(nbd_can_multi_conn(writer.handle), 1);
  Bytes pattern(256 * 1024);
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<std::uint8_t>(i * 7);
  ASSERT_EQ(nbd_pwrite(writer.handle, pattern.data(), pattern.size(), 4096, LIBNBD_CMD_FLAG_FUA),
            0);
  ASSERT_EQ(nbd_flush(writer.handle, 0), 0);
  Bytes read_back(pattern.size());
  ASSERT_EQ(nbd_pread(reader.handle, read_back.data(), read_back.size(), 4096, 0), 0);
  EXPECT_EQ(read_back, pattern);
  EXPECT_EQ(server_->connection_count(), 2u);
}

int collect_debug(void* user_data, const char*, const char* message) {
  static_cast<std::string*>(user_data)->append(message).append("\n");
  return 0;
}

TEST_F(NbdServerTest, AnExportThatCannotOpenGivesTheClientTheReason) {
  start_server();
  // libnbd 1.14 reports ERR_POLICY generically and shows the server's text in its debug log.
  std::string debug_log;  // outlives the handle, which logs while closing
  Handle refused;
  ASSERT_EQ(nbd_set_debug(refused.handle, true), 0);
  ASSERT_EQ(nbd_set_debug_callback(refused.handle, {collect_debug, &debug_log, nullptr}), 0);
  EXPECT_EQ(nbd_connect_uri(refused.handle, uri("refuses").c_str()), -1);
  EXPECT_THAT(nbd_get_error(), ::testing::HasSubstr("server policy prevents NBD_OPT_GO"));
  EXPECT_THAT(debug_log, ::testing::HasSubstr(std::string("server error message: ") + refusal));
  // On the wire: ERR_POLICY whose data is exactly the backend's message.
  RawClient raw(port_);
  ASSERT_EQ(raw.receive(18).size(), 18u);
  raw.send({0, 0, 0, 3});
  const std::string name = "refuses";
  Bytes data(4 + name.size() + 2);
  ByteWriter writer(data);
  writer.u32(static_cast<std::uint32_t>(name.size()));
  writer.string(name);
  writer.u16(0);
  raw.send_option(nbd::opt_go, data);
  Bytes message;
  EXPECT_EQ(raw.receive_option_reply(&message), nbd::rep_err_policy);
  EXPECT_EQ(std::string(message.begin(), message.end()), refusal);
  Handle other;
  EXPECT_EQ(nbd_connect_uri(other.handle, uri("disk").c_str()), 0) << "the server still serves";
}

TEST_F(NbdServerTest, BadRequestMagicClosesOnlyThatConnection) {
  start_server();
  Handle healthy;
  ASSERT_EQ(nbd_connect_uri(healthy.handle, uri("disk").c_str()), 0) << nbd_get_error();
  RawClient bad(port_);
  ASSERT_TRUE(bad.handshake_go("disk"));
  bad.send_request(nbd::cmd_read, 1, 0, 512, 0x12560953);
  EXPECT_TRUE(bad.closed_by_server());
  Bytes block(512);
  EXPECT_EQ(nbd_pread(healthy.handle, block.data(), block.size(), 0, 0), 0);
}

TEST_F(NbdServerTest, DiscWithRequestsInFlightAnswersThemAllThenCloses) {
  backend_.delay_for = [](const NbdIo& io) { return Microseconds(20000 - io.offset_bytes); };
  start_server();
  RawClient client(port_);
  ASSERT_TRUE(client.handshake_go("disk"));
  for (std::uint64_t cookie = 1; cookie <= 10; ++cookie) {
    client.send_request(nbd::cmd_read, cookie, cookie * 512, 512);
  }
  client.send_request(nbd::cmd_disc, 99, 0, 0);
  std::set<std::uint64_t> answered;
  for (int i = 0; i < 10; ++i) {
    std::uint32_t error = 1;
    std::uint64_t cookie = 0;
    ASSERT_TRUE(client.receive_simple_reply(error, cookie));
    EXPECT_EQ(error, 0u);
    EXPECT_TRUE(answered.insert(cookie).second) << "cookie " << cookie << " answered twice";
    EXPECT_EQ(client.receive(512).size(), 512u);
  }
  EXPECT_EQ(answered.size(), 10u);
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(NbdServerTest, WritePastTheEndIsEnospcAndTheNextRequestStillParses) {
  start_server();
  RawClient client(port_);
  ASSERT_TRUE(client.handshake_go("disk"));
  client.send_request(nbd::cmd_write, 1, disk_size_bytes - 256, 512);
  client.send(Bytes(512, 0xee));
  client.send_request(nbd::cmd_read, 2, 0, 512);
  client.send_request(99, 3, 0, 0);
  std::uint32_t error = 0;
  std::uint64_t cookie = 0;
  ASSERT_TRUE(client.receive_simple_reply(error, cookie));
  EXPECT_EQ(cookie, 1u);
  EXPECT_EQ(error, nbd::error_no_space);
  ASSERT_TRUE(client.receive_simple_reply(error, cookie));
  EXPECT_EQ(cookie, 2u);
  EXPECT_EQ(error, 0u);
  EXPECT_EQ(client.receive(512), Bytes(512, 0));
  ASSERT_TRUE(client.receive_simple_reply(error, cookie));
  EXPECT_EQ(cookie, 3u);
  EXPECT_EQ(error, nbd::error_invalid) << "unknown command type";
}

TEST_F(NbdServerTest, WriteOnAReadOnlyExportIsEperm) {
  start_server();
  RawClient client(port_);
  ASSERT_TRUE(client.handshake_go("ro"));
  client.send_request(nbd::cmd_write, 5, 0, 4096);
  client.send(Bytes(4096, 1));
  std::uint32_t error = 0;
  std::uint64_t cookie = 0;
  ASSERT_TRUE(client.receive_simple_reply(error, cookie));
  EXPECT_EQ(cookie, 5u);
  EXPECT_EQ(error, nbd::error_perm);
}

TEST_F(NbdServerTest, EofInTheMiddleOfAWritePayloadClosesCleanly) {
  start_server();
  {
    RawClient client(port_);
    ASSERT_TRUE(client.handshake_go("disk"));
    client.send_request(nbd::cmd_write, 1, 0, 256 * 1024);
    client.send(Bytes(1000, 0x77));
  }
  // Teardown checks that the half-filled buffer was released and the export closed.
  Handle other;
  EXPECT_EQ(nbd_connect_uri(other.handle, uri("disk").c_str()), 0);
}

TEST_F(NbdServerTest, UnknownOptionIsUnsupportedAndHagglingContinues) {
  start_server();
  RawClient client(port_);
  ASSERT_EQ(client.receive(18).size(), 18u);
  client.send({0, 0, 0, 3});
  client.send_option(0x1234, {1, 2, 3, 4, 5});
  EXPECT_EQ(client.receive_option_reply(), nbd::rep_err_unsup);
  client.send_option(nbd::opt_list, {1});
  EXPECT_EQ(client.receive_option_reply(), nbd::rep_err_invalid) << "LIST takes no data";
  client.send_option(nbd::opt_list, {});
  Bytes server_reply;
  EXPECT_EQ(client.receive_option_reply(&server_reply), nbd::rep_server);
  EXPECT_EQ(std::string(server_reply.begin() + 4, server_reply.begin() + 8), "disk");
  while (client.receive_option_reply() == nbd::rep_server) {
  }
  client.send_option(nbd::opt_abort, {});
  EXPECT_EQ(client.receive_option_reply(), nbd::rep_ack);
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(NbdServerTest, ExportNameForAnUnknownExportClosesWithoutAReply) {
  start_server();
  RawClient client(port_);
  ASSERT_EQ(client.receive(18).size(), 18u);
  client.send({0, 0, 0, 1});
  client.send_option(nbd::opt_export_name, {'n', 'o', 'p', 'e'});
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(NbdServerTest, ExportNameReplyIs134BytesOr10WithNoZeroes) {
  start_server();
  for (const std::uint8_t client_flags : {1, 3}) {
    RawClient client(port_);
    ASSERT_EQ(client.receive(18).size(), 18u);
    client.send({0, 0, 0, client_flags});
    client.send_option(nbd::opt_export_name, {'d', 'i', 's', 'k'});
    const std::size_t expected = client_flags == 1 ? 134 : 10;
    const Bytes reply = client.receive(expected);
    ASSERT_EQ(reply.size(), expected);
    ByteReader reader(reply);
    std::uint64_t size = 0;
    std::uint16_t flags = 0;
    ASSERT_TRUE(reader.u64(size) && reader.u16(flags));
    EXPECT_EQ(size, disk_size_bytes);
    EXPECT_TRUE(flags & nbd::tflag_has_flags);
    client.send_request(nbd::cmd_read, 7, 0, 512);  // transmission starts right after
    std::uint32_t error = 1;
    std::uint64_t cookie = 0;
    ASSERT_TRUE(client.receive_simple_reply(error, cookie));
    EXPECT_EQ(cookie, 7u);
    EXPECT_EQ(error, 0u);
  }
}

// Replies are written at once, non-blocking, in the handler that flushes them; what a full
// socket does not take goes out later with an async write of the rest. 16 MiB of READ replies
// to a client that reads nothing for a while is far more than the socket takes at once.
TEST_F(NbdServerTest, RepliesASocketTakesOnlyInPartArriveWholeAndInOrder) {
  start_server();
  RawClient client(port_);
  ASSERT_TRUE(client.handshake_go("disk"));
  constexpr std::uint32_t request_bytes = 2 << 20;
  constexpr std::uint64_t requests = 8;
  auto byte_at = [](std::uint64_t offset) { return static_cast<std::uint8_t>(offset % 251); };
  for (std::uint64_t i = 0; i < requests; ++i) {
    client.send_request(nbd::cmd_write, 100 + i, i * request_bytes, request_bytes);
    Bytes payload(request_bytes);
    for (std::uint32_t k = 0; k < request_bytes; ++k) payload[k] = byte_at(i * request_bytes + k);
    client.send(payload);
    std::uint32_t error = 1;
    std::uint64_t cookie = 0;
    ASSERT_TRUE(client.receive_simple_reply(error, cookie));
    EXPECT_EQ(cookie, 100 + i);
    EXPECT_EQ(error, 0u);
  }
  for (std::uint64_t i = 0; i < requests; ++i) {
    client.send_request(nbd::cmd_read, 200 + i, i * request_bytes, request_bytes);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the socket fills up
  for (std::uint64_t i = 0; i < requests; ++i) {
    std::uint32_t error = 1;
    std::uint64_t cookie = 0;
    ASSERT_TRUE(client.receive_simple_reply(error, cookie)) << "reply " << i;
    EXPECT_EQ(error, 0u);
    ASSERT_GE(cookie, 200u);
    ASSERT_LT(cookie, 200 + requests);
    const std::uint64_t offset = (cookie - 200) * request_bytes;
    const Bytes data = client.receive(request_bytes);
    ASSERT_EQ(data.size(), request_bytes);
    std::size_t wrong = 0;
    for (std::uint32_t k = 0; k < request_bytes; ++k) wrong += data[k] != byte_at(offset + k);
    EXPECT_EQ(wrong, 0u) << "reply to cookie " << cookie;
  }
}

TEST_F(NbdServerTest, ServesOverAUnixSocket) {
  if (!tool_exists("nbdinfo")) GTEST_SKIP() << "nbdinfo is not installed";
  const std::string dir = temp_dir();
  const std::string path = dir + "/nbd.sock";
  server_ = std::make_unique<NbdServer>(io_, backend_, NbdServerOptions{});
  ASSERT_TRUE(server_->listen_unix(path).ok());
  thread_ = std::thread([this] { io_.run(); });
  const CommandResult result = run("nbdinfo --size 'nbd+unix:///disk?socket=" + path + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, std::to_string(disk_size_bytes) + "\n");
  on_io([this] { server_->stop(); });
  (void)run("rm -rf " + dir);
}

TEST_F(NbdServerTest, StopWithIoInFlightClosesTheExportOnlyAfterTheIoFinished) {
  backend_.delay_for = [](const NbdIo&) { return Microseconds(50000); };
  start_server();
  Handle client;
  ASSERT_EQ(nbd_connect_uri(client.handle, uri("disk").c_str()), 0) << nbd_get_error();
  Bytes buffer(8 * 4096);
  for (std::uint64_t i = 0; i < 8; ++i) {
    ASSERT_GT(nbd_aio_pread(client.handle, buffer.data() + i * 4096, 4096, i * 4096,
                            NBD_NULL_COMPLETION, 0),
              0);
  }
  for (int i = 0; i < 100 && backend_.in_flight_max < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::size_t sessions_after_stop = 0;
  on_io([&] {
    server_->stop();
    sessions_after_stop = backend_.sessions_open();
  });
  EXPECT_EQ(sessions_after_stop, 1u) << "close_export must wait for the reads in flight";
  // Teardown: the reads finish, then close_export runs with nothing in flight (checked by the
  // backend), and every buffer is released.
}

TEST_F(NbdServerTest, ClientFlagTheServerDidNotOfferCloses) {
  start_server();
  RawClient client(port_);
  ASSERT_EQ(client.receive(18).size(), 18u);
  client.send({0, 0, 0, 4});
  EXPECT_TRUE(client.closed_by_server());
}

}  // namespace
}  // namespace ditto::datapath
