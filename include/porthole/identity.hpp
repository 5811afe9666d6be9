// porthole: this host's identity for peer-to-peer, an Ed25519 key pair (RFC 8032), and
// the peer ID other hosts name it by.
//
// The peer ID is the public key itself (so a TLS certificate can carry it and the tunnel
// can pin it), written as 55 characters of lowercase RFC 4648 base32 without padding:
//   base32(public key (32 bytes) || CRC-16 of the key (2 bytes, big-endian))
// The CRC (CRC-16/CCITT, polynomial 0x1021, initial value 0xFFFF) is a code, not a
// hash: it detects every error confined to 16 consecutive bits, so every mistyped
// character, every swap of two neighbours and every run of up to three wrong
// characters, which a truncated hash would only catch with probability 1 - 2^-16.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "porthole/error.hpp"

namespace porthole {

inline constexpr std::size_t kPeerIdLength = 55;     // characters
inline constexpr std::size_t kSignatureLength = 64;  // bytes, Ed25519 (RFC 8032 s5.1.6)

struct PeerId {
  std::array<std::uint8_t, 32> key{};  // the Ed25519 public key
  std::string to_string() const;       // the 55-character form
  friend bool operator==(const PeerId&, const PeerId&) = default;
};

// Reads the 55-character form; upper case is accepted, and so are spaces and dashes
// between characters (people group long IDs when they copy them). Errc::usage with a
// message saying what is wrong: the length (too short / too long, by how many), a
// character outside the alphabet (which one, where, and the letter it was probably
// meant to be: 0 -> o, 1 -> l, 8 -> b, 9 -> g), a last character whose unused bits are
// not zero, or a checksum that does not match (a typo somewhere).
Result<PeerId> parse_peer_id(std::string_view text);

// True when `signature` is `id`'s Ed25519 signature of `message`.
bool verify_signature(const PeerId& id, std::span<const std::uint8_t> message,
                      std::span<const std::uint8_t> signature) noexcept;

class Identity {
 public:
  // The name of the private key's file in the state directory.
  static constexpr const char* kKeyFileName = "identity.key";

  // The identity kept in `state_dir` (empty: default_state_dir()): the key file is read
  // if it exists, else made (a new random key) and written with mode 0600, exclusively
  // (a temporary file opened O_CREAT|O_EXCL|O_NOFOLLOW, then linked into place without
  // replacing anything). An existing file is never replaced: one that is a symlink, not
  // a regular file, not owned by us, readable or writable by group or others, or not an
  // Ed25519 key is Errc::state naming the file and why, and so is a state directory
  // that is writable by group or others (anyone who may replace the file owns the
  // identity).
  static Result<Identity> load_or_create(const std::string& state_dir = {});
  // The identity of a known 32-byte seed (RFC 8032 s5.1.5's private key); Errc::usage
  // for another size. For tests and known-answer checks; nothing is written.
  static Result<Identity> from_seed(std::span<const std::uint8_t> seed);

  const PeerId& id() const noexcept { return id_; }
  // The key file (empty for from_seed()).
  const std::string& key_file() const noexcept { return key_file_; }
  // A 64-byte Ed25519 signature of `message`.
  Result<std::vector<std::uint8_t>> sign(std::span<const std::uint8_t> message) const;
  // The private key as an unencrypted PKCS#8 PEM, the form of the key file.
  Result<std::string> private_key_pem() const;

  Identity(const Identity&) = default;
  Identity& operator=(const Identity&) = default;
  // A moved-from identity keeps its seed until its destructor wipes it.
  Identity(Identity&&) = default;
  Identity& operator=(Identity&&) = default;
  ~Identity();

 private:
  Identity() = default;
  std::array<std::uint8_t, 32> seed_{};
  PeerId id_;
  std::string key_file_;
};

}  // namespace porthole
