// Ed25519 (RFC 8032) keys and signatures through GnuTLS, and the random bytes a key,
// a challenge or an ICE password is made of. The one file that includes <gnutls/...>:
// everything else sees byte arrays.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "porthole/error.hpp"

namespace porthole::detail::ed25519 {

inline constexpr std::size_t kSeedSize = 32;       // the private key (RFC 8032 s5.1.5)
inline constexpr std::size_t kPublicKeySize = 32;  // A, the encoded point (s5.1.5)
inline constexpr std::size_t kSignatureSize = 64;  // R || S (s5.1.6)

using Seed = std::array<std::uint8_t, kSeedSize>;
using PublicKey = std::array<std::uint8_t, kPublicKeySize>;
using Signature = std::array<std::uint8_t, kSignatureSize>;

// A private key: its seed and the public key derived from it. The seed is wiped when
// the object goes away.
class KeyPair {
 public:
  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  ~KeyPair();

  // A new key from GnuTLS's random generator (gnutls_privkey_generate2).
  static Result<KeyPair> generate();
  // The key of a known seed (RFC 8032 s7.1 vectors); GnuTLS derives the public half.
  static Result<KeyPair> from_seed(std::span<const std::uint8_t, kSeedSize> seed);
  // An unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----", RFC 8410 s7) holding an
  // Ed25519 key; Errc::state with the reason for anything else.
  static Result<KeyPair> from_pkcs8_pem(std::string_view pem);
  // The same form, as gnutls_x509_privkey_export2_pkcs8 writes it: what a GnuTLS TLS
  // 1.3 certificate credential loads (gnutls_certificate_set_x509_key_mem).
  Result<std::string> to_pkcs8_pem() const;

  const PublicKey& public_key() const noexcept { return public_; }
  const Seed& seed() const noexcept { return seed_; }
  Result<Signature> sign(std::span<const std::uint8_t> message) const;

 private:
  friend struct KeyPairAccess;
  Seed seed_{};
  PublicKey public_{};
};

// True when `signature` is a valid Ed25519 signature of `message` by `key`
// (gnutls_pubkey_verify_data2, GNUTLS_SIGN_EDDSA_ED25519).
bool verify(const PublicKey& key, std::span<const std::uint8_t> message,
            std::span<const std::uint8_t> signature) noexcept;

// Bytes from GnuTLS's generator for nonces and secrets (GNUTLS_RND_RANDOM);
// Errc::internal if it fails.
Status random_bytes(std::span<std::uint8_t> out) noexcept;

// The version of the GnuTLS library running (gnutls_check_version(NULL)); it does not
// initialise GnuTLS, so `porthole --version` stays as cheap as before.
std::string_view tls_library_version() noexcept;

}  // namespace porthole::detail::ed25519
