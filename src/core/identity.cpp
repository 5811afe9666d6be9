// Peer identity (include/porthole/identity.hpp): the peer ID's text form and the key file.
#include "porthole/identity.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "codec/ed25519.hpp"
#include "porthole/porthole.hpp"

namespace porthole {
namespace {

namespace ed = detail::ed25519;

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";  // RFC 4648 s6
constexpr std::size_t kIdBytes = 34;                              // key || CRC-16
// A key file is about 120 bytes; anything much longer is not one.
constexpr std::size_t kMaxKeyFileSize = 4096;

// CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection, no final xor.
std::uint16_t crc16(std::span<const std::uint8_t> bytes) noexcept {
  std::uint16_t crc = 0xFFFF;
  for (std::uint8_t b : bytes) {
    crc = static_cast<std::uint16_t>(crc ^ (b << 8));
    for (int i = 0; i < 8; ++i)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

int base32_value(char c) noexcept {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

// The base32 letter a character outside the alphabet was most likely meant to be.
const char* likely_meant(char c) noexcept {
  switch (c) {
    case '0': return " (did you mean 'o'?)";
    case '1': return " (did you mean 'l' or 'i'?)";
    case '8': return " (did you mean 'b'?)";
    case '9': return " (did you mean 'g'?)";
    default: return "";
  }
}

std::string printable(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", u);
}

Error state_error(const std::string& file, const std::string& why) {
  return make_error(Errc::state, fmt::format("identity key file {}: {}", file, why));
}

// mkdir -p with mode 0700 for the components that do not exist yet.
Status make_directories(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return make_error(Errc::state, fmt::format("cannot create state directory {}: {}", prefix,
                                                 std::strerror(errno)));
  }
  return ok_status();
}

// Whoever may rename or delete entries of the directory can swap in a key of their own.
Status check_directory(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return make_error(Errc::state,
                      fmt::format("cannot use state directory {}: {}", dir, std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    return make_error(Errc::state, fmt::format("state directory {} is not a directory", dir));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return make_error(Errc::state,
                      fmt::format("state directory {} is writable by {} (mode {:04o}): "
                                  "anyone who can write there could replace the identity key; "
                                  "chmod go-w it",
                                  dir, (st.st_mode & S_IWOTH) ? "others" : "its group",
                                  st.st_mode & 07777));
  if (st.st_uid != ::geteuid())
    return make_error(Errc::state, fmt::format("state directory {} is owned by uid {}, not by "
                                               "us (uid {})",
                                               dir, st.st_uid, ::geteuid()));
  return ok_status();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads the key file; an empty optional when there is none.
Result<std::optional<ed::KeyPair>> read_key_file(const std::string& file) {
  Fd f;
  f.fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0) {
    if (errno == ENOENT) return std::optional<ed::KeyPair>{};
    if (errno == ELOOP) return state_error(file, "is a symbolic link; refusing to follow it");
    return state_error(file, fmt::format("cannot open: {}", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0)
    return state_error(file, fmt::format("cannot stat: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return state_error(file, "is not a regular file");
  if (st.st_uid != ::geteuid())
    return state_error(file, fmt::format("is owned by uid {}, not by us (uid {})", st.st_uid,
                                         ::geteuid()));
  if (st.st_mode & 077)
    return state_error(file, fmt::format("is accessible by group or others (mode {:04o}); a "
                                         "private key must be mode 0600: chmod 600 it if it "
                                         "was not read by anyone else, else remove it and "
                                         "make a new identity",
                                         st.st_mode & 07777));
  std::string text;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return state_error(file, fmt::format("cannot read: {}", std::strerror(errno)));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxKeyFileSize)
      return state_error(file, "is too long to be an identity key (corrupt?)");
  }
  auto key = ed::KeyPair::from_pkcs8_pem(text);
  if (!key) return state_error(file, "corrupt: " + key.error().message);
  return std::optional<ed::KeyPair>(std::move(*key));
}

// Writes a new key file where none is; `exists` is set (and nothing written) when
// another process made one first.
Status write_new_key_file(const std::string& dir, const std::string& file, const std::string& pem,
                          bool& exists) {
  exists = false;
  std::array<std::uint8_t, 6> suffix{};
  if (auto st = ed::random_bytes(suffix); !st) return st.error();
  std::string tmp = fmt::format("{}/.{}.{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}.tmp", dir,
                                Identity::kKeyFileName, suffix[0], suffix[1], suffix[2], suffix[3],
                                suffix[4], suffix[5]);
  {
    Fd f;
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd < 0)
      return make_error(Errc::state,
                        fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
    bool good = ::fchmod(f.fd, 0600) == 0;  // whatever the umask did
    std::size_t done = 0;
    while (good && done < pem.size()) {
      ssize_t n = ::write(f.fd, pem.data() + done, pem.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        good = false;
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    good = good && ::fsync(f.fd) == 0;
    if (!good) {
      int saved = errno;
      ::unlink(tmp.c_str());
      return make_error(Errc::state, fmt::format("cannot write {}: {}", tmp, std::strerror(saved)));
    }
  }
  // link() rather than rename(): it fails with EEXIST instead of replacing a key file
  // another process wrote meanwhile, so an identity is never overwritten.
  int rc = ::link(tmp.c_str(), file.c_str());
  int saved = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (saved == EEXIST) {
      exists = true;
      return ok_status();
    }
    return make_error(Errc::state, fmt::format("cannot create {}: {}", file, std::strerror(saved)));
  }
  return ok_status();
}

}  // namespace

std::string PeerId::to_string() const {
  std::array<std::uint8_t, kIdBytes> bytes{};
  std::copy(key.begin(), key.end(), bytes.begin());
  std::uint16_t crc = crc16(key);
  bytes[32] = static_cast<std::uint8_t>(crc >> 8);
  bytes[33] = static_cast<std::uint8_t>(crc & 0xff);
  std::string out;
  out.reserve(kPeerIdLength);
  unsigned acc = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kAlphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (5 - bits)) & 31];
  return out;
}

Result<PeerId> parse_peer_id(std::string_view text) {
  std::string chars;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '-') continue;
    if (base32_value(c) < 0)
      return make_error(Errc::usage,
                        fmt::format("peer ID: {} at position {} is not one of a-z, 2-7{}",
                                    printable(c), i + 1, likely_meant(c)));
    chars += c;
  }
  if (chars.size() != kPeerIdLength)
    return make_error(Errc::usage,
                      fmt::format("peer ID: {} characters, a peer ID has {} ({} {}; cut off "
                                  "or pasted twice?)",
                                  chars.size(), kPeerIdLength,
                                  chars.size() < kPeerIdLength ? kPeerIdLength - chars.size()
                                                               : chars.size() - kPeerIdLength,
                                  chars.size() < kPeerIdLength ? "missing" : "too many"));
  std::array<std::uint8_t, kIdBytes> bytes{};
  unsigned acc = 0;
  int bits = 0;
  std::size_t n = 0;
  for (char c : chars) {
    acc = (acc << 5) | static_cast<unsigned>(base32_value(c));
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes[n++] = static_cast<std::uint8_t>((acc >> bits) & 0xff);
    }
  }
  // 55 * 5 = 275 bits carry 272: the last character's 3 low bits must be zero.
  if ((acc & ((1u << bits) - 1)) != 0)
    return make_error(Errc::usage, fmt::format("peer ID: the last character '{}' cannot end "
                                               "a peer ID (a typo there?)",
                                               chars.back()));
  PeerId id;
  std::copy(bytes.begin(), bytes.begin() + 32, id.key.begin());
  std::uint16_t crc = static_cast<std::uint16_t>((bytes[32] << 8) | bytes[33]);
  if (crc != crc16(id.key))
    return make_error(Errc::usage,
                      "peer ID: the checksum does not match: a character is "
                      "mistyped or two are swapped");
  return id;
}

bool verify_signature(const PeerId& id, std::span<const std::uint8_t> message,
                      std::span<const std::uint8_t> signature) noexcept {
  return ed::verify(id.key, message, signature);
}

Identity::~Identity() { std::fill(seed_.begin(), seed_.end(), std::uint8_t{0}); }

Result<Identity> Identity::from_seed(std::span<const std::uint8_t> seed) {
  if (seed.size() != ed::kSeedSize)
    return make_error(Errc::usage, fmt::format("an Ed25519 seed has {} bytes, not {}",
                                               ed::kSeedSize, seed.size()));
  auto pair = ed::KeyPair::from_seed(seed.first<ed::kSeedSize>());
  if (!pair) return pair.error();
  Identity out;
  std::copy(seed.begin(), seed.end(), out.seed_.begin());
  out.id_.key = pair->public_key();
  return out;
}

Result<Identity> Identity::load_or_create(const std::string& state_dir) {
  std::string dir = state_dir.empty() ? default_state_dir() : state_dir;
  if (auto st = make_directories(dir); !st) return st.error();
  if (auto st = check_directory(dir); !st) return st.error();
  std::string file = dir + "/" + kKeyFileName;
  // Twice at most: a second process may create the file between our look and our link.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto existing = read_key_file(file);
    if (!existing) return existing.error();
    std::optional<ed::KeyPair> pair = std::move(*existing);
    if (!pair) {
      auto made = ed::KeyPair::generate();
      if (!made) return made.error();
      auto pem = made->to_pkcs8_pem();
      if (!pem) return pem.error();
      bool exists = false;
      auto st = write_new_key_file(dir, file, *pem, exists);
      std::fill(pem->begin(), pem->end(), '\0');
      if (!st) return st.error();
      if (exists) continue;
      pair = std::move(*made);
    }
    Identity out;
    out.seed_ = pair->seed();
    out.id_.key = pair->public_key();
    out.key_file_ = file;
    return out;
  }
  return make_error(Errc::state, fmt::format("identity key file {} keeps appearing and "
                                             "vanishing",
                                             file));
}

}  // namespace porthole

namespace porthole {

Result<std::vector<std::uint8_t>> Identity::sign(std::span<const std::uint8_t> message) const {
  auto pair = ed::KeyPair::from_seed(seed_);
  if (!pair) return pair.error();
  auto sig = pair->sign(message);
  if (!sig) return sig.error();
  return std::vector<std::uint8_t>(sig->begin(), sig->end());
}

Result<std::string> Identity::private_key_pem() const {
  auto pair = ed::KeyPair::from_seed(seed_);
  if (!pair) return pair.error();
  return pair->to_pkcs8_pem();
}

}  // namespace porthole
