// Peer authentication for the transport (DRBD's cram-hmac-alg + shared-secret): before any state
// is exchanged each side sends a fresh random challenge and answers the other's challenge with
// HMAC(secret, "ditto-auth-1" | verifier's challenge | prover's challenge | prover id | verifier
// id | resource name). The prover's identity is inside the MAC, so a response cannot be
// reflected back to its sender, and the verifier's fresh challenge is inside it, so the recorded
// bytes of an earlier handshake are worthless. Comparison is constant-time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"

namespace ditto::datapath {

class AuthKey {
 public:
  // `algorithm` is an OpenSSL digest name as in cram-hmac-alg (sha1, sha256, sha512, ...);
  // an unknown name, a digest longer than 64 bytes or an empty secret is an error.
  static Result<AuthKey> create(std::string_view algorithm, std::string secret);

  const std::string& algorithm() const { return algorithm_; }
  // The MAC of `prover` answering `verifier_challenge` (see the file comment).
  std::vector<std::uint8_t> digest(NodeId prover, NodeId verifier, std::string_view resource_name,
                                   std::span<const std::uint8_t> verifier_challenge,
                                   std::span<const std::uint8_t> prover_challenge) const;
  // True when `received` is exactly the expected digest; constant-time in the digest bytes.
  bool verify(std::span<const std::uint8_t> received, NodeId prover, NodeId verifier,
              std::string_view resource_name, std::span<const std::uint8_t> verifier_challenge,
              std::span<const std::uint8_t> prover_challenge) const;

 private:
  AuthKey(std::string algorithm, std::string secret)
      : algorithm_(std::move(algorithm)), secret_(std::move(secret)) {}
  std::string algorithm_;
  std::string secret_;
};

// A fresh challenge from the operating system's CSPRNG (OpenSSL RAND_bytes).
std::vector<std::uint8_t> random_auth_challenge();

}  // namespace ditto::datapath
