// load_turn_credentials ($PORTHOLE_TURN, include/porthole/punch.hpp): the format, and
// files that must be refused (readable by others, incomplete, unknown keys, links).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "porthole/punch.hpp"

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/porthole-turn-creds-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text, mode_t mode) const {
    const std::string file = path + "/" + name;
    std::ofstream(file) << text;
    REQUIRE(::chmod(file.c_str(), mode) == 0);
    return file;
  }
};

}  // namespace

TEST_CASE("TURN credentials file: user and password, comments and blank lines", "[turn]") {
  TempDir d;
  auto creds = porthole::load_turn_credentials(
      d.write("ok", "# the lab\n\nuser=porthole-lab\npassword = s3cret \nserver=198.51.100.14\n",
              0600));
  REQUIRE(creds.ok());
  CHECK(creds->user == "porthole-lab");
  CHECK(creds->password == "s3cret");
  CHECK(creds->server == "198.51.100.14");
}

TEST_CASE("TURN credentials file: refused when others can read it, or incomplete", "[turn]") {
  TempDir d;
  auto loose = porthole::load_turn_credentials(d.write("loose", "user=a\npassword=b\n", 0644));
  REQUIRE_FALSE(loose.ok());
  CHECK(loose.error().code == porthole::Errc::state);
  CHECK(loose.error().message.find("group or others") != std::string::npos);
  for (const char* text :
       {"user=a\n", "password=b\n", "user=a\npassword=b\nport=1\n", "user a\n"}) {
    auto r = porthole::load_turn_credentials(d.write("bad", text, 0600));
    INFO(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == porthole::Errc::state);
  }
  auto missing = porthole::load_turn_credentials(d.path + "/none");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == porthole::Errc::state);
  const std::string link = d.path + "/link";
  REQUIRE(::symlink((d.path + "/bad").c_str(), link.c_str()) == 0);
  auto linked = porthole::load_turn_credentials(link);
  REQUIRE_FALSE(linked.ok());
  CHECK(linked.error().message.find("symbolic link") != std::string::npos);
}
