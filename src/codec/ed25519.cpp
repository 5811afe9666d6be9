// Ed25519 through GnuTLS (codec/ed25519.hpp). GnuTLS objects live only inside one call,
// each freed by a small owner, so no GnuTLS type escapes this file.
#include "codec/ed25519.hpp"

#include <algorithm>
#include <cstring>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

// GnuTLS initialises itself from a library constructor at every program start (0.4 to
// 0.8 ms: its random generator, its algorithm tables, p11-kit), even for a `porthole
// --version` that never signs anything. This documented hook (gnutls/gnutls.h) turns
// that off; gnutls_global_init() is then called here on the first use instead.
// (C linkage: the hook replaces a weak C symbol of the library.)
extern "C" {
GNUTLS_SKIP_GLOBAL_INIT
}

namespace porthole::detail::ed25519 {
namespace {

// True once GnuTLS is initialised (once per process; a function-local static is
// thread-safe to initialise, C++11 [stmt.dcl]).
bool gnutls_ready() noexcept {
  static const bool ready = gnutls_global_init() >= 0;
  return ready;
}

// A GnuTLS key object, made by its init function and freed by its deinit function.
template <class T, int (*Init)(T*), void (*Deinit)(T)>
struct Owned {
  T key = nullptr;
  Owned() {
    if (!gnutls_ready() || Init(&key) < 0) key = nullptr;
  }
  ~Owned() {
    if (key) Deinit(key);
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
};
using X509Key = Owned<gnutls_x509_privkey_t, gnutls_x509_privkey_init, gnutls_x509_privkey_deinit>;
using PrivKey = Owned<gnutls_privkey_t, gnutls_privkey_init, gnutls_privkey_deinit>;
using PubKey = Owned<gnutls_pubkey_t, gnutls_pubkey_init, gnutls_pubkey_deinit>;
// A datum GnuTLS allocated; wiped (it may hold a seed) and freed.
struct OwnedDatum {
  gnutls_datum_t d{nullptr, 0};
  ~OwnedDatum() {
    if (d.data) {
      gnutls_memset(d.data, 0, d.size);
      gnutls_free(d.data);
    }
  }
};

gnutls_datum_t datum(std::span<const std::uint8_t> bytes) {
  return gnutls_datum_t{const_cast<unsigned char*>(bytes.data()),
                        static_cast<unsigned>(bytes.size())};
}

Error gnutls_error(const char* what, int code) {
  return make_error(Errc::internal, std::string(what) + ": " + gnutls_strerror(code));
}

// The seed and public key of an Ed25519 key GnuTLS holds.
template <class Export>
Status read_raw(Export&& export_raw, Seed& seed, PublicKey& pub, Errc code) {
  gnutls_ecc_curve_t curve{};
  OwnedDatum x, k;
  int rc = export_raw(&curve, &x.d, &k.d);
  if (rc < 0) return make_error(code, std::string("not an Ed25519 key: ") + gnutls_strerror(rc));
  if (curve != GNUTLS_ECC_CURVE_ED25519 || x.d.size != kPublicKeySize || k.d.size != kSeedSize)
    return make_error(code, "not an Ed25519 key");
  std::memcpy(pub.data(), x.d.data, kPublicKeySize);
  std::memcpy(seed.data(), k.d.data, kSeedSize);
  return ok_status();
}

}  // namespace

// Fills a KeyPair from what GnuTLS exported.
struct KeyPairAccess {
  static Result<KeyPair> from_x509(X509Key& key, Errc code) {
    KeyPair pair;
    auto st = read_raw(
        [&](gnutls_ecc_curve_t* c, gnutls_datum_t* x, gnutls_datum_t* k) {
          return gnutls_x509_privkey_export_ecc_raw(key.key, c, x, nullptr, k);
        },
        pair.seed_, pair.public_, code);
    if (!st) return st.error();
    return pair;
  }
};

KeyPair::~KeyPair() { gnutls_memset(seed_.data(), 0, seed_.size()); }

Result<KeyPair> KeyPair::generate() {
  PrivKey key;
  if (!key.key) return make_error(Errc::internal, "gnutls_privkey_init failed");
  int rc = gnutls_privkey_generate2(key.key, GNUTLS_PK_EDDSA_ED25519,
                                    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0, nullptr, 0);
  if (rc < 0) return gnutls_error("cannot generate an Ed25519 key", rc);
  KeyPair pair;
  auto st = read_raw(
      [&](gnutls_ecc_curve_t* c, gnutls_datum_t* x, gnutls_datum_t* k) {
        return gnutls_privkey_export_ecc_raw2(key.key, c, x, nullptr, k, 0);
      },
      pair.seed_, pair.public_, Errc::internal);
  if (!st) return st.error();
  return pair;
}

Result<KeyPair> KeyPair::from_seed(std::span<const std::uint8_t, kSeedSize> seed) {
  // OneAsymmetricKey (RFC 8410 s7): SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 },
  // OCTET STRING { OCTET STRING seed } }. GnuTLS computes the public key on import.
  static constexpr std::uint8_t kPrefix[] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                             0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
  std::array<std::uint8_t, sizeof kPrefix + kSeedSize> der{};
  std::copy(std::begin(kPrefix), std::end(kPrefix), der.begin());
  std::copy(seed.begin(), seed.end(), der.begin() + sizeof kPrefix);
  X509Key key;
  if (!key.key) return make_error(Errc::internal, "gnutls_x509_privkey_init failed");
  gnutls_datum_t d = datum(der);
  int rc = gnutls_x509_privkey_import_pkcs8(key.key, &d, GNUTLS_X509_FMT_DER, nullptr,
                                            GNUTLS_PKCS_PLAIN);
  gnutls_memset(der.data(), 0, der.size());
  if (rc < 0) return gnutls_error("cannot import an Ed25519 seed", rc);
  return KeyPairAccess::from_x509(key, Errc::internal);
}

Result<KeyPair> KeyPair::from_pkcs8_pem(std::string_view pem) {
  X509Key key;
  if (!key.key) return make_error(Errc::internal, "gnutls_x509_privkey_init failed");
  gnutls_datum_t d = datum(
      std::span(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size()));
  int rc = gnutls_x509_privkey_import_pkcs8(key.key, &d, GNUTLS_X509_FMT_PEM, nullptr,
                                            GNUTLS_PKCS_PLAIN);
  if (rc < 0)
    return make_error(Errc::state,
                      std::string("not an unencrypted PKCS#8 private key: ") + gnutls_strerror(rc));
  return KeyPairAccess::from_x509(key, Errc::state);
}

Result<std::string> KeyPair::to_pkcs8_pem() const {
  X509Key key;
  if (!key.key) return make_error(Errc::internal, "gnutls_x509_privkey_init failed");
  gnutls_datum_t x = datum(public_), k = datum(seed_);
  int rc = gnutls_x509_privkey_import_ecc_raw(key.key, GNUTLS_ECC_CURVE_ED25519, &x, nullptr, &k);
  if (rc < 0) return gnutls_error("cannot load the Ed25519 key", rc);
  OwnedDatum out;
  rc = gnutls_x509_privkey_export2_pkcs8(key.key, GNUTLS_X509_FMT_PEM, nullptr, GNUTLS_PKCS_PLAIN,
                                         &out.d);
  if (rc < 0) return gnutls_error("cannot write the Ed25519 key as PKCS#8", rc);
  return std::string(reinterpret_cast<const char*>(out.d.data), out.d.size);
}

Result<Signature> KeyPair::sign(std::span<const std::uint8_t> message) const {
  X509Key x509;
  PrivKey key;
  if (!x509.key || !key.key) return make_error(Errc::internal, "gnutls key init failed");
  gnutls_datum_t x = datum(public_), k = datum(seed_);
  int rc = gnutls_x509_privkey_import_ecc_raw(x509.key, GNUTLS_ECC_CURVE_ED25519, &x, nullptr, &k);
  if (rc < 0) return gnutls_error("cannot load the Ed25519 key", rc);
  rc = gnutls_privkey_import_x509(key.key, x509.key, 0);
  if (rc < 0) return gnutls_error("cannot load the Ed25519 key", rc);
  gnutls_datum_t data = datum(message);
  OwnedDatum sig;
  rc = gnutls_privkey_sign_data2(key.key, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig.d);
  if (rc < 0) return gnutls_error("cannot sign", rc);
  if (sig.d.size != kSignatureSize)
    return make_error(Errc::internal, "GnuTLS made an Ed25519 signature of the wrong size");
  Signature out{};
  std::memcpy(out.data(), sig.d.data, kSignatureSize);
  return out;
}

bool verify(const PublicKey& key, std::span<const std::uint8_t> message,
            std::span<const std::uint8_t> signature) noexcept {
  if (signature.size() != kSignatureSize) return false;
  PubKey pub;
  if (!pub.key) return false;
  gnutls_datum_t x = datum(key);
  if (gnutls_pubkey_import_ecc_raw(pub.key, GNUTLS_ECC_CURVE_ED25519, &x, nullptr) < 0)
    return false;
  gnutls_datum_t data = datum(message), sig = datum(signature);
  return gnutls_pubkey_verify_data2(pub.key, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig) >= 0;
}

Status random_bytes(std::span<std::uint8_t> out) noexcept {
  if (out.empty()) return ok_status();
  if (!gnutls_ready() || gnutls_rnd(GNUTLS_RND_RANDOM, out.data(), out.size()) < 0)
    return make_error(Errc::internal, "the random generator failed");
  return ok_status();
}

std::string_view tls_library_version() noexcept {
  const char* v = gnutls_check_version(nullptr);
  return v != nullptr ? std::string_view(v) : std::string_view("unknown");
}

}  // namespace porthole::detail::ed25519
