// `porthole nat`: public address, NAT behaviour (RFC 5780), double NAT; what it prints.
#pragma once

#include <string>

#include <porthole/nat.hpp>

namespace porthole::cli {

std::string render_nat(const NatReport& report, bool json);

}  // namespace porthole::cli
