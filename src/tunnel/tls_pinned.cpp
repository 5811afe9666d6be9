// Pinned TLS 1.3 for QUIC (src/tunnel/tls_pinned.hpp), through GnuTLS.
#include "tunnel/tls_pinned.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

namespace porthole::detail {
namespace {

// GnuTLS's library constructor is switched off (src/codec/ed25519.cpp), so whoever uses
// it first initialises it; gnutls_global_init() counts its callers and is thread-safe.
bool gnutls_ready() noexcept {
  static const bool ready = gnutls_global_init() >= 0;
  return ready;
}

// TLS 1.3 only (RFC 9001 s4.2), no middlebox compatibility mode (RFC 9001 s8.4).
constexpr const char* kPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE";

struct Crt {
  gnutls_x509_crt_t crt = nullptr;
  Crt() {
    if (gnutls_x509_crt_init(&crt) < 0) crt = nullptr;
  }
  ~Crt() {
    if (crt) gnutls_x509_crt_deinit(crt);
  }
};
struct X509Key {
  gnutls_x509_privkey_t key = nullptr;
  X509Key() {
    if (gnutls_x509_privkey_init(&key) < 0) key = nullptr;
  }
  ~X509Key() {
    if (key) gnutls_x509_privkey_deinit(key);
  }
};
struct PrivKey {
  gnutls_privkey_t key = nullptr;
  PrivKey() {
    if (gnutls_privkey_init(&key) < 0) key = nullptr;
  }
  ~PrivKey() {
    if (key) gnutls_privkey_deinit(key);
  }
};

Error tls_error(const char* what, int rc) {
  return make_error(Errc::internal, fmt::format("{}: {}", what, gnutls_strerror(rc)));
}

// A self-signed certificate for the identity's key. Nothing in it but the key matters:
// the peer pins the key, so names and dates are fixed values (no clock is read) and the
// validity has no end (RFC 5280 s4.1.2.5's 99991231235959Z).
Status add_certificate(gnutls_certificate_credentials_t credentials, const Identity& identity) {
  auto pem = identity.private_key_pem();
  if (!pem) return pem.error();
  X509Key key;
  PrivKey signer;
  Crt crt;
  if (!key.key || !signer.key || !crt.crt) return make_error(Errc::internal, "GnuTLS init failed");
  gnutls_datum_t d{reinterpret_cast<unsigned char*>(pem->data()),
                   static_cast<unsigned>(pem->size())};
  int rc = gnutls_x509_privkey_import_pkcs8(key.key, &d, GNUTLS_X509_FMT_PEM, nullptr,
                                            GNUTLS_PKCS_PLAIN);
  std::fill(pem->begin(), pem->end(), '\0');
  if (rc < 0) return tls_error("cannot load the identity key", rc);
  if ((rc = gnutls_privkey_import_x509(signer.key, key.key, 0)) < 0)
    return tls_error("cannot load the identity key", rc);
  const unsigned char serial[] = {0x01};
  std::string dn = "CN=" + identity.id().to_string();
  if ((rc = gnutls_x509_crt_set_version(crt.crt, 3)) < 0 ||
      (rc = gnutls_x509_crt_set_serial(crt.crt, serial, sizeof serial)) < 0 ||
      (rc = gnutls_x509_crt_set_activation_time(crt.crt, 0)) < 0 ||
      (rc = gnutls_x509_crt_set_expiration_time(crt.crt, GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION)) <
          0 ||
      (rc = gnutls_x509_crt_set_dn(crt.crt, dn.c_str(), nullptr)) < 0 ||
      (rc = gnutls_x509_crt_set_key(crt.crt, key.key)) < 0 ||
      (rc = gnutls_x509_crt_privkey_sign(crt.crt, crt.crt, signer.key, GNUTLS_DIG_SHA512, 0)) < 0)
    return tls_error("cannot make the TLS certificate", rc);
  if ((rc = gnutls_certificate_set_x509_key(credentials, &crt.crt, 1, key.key)) < 0)
    return tls_error("cannot use the TLS certificate", rc);
  return ok_status();
}

// The peer's key, when its leaf certificate holds an Ed25519 key; else why not.
std::string peer_key(gnutls_session_t session, PeerId& id) {
  unsigned count = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &count);
  if (!certs || count == 0) return "the peer presented no certificate";
  Crt crt;
  if (!crt.crt || gnutls_x509_crt_import(crt.crt, &certs[0], GNUTLS_X509_FMT_DER) < 0)
    return "the peer's certificate cannot be read";
  if (gnutls_x509_crt_get_pk_algorithm(crt.crt, nullptr) != GNUTLS_PK_EDDSA_ED25519)
    return "the peer's certificate does not hold an Ed25519 key (not a porthole peer)";
  gnutls_ecc_curve_t curve{};
  gnutls_datum_t x{nullptr, 0}, y{nullptr, 0};
  int rc = gnutls_x509_crt_get_pk_ecc_raw(crt.crt, &curve, &x, &y);
  std::string why;
  if (rc < 0 || curve != GNUTLS_ECC_CURVE_ED25519 || x.size != id.key.size())
    why = "the peer's certificate holds a malformed Ed25519 key";
  else
    std::memcpy(id.key.data(), x.data, id.key.size());
  gnutls_free(x.data);
  gnutls_free(y.data);
  return why;
}

}  // namespace

bool tls_random(std::span<std::uint8_t> out) noexcept {
  return gnutls_ready() && gnutls_rnd(GNUTLS_RND_RANDOM, out.data(), out.size()) == 0;
}

TlsPinned::~TlsPinned() {
  if (session_) gnutls_deinit(session_);
  if (credentials_) gnutls_certificate_free_credentials(credentials_);
}

// GnuTLS verifies nothing by itself here: there is no CA. This runs once the peer's
// Certificate and CertificateVerify are in (RFC 8446 s4.4.2-3: GnuTLS has checked the
// signature over the handshake with the certificate's key), and decides on the key alone.
int TlsPinned::verify(gnutls_session_t session) {
  // The session's "db" pointer is free (no session database is used) and leads back here.
  auto* self = static_cast<TlsPinned*>(gnutls_db_get_ptr(session));
  if (!self) return GNUTLS_E_CERTIFICATE_ERROR;
  PeerId id;
  std::string why = peer_key(session, id);
  if (why.empty() && self->options_.check_peer) why = self->options_.check_peer(id);
  if (why.empty()) return 0;
  self->refusal_ = why;
  return GNUTLS_E_CERTIFICATE_ERROR;
}

Status TlsPinned::start(const Options& options) {
  options_ = options;
  if (!gnutls_ready()) return make_error(Errc::internal, "GnuTLS cannot be initialised");
  int rc = gnutls_certificate_allocate_credentials(&credentials_);
  if (rc < 0) return tls_error("gnutls_certificate_allocate_credentials", rc);
  if (options.identity) {
    if (auto st = add_certificate(credentials_, *options.identity); !st) return st;
  }
  gnutls_certificate_set_verify_function(credentials_, &TlsPinned::verify);
  rc = gnutls_init(&session_,
                   (options.server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA);
  if (rc < 0) {
    session_ = nullptr;
    return tls_error("gnutls_init", rc);
  }
  if ((rc = gnutls_priority_set_direct(session_, kPriority, nullptr)) < 0)
    return tls_error("gnutls_priority_set_direct", rc);
  if ((rc = gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, credentials_)) < 0)
    return tls_error("gnutls_credentials_set", rc);
  gnutls_datum_t alpn{reinterpret_cast<unsigned char*>(options_.alpn.data()),
                      static_cast<unsigned>(options_.alpn.size())};
  // RFC 9001 s8.1: ALPN is mandatory for QUIC.
  if ((rc = gnutls_alpn_set_protocols(session_, &alpn, 1, GNUTLS_ALPN_MANDATORY)) < 0)
    return tls_error("gnutls_alpn_set_protocols", rc);
  if (options.server) gnutls_certificate_server_set_request(session_, GNUTLS_CERT_REQUIRE);
  gnutls_session_set_ptr(session_, options.app_data);
  gnutls_db_set_ptr(session_, this);
  return ok_status();
}

}  // namespace porthole::detail
