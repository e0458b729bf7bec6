// Overloaded{lambdas...}: one visitor for std::visit built from several lambdas.
#pragma once

namespace ditto {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace ditto
