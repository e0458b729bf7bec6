// Error values for core/ and the I/O path: no exceptions (house style rule 3).
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "core/assert.h"

namespace ditto {

// An error that came from outside our own code (bad bytes, refused request, failed I/O), with a
// message that says what was wrong and where.
struct Error {
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const T& value() const& {
    DITTO_ASSERT(ok());
    return std::get<0>(state_);
  }
  T& value() & {
    DITTO_ASSERT(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    DITTO_ASSERT(ok());
    return std::get<0>(std::move(state_));
  }
  const Error& error() const {
    DITTO_ASSERT(!ok());
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

// Result of an operation that yields nothing on success.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status success() { return Status{}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    DITTO_ASSERT(!ok_);
    return error_;
  }

 private:
  Error error_{};
  bool ok_ = true;
};

}  // namespace ditto
