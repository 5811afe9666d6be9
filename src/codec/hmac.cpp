#include "codec/hmac.hpp"

#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

namespace porthole::detail {

Sha1Digest hmac_sha1(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  hmac_sha1_ctx ctx;
  hmac_sha1_set_key(&ctx, key.size(), key.data());
  hmac_sha1_update(&ctx, data.size(), data.data());
  Sha1Digest out{};
  hmac_sha1_digest(&ctx, out.size(), out.data());
  return out;
}

Sha256Digest hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key.size(), key.data());
  hmac_sha256_update(&ctx, data.size(), data.data());
  Sha256Digest out{};
  hmac_sha256_digest(&ctx, out.size(), out.data());
  return out;
}

Md5Digest md5(std::span<const std::uint8_t> data) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, data.size(), data.data());
  Md5Digest out{};
  md5_digest(&ctx, out.size(), out.data());
  return out;
}

Sha256Digest sha256(std::span<const std::uint8_t> data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), data.data());
  Sha256Digest out{};
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

bool equal_secret(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && memeql_sec(a.data(), b.data(), a.size()) != 0;
}

}  // namespace porthole::detail
