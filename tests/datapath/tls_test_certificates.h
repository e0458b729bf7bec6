// Test certificates made at test time with the openssl CLI (EC P-256 keys: fast). Layout under
// `directory`:
//   good/ca-cert.pem, good/{alpha,beta}-{cert,key}.pem   the cluster's CA and node certificates
//   evil/ca-cert.pem, evil/alpha-{cert,key}.pem          another CA, and a node signed by it
//   nbd/{ca-cert,server-cert,server-key}.pem             an NBD server directory (good CA)
//   client/{ca-cert,client-cert,client-key}.pem          a libnbd client directory (good CA)
//   noclient/ca-cert.pem                                 a client without a certificate
//   evilclient/{ca-cert,client-cert,client-key}.pem      trusts the good CA, signed by evil
//   good/gamma-{cert,key}.pem                            the right CA, another host (gamma)
//   good/beta-cn-{cert,key}.pem                          CN=beta and no subjectAltName
//   good/alpha-cn-{cert,key}.pem                         CN=alpha but SAN DNS:gamma
// Every certificate named NAME carries SAN DNS:NAME, DNS:localhost, IP:127.0.0.1 (except the
// two -cn ones) and both server and client use.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ditto::testing {

inline bool make_test_certificates(const std::string& directory, std::string& error) {
  const std::string script = R"(set -e
cd ")" + directory + R"("
ca() { mkdir -p $1; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout $1/ca-key.pem -out $1/ca-cert.pem -days 2 -subj "/CN=ditto test CA $1"; }
leaf() { printf "subjectAltName=${SAN-DNS:$2,DNS:localhost,IP:127.0.0.1}\n" > $1/ext.cnf
  [ "$SAN" = none ] && : > $1/ext.cnf
  printf 'extendedKeyUsage=serverAuth,clientAuth\n' >> $1/ext.cnf
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $4 -out $1/$2.csr \
    -subj "/CN=$2"
  openssl x509 -req -in $1/$2.csr -CA $1/ca-cert.pem -CAkey $1/ca-key.pem -CAcreateserial \
    -out $3 -days 2 -extfile $1/ext.cnf; }
ca good; ca evil
leaf good alpha good/alpha-cert.pem good/alpha-key.pem
leaf good beta good/beta-cert.pem good/beta-key.pem
leaf evil alpha evil/alpha-cert.pem evil/alpha-key.pem
mkdir -p nbd client noclient evilclient
cp good/ca-cert.pem nbd/; leaf good server nbd/server-cert.pem nbd/server-key.pem
cp good/ca-cert.pem client/; leaf good client client/client-cert.pem client/client-key.pem
cp good/ca-cert.pem noclient/
cp good/ca-cert.pem evilclient/
leaf evil client evilclient/client-cert.pem evilclient/client-key.pem
leaf good gamma good/gamma-cert.pem good/gamma-key.pem
SAN=none; leaf good beta good/beta-cn-cert.pem good/beta-cn-key.pem
SAN=DNS:gamma; leaf good alpha good/alpha-cn-cert.pem good/alpha-cn-key.pem
unset SAN
)";
  const std::string command = "mkdir -p '" + directory + "' && sh -c '" + [&] {
    std::string quoted;
    for (const char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted;
  }() + "' > '" + directory + "/openssl.log' 2>&1";
  if (std::system(command.c_str()) != 0) {
    error = "openssl failed making test certificates; see " + directory + "/openssl.log";
    return false;
  }
  return true;
}

}  // namespace ditto::testing
