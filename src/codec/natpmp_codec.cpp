// NAT-PMP (RFC 6886) reply codec. Fields are read and written at explicit offsets, in
// network byte order, one byte at a time (as in pcp_codec.cpp).
#include "codec/natpmp_codec.hpp"

#include <fmt/format.h>
#include "codec/byte_order.hpp"

namespace porthole::detail::natpmp {
namespace {

// Offsets (see the diagrams in natpmp_codec.hpp).
constexpr std::size_t kOffVersion = 0;
constexpr std::size_t kOffOpcode = 1;
constexpr std::size_t kOffResultCode = 2;
constexpr std::size_t kOffEpoch = 4;
constexpr std::size_t kOffExternalAddress = 8;  // public address reply
constexpr std::size_t kOffInternalPort = 8;     // mapping reply
constexpr std::size_t kOffExternalPort = 10;
constexpr std::size_t kOffLifetime = 12;

Error drop(std::string why) {
  return make_error(Errc::internal, fmt::format("NAT-PMP reply dropped: {}", why));
}

// The full size of a reply to `op`, or 0 for opcodes RFC 6886 does not define.
std::size_t full_size(std::uint8_t op) {
  switch (op) {
    case opcode::public_address: return kPublicAddressReplySize;
    case opcode::map_udp:
    case opcode::map_tcp: return kMappingReplySize;
    default: return 0;
  }
}

const char* opcode_name(std::uint8_t op) {
  switch (op) {
    case opcode::public_address: return "PUBLIC ADDRESS";
    case opcode::map_udp: return "MAP UDP";
    case opcode::map_tcp: return "MAP TCP";
    default: return nullptr;
  }
}

struct ResultInfo {
  const char* name;
  const char* explanation;
};
// s3.5, with what each code usually means on a home router.
constexpr ResultInfo kResults[] = {
    {"SUCCESS", "success"},
    {"UNSUPPORTED_VERSION", "the gateway does not speak NAT-PMP version 0"},
    {"NOT_AUTHORIZED", "the gateway refuses: mapping is disabled or this port is forbidden"},
    {"NETWORK_FAILURE",
     "the gateway has no external address; it may sit behind another NAT (upstream NAT / "
     "CGNAT)"},
    {"OUT_OF_RESOURCES", "the gateway cannot create more mappings now"},
    {"UNSUPPORTED_OPCODE", "the gateway does not support this request"},
};
constexpr std::size_t kResultCount = sizeof(kResults) / sizeof(kResults[0]);

}  // namespace

IpAddress Reply::external_ip() const { return IpAddress::v4(external_address); }

Result<Reply> decode_reply(std::span<const std::uint8_t> bytes) {
  const std::size_t size = bytes.size();
  // libnatpmp copies whatever arrives into its 16-byte reply buffer and reads fields
  // past the end of a short datagram: runts never reach it.
  if (size < kHeaderSize)
    return drop(fmt::format("{} bytes, shorter than the {}-byte header", size, kHeaderSize));

  Reply r;
  r.version = bytes[kOffVersion];
  r.opcode = static_cast<std::uint8_t>(bytes[kOffOpcode] & ~kReplyBit);
  r.result_code = get_u16(bytes, kOffResultCode);

  // RFC 6887 s9: a PCP server that does not speak NAT-PMP answers with UNSUPP_VERSION
  // in its own format; its version byte is its version and result 1 sits where the
  // NAT-PMP result is. Nothing else in it has NAT-PMP's layout.
  if (r.version != kVersion) {
    if (r.result_code == result::unsupported_version) return r;
    return drop(fmt::format("version {} (a PCP packet?), not NAT-PMP version 0", r.version));
  }
  if (size > kMaxReplySize)
    return drop(fmt::format("{} bytes, longer than any NAT-PMP reply ({})", size, kMaxReplySize));
  r.epoch = get_u32(bytes, kOffEpoch);
  // s3.5: the unsupported-version reply is the bare header, whatever the request was.
  if (r.unsupported_version()) return r;
  // A request (the reply bit clear) is never an answer: perhaps our own, reflected.
  if ((bytes[kOffOpcode] & kReplyBit) == 0)
    return drop(fmt::format("opcode {}: a request, not a reply", bytes[kOffOpcode]));

  const std::size_t full = full_size(r.opcode);
  if (r.result_code == result::success) {
    if (full == 0)
      return drop(fmt::format("success for opcode {}, which porthole never sends", r.opcode));
    if (size != full)
      return drop(
          fmt::format("{} bytes for a {} reply (expected {})", size, opcode_name(r.opcode), full));
  } else if (full != 0 && size != kHeaderSize && size != full) {
    return drop(fmt::format("{} bytes for a {} error reply (expected {} or {})", size,
                            opcode_name(r.opcode), kHeaderSize, full));
  }
  if (full == 0 || size != full) return r;  // an error reply without the opcode's fields

  r.has_body = true;
  if (r.opcode == opcode::public_address) {
    for (std::size_t i = 0; i < 4; ++i) r.external_address[i] = bytes[kOffExternalAddress + i];
  } else {
    r.internal_port = get_u16(bytes, kOffInternalPort);
    r.external_port = get_u16(bytes, kOffExternalPort);
    r.lifetime = get_u32(bytes, kOffLifetime);
  }
  return r;
}

std::vector<std::uint8_t> encode_reply(const Reply& reply) {
  const std::size_t full = full_size(reply.opcode);
  const bool body = reply.has_body && full != 0;
  std::vector<std::uint8_t> out(body ? full : kHeaderSize, 0);
  out[kOffVersion] = reply.version;
  out[kOffOpcode] = static_cast<std::uint8_t>(reply.opcode | kReplyBit);
  put_u16(out, kOffResultCode, reply.result_code);
  put_u32(out, kOffEpoch, reply.epoch);
  if (!body) return out;
  if (reply.opcode == opcode::public_address) {
    for (std::size_t i = 0; i < 4; ++i) out[kOffExternalAddress + i] = reply.external_address[i];
  } else {
    put_u16(out, kOffInternalPort, reply.internal_port);
    put_u16(out, kOffExternalPort, reply.external_port);
    put_u32(out, kOffLifetime, reply.lifetime);
  }
  return out;
}

const char* mismatch(const Reply& reply, const RequestKey& key) noexcept {
  if (reply.unsupported_version()) return "unsupported-version answer (nothing to match)";
  if (reply.opcode != key.opcode) return "opcode";
  // s3.3: the reply to a mapping request carries the internal port it was for.
  if (reply.is_mapping() && reply.has_body && reply.internal_port != key.internal_port)
    return "internal port";
  return nullptr;
}

bool is_known_result(std::uint16_t code) noexcept { return code < kResultCount; }

const char* result_name(std::uint16_t code) noexcept {
  return is_known_result(code) ? kResults[code].name : "UNKNOWN";
}

std::string describe_result(std::uint16_t code) {
  if (!is_known_result(code)) return fmt::format("unknown NAT-PMP result code {}", code);
  return fmt::format("{} ({}): {}", kResults[code].name, code, kResults[code].explanation);
}

std::string describe(const Reply& reply) {
  if (reply.version != kVersion)
    return fmt::format("UNSUPPORTED_VERSION from a version-{} server", reply.version);
  const char* op = opcode_name(reply.opcode);
  std::string text = op ? fmt::format("{} {}", op, result_name(reply.result_code))
                        : fmt::format("opcode {} {}", reply.opcode, result_name(reply.result_code));
  if (!is_known_result(reply.result_code)) text += fmt::format(" ({})", reply.result_code);
  if (reply.has_body) {
    if (reply.opcode == opcode::public_address)
      text += " " + reply.external_ip().to_string();
    else
      text += fmt::format(" internal {} -> external {} lifetime {}", reply.internal_port,
                          reply.external_port, reply.lifetime);
  }
  text += fmt::format(" epoch {}", reply.epoch);
  return text;
}

}  // namespace porthole::detail::natpmp
