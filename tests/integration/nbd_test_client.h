// One NBD write through libnbd for the integration tests: connect (a write auto-promotes the
// node), write, flush, close (the last writer's disconnect auto-demotes).
#pragma once

#include <gtest/gtest.h>
#include <libnbd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ditto::testing {

inline bool nbd_write(const std::string& uri, const std::vector<std::uint8_t>& bytes,
                      std::uint64_t offset) {
  nbd_handle* handle = nbd_create();
  const bool ok = nbd_connect_uri(handle, uri.c_str()) == 0 &&
                  nbd_pwrite(handle, bytes.data(), bytes.size(), offset, 0) == 0 &&
                  nbd_flush(handle, 0) == 0;
  if (!ok) ADD_FAILURE() << "NBD write to " << uri << ": " << nbd_get_error();
  nbd_shutdown(handle, 0);
  nbd_close(handle);
  return ok;
}

}  // namespace ditto::testing
