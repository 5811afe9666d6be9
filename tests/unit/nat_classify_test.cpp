// The RFC 5780 verdict from the behaviour tests' outcomes (core/nat_classify).
#include <catch2/catch.hpp>

#include "core/nat_classify.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;

namespace {

const stun::Endpoint kLocal{ip("192.168.1.100"), 40000};
const stun::Endpoint kPublic{ip("203.0.113.2"), 40000};

// A NAT with endpoint-independent mapping; filtering as the two CHANGE-REQUESTs say.
NatTestResults eim(FilterAnswer ip_port, FilterAnswer port) {
  NatTestResults r;
  r.local = kLocal;
  r.mapped1 = kPublic;
  r.mapped2 = kPublic;
  r.mapped3 = kPublic;
  r.change_ip_port = ip_port;
  r.change_port = port;
  r.control_answered = true;
  return r;
}

}  // namespace

TEST_CASE("NAT verdict: the three cones and their filtering (RFC 5780 s4.4)", "[nat]") {
  auto full = classify_nat(eim(FilterAnswer::answered, FilterAnswer::answered));
  CHECK(full.mapping == NatBehaviour::endpoint_independent);
  CHECK(full.filtering == NatBehaviour::endpoint_independent);
  CHECK(full.nat_type == NatType::full_cone);
  CHECK(full.behind_nat);
  CHECK(full.port_preserved);

  // Test II decides alone: an answer from the other IP and port is EIF whatever test
  // III did (its answer may have been lost).
  CHECK(classify_nat(eim(FilterAnswer::answered, FilterAnswer::silent)).nat_type ==
        NatType::full_cone);

  auto restricted = classify_nat(eim(FilterAnswer::silent, FilterAnswer::answered));
  CHECK(restricted.filtering == NatBehaviour::address_dependent);
  CHECK(restricted.nat_type == NatType::restricted_cone);

  auto port_restricted = classify_nat(eim(FilterAnswer::silent, FilterAnswer::silent));
  CHECK(port_restricted.filtering == NatBehaviour::address_and_port_dependent);
  CHECK(port_restricted.nat_type == NatType::port_restricted_cone);
}

TEST_CASE("NAT verdict: mapping behaviour (RFC 5780 s4.3)", "[nat]") {
  auto r = eim(FilterAnswer::silent, FilterAnswer::silent);
  r.mapped2 = stun::Endpoint{ip("203.0.113.2"), 40001};
  r.mapped3 = stun::Endpoint{ip("203.0.113.2"), 40001};
  auto ad = classify_nat(r);
  CHECK(ad.mapping == NatBehaviour::address_dependent);
  CHECK(ad.nat_type == NatType::symmetric);

  r.mapped3 = stun::Endpoint{ip("203.0.113.2"), 40002};
  auto apd = classify_nat(r);
  CHECK(apd.mapping == NatBehaviour::address_and_port_dependent);
  CHECK(apd.nat_type == NatType::symmetric);
  // Filtering is reported on its own; the classic name does not depend on it.
  CHECK(apd.filtering == NatBehaviour::address_and_port_dependent);

  // Test II differs and test III never answered: not EIM, but which kind is unknown.
  r.mapped3.reset();
  auto half = classify_nat(r);
  CHECK(half.mapping == NatBehaviour::unknown);
  CHECK(half.nat_type == NatType::unknown);
}

TEST_CASE("NAT verdict: port preservation", "[nat]") {
  auto r = eim(FilterAnswer::silent, FilterAnswer::silent);
  CHECK(classify_nat(r).port_preserved);
  r.mapped1.port = 51000;
  r.mapped2 = r.mapped1;
  r.mapped3 = r.mapped1;
  auto v = classify_nat(r);
  CHECK_FALSE(v.port_preserved);
  CHECK(v.nat_type == NatType::port_restricted_cone);
}

TEST_CASE("NAT verdict: no NAT when the server sees our own address", "[nat]") {
  NatTestResults r;
  r.local = {ip("198.51.100.20"), 40000};
  r.mapped1 = r.local;
  r.mapped2 = r.local;
  r.mapped3 = r.local;
  r.control_answered = true;
  r.change_ip_port = FilterAnswer::answered;
  auto open = classify_nat(r);
  CHECK_FALSE(open.behind_nat);
  CHECK(open.nat_type == NatType::none);
  CHECK(open.mapping == NatBehaviour::endpoint_independent);
  CHECK(open.filtering == NatBehaviour::endpoint_independent);

  // A host firewall still filters, and says so, but it is no NAT.
  r.change_ip_port = FilterAnswer::silent;
  r.change_port = FilterAnswer::silent;
  auto firewalled = classify_nat(r);
  CHECK(firewalled.nat_type == NatType::none);
  CHECK(firewalled.filtering == NatBehaviour::address_and_port_dependent);

  // The same IP with another port is a NAT (port translation), not "none".
  r.mapped1.port = 40001;
  CHECK(classify_nat(r).behind_nat);
}

TEST_CASE("NAT verdict: unknown when the tests cannot tell", "[nat]") {
  SECTION("a server without RFC 5780: no other address, nothing run") {
    NatTestResults r;
    r.local = kLocal;
    r.mapped1 = kPublic;
    auto v = classify_nat(r);
    CHECK(v.mapping == NatBehaviour::unknown);
    CHECK(v.filtering == NatBehaviour::unknown);
    CHECK(v.nat_type == NatType::unknown);
    CHECK(v.behind_nat);
  }
  SECTION("420 to CHANGE-REQUEST: mapping known, filtering not") {
    auto v = classify_nat(eim(FilterAnswer::refused, FilterAnswer::refused));
    CHECK(v.mapping == NatBehaviour::endpoint_independent);
    CHECK(v.filtering == NatBehaviour::unknown);
    CHECK(v.nat_type == NatType::unknown);
  }
  SECTION("change IP+port silent, change port refused") {
    CHECK(classify_nat(eim(FilterAnswer::silent, FilterAnswer::refused)).filtering ==
          NatBehaviour::unknown);
  }
  SECTION("the control Binding went unanswered: silence proves nothing") {
    auto r = eim(FilterAnswer::silent, FilterAnswer::silent);
    r.control_answered = false;
    CHECK(classify_nat(r).filtering == NatBehaviour::unknown);
  }
  SECTION("the other address never answered the mapping tests") {
    auto r = eim(FilterAnswer::silent, FilterAnswer::silent);
    r.mapped2.reset();
    r.mapped3.reset();
    auto v = classify_nat(r);
    CHECK(v.mapping == NatBehaviour::unknown);
    CHECK(v.filtering == NatBehaviour::unknown);
    CHECK(v.nat_type == NatType::unknown);
  }
  SECTION("an answer to change IP+port still proves EIF") {
    auto r = eim(FilterAnswer::answered, FilterAnswer::not_run);
    r.control_answered = false;
    CHECK(classify_nat(r).filtering == NatBehaviour::endpoint_independent);
  }
}

TEST_CASE("NAT verdict: a second server tells EIM from symmetric without RFC 5780", "[nat]") {
  NatTestResults r;
  r.local = kLocal;
  r.mapped1 = kPublic;
  SECTION("the same mapping towards the second server: endpoint-independent") {
    r.mapped_second_server = kPublic;
    auto v = classify_nat(r);
    CHECK(v.mapping == NatBehaviour::endpoint_independent);
    CHECK(v.filtering == NatBehaviour::unknown);
    CHECK(v.nat_type == NatType::unknown);  // a cone, but which one needs filtering
  }
  SECTION("another mapping towards the second server: symmetric") {
    r.mapped_second_server = stun::Endpoint{ip("203.0.113.2"), 40001};
    auto v = classify_nat(r);
    CHECK(v.mapping == NatBehaviour::unknown);  // address- or address-and-port-dependent
    CHECK(v.nat_type == NatType::symmetric);
  }
  SECTION("RFC 5780's own test II wins over the second server") {
    r.mapped2 = kPublic;
    r.mapped_second_server = stun::Endpoint{ip("203.0.113.2"), 40001};
    CHECK(classify_nat(r).mapping == NatBehaviour::endpoint_independent);
  }
}

TEST_CASE("NAT names as `porthole nat --json` prints them", "[nat]") {
  CHECK(std::string(nat_behaviour_name(NatBehaviour::unknown)) == "unknown");
  CHECK(std::string(nat_behaviour_name(NatBehaviour::endpoint_independent)) ==
        "endpoint-independent");
  CHECK(std::string(nat_behaviour_name(NatBehaviour::address_dependent)) == "address-dependent");
  CHECK(std::string(nat_behaviour_name(NatBehaviour::address_and_port_dependent)) ==
        "address-and-port-dependent");
  CHECK(std::string(nat_type_name(NatType::none)) == "none");
  CHECK(std::string(nat_type_name(NatType::full_cone)) == "full-cone");
  CHECK(std::string(nat_type_name(NatType::restricted_cone)) == "restricted-cone");
  CHECK(std::string(nat_type_name(NatType::port_restricted_cone)) == "port-restricted-cone");
  CHECK(std::string(nat_type_name(NatType::symmetric)) == "symmetric");
  CHECK(std::string(nat_type_name(NatType::unknown)) == "unknown");
}
