// The TLS 1.3 side of a porthole QUIC connection (RFC 9001), through GnuTLS: a
// self-signed X.509 certificate made from the host's Ed25519 identity key, and a
// certificate check that pins the peer's key to a peer ID instead of trusting any CA.
// Used only by src/tunnel/quic_connection.cpp, which hands the session to ngtcp2.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "porthole/error.hpp"
#include "porthole/identity.hpp"

struct gnutls_session_int;
struct gnutls_certificate_credentials_st;

namespace porthole::detail {

// Random bytes from GnuTLS's generator (initialising GnuTLS on first use).
bool tls_random(std::span<std::uint8_t> out) noexcept;

class TlsPinned {
 public:
  struct Options {
    bool server = false;
    // The certificate's key; null: no certificate (a server then refuses us).
    const Identity* identity = nullptr;
    std::string alpn;
    // Called with the peer's key once GnuTLS has checked that the peer holds it (its
    // CertificateVerify, RFC 8446 s4.4.3): an empty string accepts, anything else is the
    // reason the handshake is refused (TLS alert bad_certificate).
    std::function<std::string(const PeerId&)> check_peer;
    // What gnutls_session_get_ptr() returns (ngtcp2_crypto_gnutls needs its conn_ref).
    void* app_data = nullptr;
  };

  TlsPinned() = default;
  TlsPinned(const TlsPinned&) = delete;
  TlsPinned& operator=(const TlsPinned&) = delete;
  ~TlsPinned();

  // A session for TLS 1.3 only, ALPN mandatory, a server requiring a client certificate.
  Status start(const Options& options);
  gnutls_session_int* session() const noexcept { return session_; }
  // Why the peer's certificate was refused (empty when it was not).
  const std::string& refusal() const noexcept { return refusal_; }

 private:
  static int verify(gnutls_session_int* session);
  Options options_;
  gnutls_certificate_credentials_st* credentials_ = nullptr;
  gnutls_session_int* session_ = nullptr;
  std::string refusal_;
};

}  // namespace porthole::detail
