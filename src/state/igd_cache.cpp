#include "state/igd_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "codec/url_check.hpp"
#include "state/state_store.hpp"

namespace porthole::detail {
namespace {

using nlohmann::json;

constexpr int kCacheVersion = 1;
// Longer than any URL check_device_url accepts, so those are refused there, by policy.
constexpr std::size_t kMaxField = 2 * kMaxDeviceUrlLength;

class DirFd {
 public:
  explicit DirFd(int fd) : fd_(fd) {}
  ~DirFd() { ::close(fd_); }
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string prefix_of(const std::string& dir) { return dir.back() == '/' ? dir : dir + "/"; }

}  // namespace

std::string serialize_igd_cache(const UpnpCachedIgd& e) {
  json doc = {{"version", kCacheVersion},
              {"gateway", e.gateway.to_string()},
              {"local_ip", e.local_ip.to_string()},
              {"location", e.location},
              {"control_url", e.control_url},
              {"service_type", e.service_type},
              {"udn", e.udn},
              {"wan_services", e.wan_services}};
  return doc.dump(2) + "\n";
}

Result<UpnpCachedIgd> parse_igd_cache(const std::string& text) {
  auto bad = [](const std::string& why) {
    return make_error(Errc::state, fmt::format("corrupt ({})", why));
  };
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() ||
      version->get<std::int64_t>() != kCacheVersion)
    return bad("no or unknown format version");
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string()) return std::nullopt;
    const auto& v = it->get_ref<const std::string&>();
    if (v.size() > kMaxField) return std::nullopt;
    for (char c : v)
      if (c < 0x20 || c > 0x7e) return std::nullopt;
    return v;
  };
  auto ipv4 = [&](const char* key) -> std::optional<IpAddress> {
    auto s = str(key);
    if (!s) return std::nullopt;
    auto ip = IpAddress::parse(*s);
    if (!ip || !ip->is_v4()) return std::nullopt;
    return *ip;
  };
  UpnpCachedIgd e;
  auto gateway = ipv4("gateway");
  auto local = ipv4("local_ip");
  auto location = str("location");
  auto control = str("control_url");
  auto service = str("service_type");
  auto udn = str("udn");
  if (!gateway) return bad("bad or missing 'gateway'");
  if (!local) return bad("bad or missing 'local_ip'");
  if (!location) return bad("bad or missing 'location'");
  if (!control) return bad("bad or missing 'control_url'");
  if (!service) return bad("bad or missing 'service_type'");
  if (!udn || udn->size() > kMaxUdnLength) return bad("bad or missing 'udn'");
  e.gateway = *gateway;
  e.local_ip = *local;
  e.location = std::move(*location);
  e.control_url = std::move(*control);
  e.service_type = std::move(*service);
  e.udn = std::move(*udn);
  // Absent in files written before porthole chose among several services: one.
  if (auto it = doc.find("wan_services"); it != doc.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
        it->get<std::int64_t>() > static_cast<std::int64_t>(kMaxWanServices))
      return bad("bad 'wan_services'");
    e.wan_services = static_cast<int>(it->get<std::int64_t>());
  }
  return e;
}

Result<std::optional<UpnpCachedIgd>> load_igd_cache(const std::string& dir) {
  auto fd = open_state_dir(dir);
  if (!fd) return fd.error();
  DirFd d(*fd);
  const std::string path = prefix_of(dir) + kIgdCacheFileName;
  auto text = read_state_file(d.get(), kIgdCacheFileName, path);
  if (!text) return text.error();
  if (!*text) return std::optional<UpnpCachedIgd>{};
  auto entry = parse_igd_cache(**text);
  if (!entry) return make_error(Errc::state, fmt::format("{} is {}", path, entry.error().message));
  return std::optional<UpnpCachedIgd>{std::move(*entry)};
}

Status save_igd_cache(const std::string& dir, const UpnpCachedIgd& entry) {
  auto fd = open_state_dir(dir);
  if (!fd) return fd.error();
  DirFd d(*fd);
  return replace_file(d.get(), prefix_of(dir), kIgdCacheFileName, serialize_igd_cache(entry));
}

Status forget_igd_cache(const std::string& dir) {
  auto fd = open_state_dir(dir);
  if (!fd) return fd.error();
  DirFd d(*fd);
  if (::unlinkat(d.get(), kIgdCacheFileName, 0) != 0 && errno != ENOENT)
    return make_error(Errc::state, fmt::format("cannot remove {}{}: {}", prefix_of(dir),
                                               kIgdCacheFileName, std::strerror(errno)));
  return ok_status();
}

}  // namespace porthole::detail
