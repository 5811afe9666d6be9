// Peer identity: Ed25519 through GnuTLS (RFC 8032 s7.1 vectors), the peer ID's text form
// and its typo detection, and the key file's creation and refusals.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "codec/ed25519.hpp"
#include "porthole/identity.hpp"
#include "hex_bytes.hpp"

using porthole::Errc;
using porthole::Identity;
using porthole::parse_peer_id;
using Bytes = std::vector<std::uint8_t>;

namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/porthole-identity-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  { std::ofstream(path, std::ios::binary) << text; }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// RFC 8032 s7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
const std::string kSeed1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const std::string kPublic1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const std::string kSignature1 =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
const std::string kSeed2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const std::string kPublic2 = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const std::string kSignature2 =
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

}  // namespace

TEST_CASE("Ed25519 known answers: RFC 8032 s7.1 tests 1 and 2, byte for byte") {
  struct Vector {
    std::string seed, pub, sig;
    Bytes message;
  };
  for (const auto& v :
       {Vector{kSeed1, kPublic1, kSignature1, {}}, Vector{kSeed2, kPublic2, kSignature2, {0x72}}}) {
    auto id = Identity::from_seed(hex_bytes(v.seed));
    REQUIRE(id.ok());
    CHECK(Bytes(id->id().key.begin(), id->id().key.end()) == hex_bytes(v.pub));
    auto sig = id->sign(v.message);
    REQUIRE(sig.ok());
    CHECK(*sig == hex_bytes(v.sig));
    CHECK(porthole::verify_signature(id->id(), v.message, *sig));
  }
}

TEST_CASE("Ed25519 verification refuses a changed message, signature or key") {
  auto id = Identity::from_seed(hex_bytes(kSeed2));
  REQUIRE(id.ok());
  Bytes message = {0x72};
  Bytes sig = hex_bytes(kSignature2);
  CHECK(porthole::verify_signature(id->id(), message, sig));
  Bytes other_message = {0x73};
  CHECK_FALSE(porthole::verify_signature(id->id(), other_message, sig));
  for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{63}}) {
    Bytes bad = sig;
    bad[i] ^= 0x01;
    CHECK_FALSE(porthole::verify_signature(id->id(), message, bad));
  }
  CHECK_FALSE(porthole::verify_signature(id->id(), message, Bytes(sig.begin(), sig.end() - 1)));
  auto other = Identity::from_seed(hex_bytes(kSeed1));
  REQUIRE(other.ok());
  CHECK_FALSE(porthole::verify_signature(other->id(), message, sig));
  CHECK(Identity::from_seed(Bytes(31, 1)).error().code == Errc::usage);
}

TEST_CASE("Ed25519 PKCS#8 PEM round trip keeps the key") {
  auto made = porthole::detail::ed25519::KeyPair::generate();
  REQUIRE(made.ok());
  auto pem = made->to_pkcs8_pem();
  REQUIRE(pem.ok());
  CHECK(pem->rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  auto back = porthole::detail::ed25519::KeyPair::from_pkcs8_pem(*pem);
  REQUIRE(back.ok());
  CHECK(back->public_key() == made->public_key());
  CHECK(back->seed() == made->seed());
  auto bad = porthole::detail::ed25519::KeyPair::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\n");
  CHECK(bad.error().code == Errc::state);
}

TEST_CASE("peer ID: 55 lowercase base32 characters that parse back to the key") {
  auto id = Identity::from_seed(hex_bytes(kSeed1));
  REQUIRE(id.ok());
  std::string text = id->id().to_string();
  CHECK(text.size() == porthole::kPeerIdLength);
  CHECK(text.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567") == std::string::npos);
  auto back = parse_peer_id(text);
  REQUIRE(back.ok());
  CHECK(*back == id->id());
  // Upper case and grouping are accepted.
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(parse_peer_id(upper).ok());
  std::string grouped = text.substr(0, 11) + "-" + text.substr(11, 11) + " " + text.substr(22);
  REQUIRE(parse_peer_id(grouped).ok());
  CHECK(*parse_peer_id(grouped) == id->id());
  // Another key, another ID.
  auto other = Identity::from_seed(hex_bytes(kSeed2));
  REQUIRE(other.ok());
  CHECK(other->id().to_string() != text);
}

TEST_CASE("peer ID: every single-character typo and every neighbour swap is caught") {
  auto id = Identity::from_seed(hex_bytes(kSeed2));
  REQUIRE(id.ok());
  const std::string text = id->id().to_string();
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  int caught = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    for (char c : alphabet) {
      if (c == text[i]) continue;
      std::string typo = text;
      typo[i] = c;
      auto r = parse_peer_id(typo);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == Errc::usage);
      ++caught;
    }
  CHECK(caught == 55 * 31);
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == text[i + 1]) continue;
    std::string swapped = text;
    std::swap(swapped[i], swapped[i + 1]);
    CHECK_FALSE(parse_peer_id(swapped).ok());
  }
}

TEST_CASE("peer ID: each rejection says what is wrong") {
  auto id = Identity::from_seed(hex_bytes(kSeed1));
  REQUIRE(id.ok());
  const std::string text = id->id().to_string();
  auto short_id = parse_peer_id(text.substr(0, 54));
  REQUIRE_FALSE(short_id.ok());
  CHECK_THAT(short_id.error().message,
             Catch::Contains("54 characters") && Catch::Contains("1 missing"));
  auto long_id = parse_peer_id(text + "aa");
  REQUIRE_FALSE(long_id.ok());
  CHECK_THAT(long_id.error().message, Catch::Contains("2 too many"));
  auto empty = parse_peer_id("");
  CHECK_FALSE(empty.ok());
  std::string zero = text;
  zero[3] = '0';
  auto alpha = parse_peer_id(zero);
  REQUIRE_FALSE(alpha.ok());
  CHECK_THAT(alpha.error().message,
             Catch::Contains("'0' at position 4") && Catch::Contains("did you mean 'o'"));
  std::string one = text;
  one[0] = '1';
  CHECK_THAT(parse_peer_id(one).error().message, Catch::Contains("'l' or 'i'"));
  std::string nul = text;
  nul[10] = '\0';
  CHECK_THAT(parse_peer_id(nul).error().message, Catch::Contains("byte 0x00 at position 11"));
  // The last character carries 2 bits of the checksum and 3 unused (zero) bits.
  std::string last = text;
  last.back() = static_cast<char>(last.back() == '7' ? '6' : last.back() + 1);
  auto tail = parse_peer_id(last);
  REQUIRE_FALSE(tail.ok());
  CHECK_THAT(tail.error().message, Catch::Contains("last character"));
  std::string typo = text;
  typo[20] = typo[20] == 'a' ? 'b' : 'a';
  CHECK_THAT(parse_peer_id(typo).error().message, Catch::Contains("checksum"));
}

TEST_CASE("identity file: made once with mode 0600, then loaded, never replaced") {
  std::string dir = make_temp_dir() + "/state/sub";  // missing directories are made
  auto first = Identity::load_or_create(dir);
  REQUIRE(first.ok());
  std::string file = dir + "/" + Identity::kKeyFileName;
  CHECK(first->key_file() == file);
  struct stat st {};
  REQUIRE(::lstat(file.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
  std::string pem = read_file(file);
  CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  auto key_pem = first->private_key_pem();
  REQUIRE(key_pem.ok());
  CHECK(*key_pem == pem);
  auto second = Identity::load_or_create(dir);
  REQUIRE(second.ok());
  CHECK(second->id() == first->id());
  CHECK(read_file(file) == pem);
  // The loaded key signs as the first one did.
  Bytes message = {1, 2, 3};
  auto sig = second->sign(message);
  REQUIRE(sig.ok());
  CHECK(porthole::verify_signature(first->id(), message, *sig));
  // No temporary file is left behind.
  CHECK(std::system(("test $(ls -A " + dir + " | wc -l) -eq 1").c_str()) == 0);
}

TEST_CASE("identity file: refusals name the file and leave it unchanged") {
  std::string dir = make_temp_dir();
  std::string file = dir + "/" + Identity::kKeyFileName;
  auto made = Identity::load_or_create(dir);
  REQUIRE(made.ok());
  const std::string pem = read_file(file);

  SECTION("readable by group or others") {
    for (mode_t mode : {mode_t{0644}, mode_t{0640}, mode_t{0604}, mode_t{0660}}) {
      REQUIRE(::chmod(file.c_str(), mode) == 0);
      auto r = Identity::load_or_create(dir);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == Errc::state);
      CHECK_THAT(r.error().message, Catch::Contains(file) && Catch::Contains("mode"));
      CHECK(read_file(file) == pem);
    }
  }
  SECTION("corrupt") {
    std::string corrupt = pem;
    corrupt[40] = corrupt[40] == 'A' ? 'B' : 'A';
    for (const std::string& text :
         {corrupt, std::string(), std::string("hello\n"), std::string(5000, 'x')}) {
      write_file(file, text, 0600);
      auto r = Identity::load_or_create(dir);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == Errc::state);
      CHECK_THAT(r.error().message, Catch::Contains(file));
      CHECK(read_file(file) == text);
    }
  }
  SECTION("a symbolic link") {
    std::string target = dir + "/elsewhere.key";
    REQUIRE(::rename(file.c_str(), target.c_str()) == 0);
    REQUIRE(::symlink(target.c_str(), file.c_str()) == 0);
    auto r = Identity::load_or_create(dir);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::state);
    CHECK_THAT(r.error().message, Catch::Contains("symbolic link"));
    struct stat st {};
    REQUIRE(::lstat(file.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(read_file(target) == pem);
  }
  SECTION("a dangling symbolic link is not followed to create a file") {
    REQUIRE(::unlink(file.c_str()) == 0);
    std::string target = dir + "/made-through-link";
    REQUIRE(::symlink(target.c_str(), file.c_str()) == 0);
    auto r = Identity::load_or_create(dir);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("symbolic link"));
    struct stat st {};
    CHECK(::lstat(target.c_str(), &st) != 0);
  }
  SECTION("a directory") {
    REQUIRE(::unlink(file.c_str()) == 0);
    REQUIRE(::mkdir(file.c_str(), 0700) == 0);
    auto r = Identity::load_or_create(dir);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("not a regular file"));
  }
  SECTION("owned by someone else") {
    if (::geteuid() == 0) {  // only root can give a file away
      REQUIRE(::chown(file.c_str(), 12345, 12345) == 0);
      auto r = Identity::load_or_create(dir);
      REQUIRE_FALSE(r.ok());
      CHECK_THAT(r.error().message, Catch::Contains("owned by uid 12345"));
      CHECK(read_file(file) == pem);
    }
  }
  SECTION("a state directory writable by group or others") {
    for (mode_t mode : {mode_t{0777}, mode_t{0770}, mode_t{0703}}) {
      REQUIRE(::chmod(dir.c_str(), mode) == 0);
      auto r = Identity::load_or_create(dir);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == Errc::state);
      CHECK_THAT(r.error().message, Catch::Contains(dir) && Catch::Contains("writable"));
    }
    REQUIRE(::chmod(dir.c_str(), 0700) == 0);
    CHECK(Identity::load_or_create(dir).ok());
    CHECK(read_file(file) == pem);
  }
}
