#include "datapath/transport_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/assert.h"
#include "core/wire.h"

namespace ditto::datapath {
namespace {

constexpr std::string_view auth_label = "ditto-auth-1";

const EVP_MD* digest_named(std::string_view algorithm) {
  return EVP_get_digestbyname(std::string(algorithm).c_str());
}

}  // namespace

Result<AuthKey> AuthKey::create(std::string_view algorithm, std::string secret) {
  const EVP_MD* md = digest_named(algorithm);
  if (md == nullptr) {
    return Error{"cram-hmac-alg '" + std::string(algorithm) +
                 "' is not a digest this OpenSSL knows (try sha256)"};
  }
  const int size = EVP_MD_get_size(md);
  if (size <= 0 || static_cast<std::size_t>(size) > wire::auth_response_size_max_bytes) {
    return Error{"cram-hmac-alg '" + std::string(algorithm) + "' has a digest above 64 bytes"};
  }
  if (secret.empty()) return Error{"shared-secret is empty"};
  return AuthKey(std::string(algorithm), std::move(secret));
}

std::vector<std::uint8_t> AuthKey::digest(NodeId prover, NodeId verifier,
                                          std::string_view resource_name,
                                          std::span<const std::uint8_t> verifier_challenge,
                                          std::span<const std::uint8_t> prover_challenge) const {
  DITTO_ASSERT(prover != verifier);
  std::vector<std::uint8_t> input(auth_label.begin(), auth_label.end());
  input.insert(input.end(), verifier_challenge.begin(), verifier_challenge.end());
  input.insert(input.end(), prover_challenge.begin(), prover_challenge.end());
  input.push_back(prover.value);
  input.push_back(verifier.value);
  input.push_back(static_cast<std::uint8_t>(resource_name.size()));
  input.insert(input.end(), resource_name.begin(), resource_name.end());
  const EVP_MD* md = digest_named(algorithm_);
  DITTO_ASSERT(md != nullptr);  // checked by create()
  std::vector<std::uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  const unsigned char* done =
      HMAC(md, secret_.data(), static_cast<int>(secret_.size()), input.data(), input.size(),
           out.data(), &size);
  DITTO_ASSERT(done != nullptr);
  out.resize(size);
  return out;
}

bool AuthKey::verify(std::span<const std::uint8_t> received, NodeId prover, NodeId verifier,
                     std::string_view resource_name,
                     std::span<const std::uint8_t> verifier_challenge,
                     std::span<const std::uint8_t> prover_challenge) const {
  const std::vector<std::uint8_t> expected =
      digest(prover, verifier, resource_name, verifier_challenge, prover_challenge);
  // The length is public (it is the algorithm's); only the bytes are compared in constant time.
  if (received.size() != expected.size()) return false;
  return CRYPTO_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

std::vector<std::uint8_t> random_auth_challenge() {
  std::vector<std::uint8_t> challenge(wire::auth_challenge_size_bytes);
  const int ok = RAND_bytes(challenge.data(), static_cast<int>(challenge.size()));
  // Without entropy no handshake is safe; this is the system's failure, not the peer's.
  DITTO_ASSERT(ok == 1);
  return challenge;
}

}  // namespace ditto::datapath
