#include <catch2/catch.hpp>

#include <fstream>
#include <optional>
#include <thread>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "state/state_store.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/porthole-state-test-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Deadline soon() { return Clock::now() + std::chrono::seconds(2); }

StoredMapping sample_pcp() {
  StoredMapping s;
  s.gateway = ip("192.168.1.1");
  s.mapping.protocol = Protocol::pcp;
  s.mapping.transport = Transport::udp;
  s.mapping.internal_ip = ip("192.168.1.100");
  s.mapping.internal_port = 51820;
  s.mapping.external_ip = ip("203.0.113.2");
  s.mapping.external_port = 51821;
  s.mapping.lifetime = 3600;
  s.mapping.expires_at = 0;
  s.mapping.description = "wg";
  s.has_nonce = true;
  for (std::size_t i = 0; i < s.nonce.size(); ++i) s.nonce[i] = static_cast<std::uint8_t>(0xa0 + i);
  return s;
}

}  // namespace

TEST_CASE("state round-trips every field, the PCP nonce included", "[state]") {
  std::string dir = temp_dir();
  {
    auto store = StateStore::open(dir, soon());
    REQUIRE(store.ok());
    CHECK(store->mappings().empty());
    store->upsert(sample_pcp());
    REQUIRE(store->save().ok());
  }
  auto again = StateStore::open(dir, soon());
  REQUIRE(again.ok());
  REQUIRE(again->mappings().size() == 1);
  const auto& got = again->mappings()[0];
  auto want = sample_pcp();
  CHECK(got.gateway == want.gateway);
  CHECK(got.mapping.protocol == Protocol::pcp);
  CHECK(got.mapping.transport == Transport::udp);
  CHECK(got.mapping.internal_port == 51820);
  CHECK(got.mapping.external_port == 51821);
  CHECK(got.mapping.external_ip == ip("203.0.113.2"));
  CHECK(got.mapping.lifetime == 3600);
  CHECK(got.mapping.description == "wg");
  CHECK(got.has_nonce);
  CHECK(got.nonce == want.nonce);
  auto found = again->find(ip("192.168.1.1"), ip("192.168.1.100"), Transport::udp, 51820);
  REQUIRE(found);
  CHECK_FALSE(again->find(ip("192.168.1.1"), ip("192.168.1.100"), Transport::tcp, 51820));
}

TEST_CASE("upsert keeps one record per internal port, remove drops it", "[state]") {
  std::string dir = temp_dir();
  auto store = StateStore::open(dir, soon());
  REQUIRE(store.ok());
  auto a = sample_pcp();
  store->upsert(a);
  a.mapping.external_port = 40000;
  store->upsert(a);
  REQUIRE(store->mappings().size() == 1);
  CHECK(store->mappings()[0].mapping.external_port == 40000);
  CHECK(store->remove(ip("192.168.1.1"), ip("192.168.1.100"), Transport::udp, 51820));
  CHECK(store->mappings().empty());
  CHECK_FALSE(store->remove(ip("192.168.1.1"), ip("192.168.1.100"), Transport::udp, 51820));
}

TEST_CASE("a corrupt state file is an error naming the file, and is left untouched", "[state]") {
  const char* bodies[] = {
      "",  // a power cut right after a write
      "{ not json",
      "[]",
      R"({"version": 99, "mappings": []})",
      R"({"version": 1})",
      R"({"version": 1, "mappings": [{"gateway": "192.168.1.1"}]})",
      R"({"version": 1, "mappings": [{"gateway": "192.168.1.1", "protocol": "pcp",
          "transport": "tcp", "internal_ip": "192.168.1.100", "internal_port": 80,
          "external_ip": "", "external_port": 80, "lifetime": 10, "expires_at": 0}]})",
      R"({"version": 1, "mappings": [{"gateway": "192.168.1.1", "protocol": "upnp",
          "transport": "tcp", "internal_ip": "192.168.1.100", "internal_port": 70000,
          "external_ip": "", "external_port": 80, "lifetime": 10, "expires_at": 0}]})",
      // Addresses are parsed on reading: text that is none is a corrupt file too.
      R"({"version": 1, "mappings": [{"gateway": "192.168.1.1", "protocol": "upnp",
          "transport": "tcp", "internal_ip": "192.168.1.100", "internal_port": 80,
          "external_ip": "not-an-ip", "external_port": 80, "lifetime": 10, "expires_at": 0}]})",
      R"({"version": 1, "mappings": [{"gateway": "192.168.1.1", "protocol": "upnp",
          "transport": "tcp", "internal_ip": "2001:db8::1", "internal_port": 80,
          "external_ip": "", "external_port": 80, "lifetime": 10, "expires_at": 0}]})",
      "\x00\x01\x02garbage",
  };
  for (const char* body : bodies) {
    INFO(body);
    std::string dir = temp_dir();
    std::string file = dir + "/mappings.json";
    {
      std::ofstream out(file, std::ios::binary);
      out << body;
    }
    std::string before = slurp(file);
    auto store = StateStore::open(dir, soon());
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::state);
    CHECK_THAT(store.error().message, Catch::Contains(file));
    CHECK_THAT(store.error().message, Catch::Contains("will not overwrite"));
    CHECK(slurp(file) == before);
  }
}

TEST_CASE("expired mappings are forgotten on load", "[state]") {
  std::string dir = temp_dir();
  {
    auto store = StateStore::open(dir, soon());
    REQUIRE(store.ok());
    auto old = sample_pcp();
    old.mapping.expires_at = 1000;  // 1970: long gone
    store->upsert(old);
    REQUIRE(store->save().ok());
  }
  auto again = StateStore::open(dir, soon());
  REQUIRE(again.ok());
  CHECK(again->mappings().empty());
}

TEST_CASE("a second opener waits for the lock and gives up at its deadline", "[state]") {
  std::string dir = temp_dir();
  auto first = StateStore::open(dir, soon());
  REQUIRE(first.ok());
  auto second = StateStore::open(dir, Clock::now() + std::chrono::milliseconds(100));
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == Errc::state);
  CHECK_THAT(second.error().message, Catch::Contains("locked"));
}

TEST_CASE("save leaves no temporary file behind and writes mode 0600", "[state]") {
  std::string dir = temp_dir();
  auto store = StateStore::open(dir, soon());
  REQUIRE(store.ok());
  store->upsert(sample_pcp());
  REQUIRE(store->save().ok());
  struct stat st {};
  REQUIRE(::stat((dir + "/mappings.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(::access((dir + "/mappings.json.tmp." + std::to_string(::getpid())).c_str(), F_OK) != 0);
}

namespace {

std::string outside_file(const std::string& text) {
  char tmpl[] = "/tmp/porthole-state-victim-XXXXXX";
  int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  return tmpl;
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

}  // namespace

TEST_CASE("save never writes through links planted at temporary names", "[state]") {
  std::string dir = temp_dir();
  std::string victim = outside_file("precious\n");
  // The old name scheme was mappings.json.tmp.<pid>: plant links for the next PIDs.
  for (int pid = ::getpid(); pid < ::getpid() + 64; ++pid)
    REQUIRE(::symlink(victim.c_str(),
                      (dir + "/mappings.json.tmp." + std::to_string(pid)).c_str()) == 0);
  {
    auto store = StateStore::open(dir, soon());
    REQUIRE(store.ok());
    store->upsert(sample_pcp());
    REQUIRE(store->save().ok());
  }
  CHECK(slurp(victim) == "precious\n");
  CHECK_FALSE(is_symlink(dir + "/mappings.json"));
  auto again = StateStore::open(dir, soon());
  REQUIRE(again.ok());
  CHECK(again->mappings().size() == 1);
  // Stale-temp cleanup removes only regular files: the planted links stay links and
  // their target is untouched.
  CHECK(is_symlink(dir + "/mappings.json.tmp." + std::to_string(::getpid())));
  CHECK(slurp(victim) == "precious\n");
}

TEST_CASE("a symlink as state file or lock file is refused, and its target untouched", "[state]") {
  for (const char* name : {"mappings.json", "lock"}) {
    std::string dir = temp_dir();
    std::string victim = outside_file("{\"version\":1,\"mappings\":[]}\n");
    REQUIRE(::symlink(victim.c_str(), (dir + "/" + name).c_str()) == 0);
    auto store = StateStore::open(dir, soon());
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::state);
    CHECK_THAT(store.error().message, Catch::Contains("symbolic link"));
    CHECK(slurp(victim) == "{\"version\":1,\"mappings\":[]}\n");
  }
}

TEST_CASE(
    "a state directory writable by group or others, or owned by another user, is "
    "refused",
    "[state]") {
  std::string dir = temp_dir();
  REQUIRE(::chmod(dir.c_str(), 0770) == 0);
  auto group = StateStore::open(dir, soon());
  REQUIRE_FALSE(group.ok());
  CHECK(group.error().code == Errc::state);
  CHECK_THAT(group.error().message, Catch::Contains("writable by group or others"));
  CHECK(::access((dir + "/lock").c_str(), F_OK) != 0);  // nothing created in it

  REQUIRE(::chmod(dir.c_str(), 01777) == 0);
  CHECK_FALSE(StateStore::open(dir, soon()).ok());

  REQUIRE(::chmod(dir.c_str(), 0700) == 0);
  REQUIRE(::chown(dir.c_str(), ::geteuid() + 1, static_cast<gid_t>(-1)) == 0);
  auto other = StateStore::open(dir, soon());
  REQUIRE_FALSE(other.ok());
  CHECK_THAT(other.error().message, Catch::Contains("owned by uid"));
}

TEST_CASE("temporary files a killed writer left are removed, links and others are not", "[state]") {
  std::string dir = temp_dir();
  std::string victim = outside_file("keep\n");
  { std::ofstream(dir + "/mappings.json.tmp.0123456789abcdef") << "half"; }
  { std::ofstream(dir + "/mappings.json.tmp.4242") << "half"; }  // the old pid names
  { std::ofstream(dir + "/notes.txt") << "mine"; }
  REQUIRE(::symlink(victim.c_str(), (dir + "/mappings.json.tmp.link").c_str()) == 0);
  auto store = StateStore::open(dir, soon());
  REQUIRE(store.ok());
  CHECK(::access((dir + "/mappings.json.tmp.0123456789abcdef").c_str(), F_OK) != 0);
  CHECK(::access((dir + "/mappings.json.tmp.4242").c_str(), F_OK) != 0);
  CHECK(slurp(dir + "/notes.txt") == "mine");
  CHECK(is_symlink(dir + "/mappings.json.tmp.link"));
  CHECK(slurp(victim) == "keep\n");
}

TEST_CASE("a waiting opener gets the lock once the holder lets it go", "[state]") {
  std::string dir = temp_dir();
  std::optional<Result<StateStore>> first;
  first.emplace(StateStore::open(dir, soon()));
  REQUIRE(first->ok());
  (*first)->upsert(sample_pcp());
  REQUIRE((*first)->save().ok());
  std::optional<Result<StateStore>> second;
  std::thread waiter(
      [&] { second.emplace(StateStore::open(dir, Clock::now() + std::chrono::seconds(30))); });
  first.reset();  // releases the lock; the waiter must wake, not give up
  waiter.join();
  REQUIRE(second->ok());
  CHECK((*second)->mappings().size() == 1);
}

TEST_CASE("a pending record round-trips", "[state]") {
  StoredMapping p = sample_pcp();
  p.pending = true;
  auto parsed = StateStore::parse(StateStore::serialize({p, sample_pcp()}), "f");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0].pending);
  CHECK_FALSE((*parsed)[1].pending);
  auto bad = StateStore::parse(R"({"version":1,"mappings":[{"gateway":"192.168.1.1",
    "protocol":"natpmp","transport":"tcp","internal_ip":"192.168.1.100","internal_port":1,
    "external_ip":"","external_port":1,"lifetime":0,"expires_at":0,"pending":"yes"}]})",
                               "f");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("pending"));
}
