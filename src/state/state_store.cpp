#include "state/state_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace porthole::detail {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;
constexpr const char* kFileName = "mappings.json";
constexpr const char* kLockName = "lock";

std::string hex(const Nonce& n) {
  std::string s;
  for (auto b : n) s += fmt::format("{:02x}", b);
  return s;
}

bool unhex(const std::string& s, Nonce& out) {
  if (s.size() != out.size() * 2) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    unsigned v = 0;
    for (int k = 0; k < 2; ++k) {
      char c = s[2 * i + k];
      unsigned d = (c >= '0' && c <= '9') ? unsigned(c - '0')
                 : (c >= 'a' && c <= 'f') ? unsigned(c - 'a' + 10) : 16u;
      if (d > 15) return false;
      v = v * 16 + d;
    }
    out[i] = static_cast<std::uint8_t>(v);
  }
  return true;
}

Status mkdirs(const std::string& dir) {
  std::string path;
  std::stringstream parts(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') path = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    path += part;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
      return make_error(Errc::state, fmt::format("cannot create state directory {}: {}", path,
                                                 std::strerror(errno)));
    path += '/';
  }
  return ok_status();
}

}  // namespace

StateStore::StateStore(StateStore&& other) noexcept
    : file_(std::move(other.file_)), lock_fd_(other.lock_fd_),
      mappings_(std::move(other.mappings_)) {
  other.lock_fd_ = -1;
}

StateStore::~StateStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
}

Result<StateStore> StateStore::open(const std::string& dir, Deadline deadline) {
  if (dir.empty()) return make_error(Errc::state, "no state directory given");
  StateStore store;
  store.file_ = dir + "/" + kFileName;
  std::string lock_path = dir + "/" + kLockName;
  store.lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (store.lock_fd_ < 0 && errno == ENOENT) {  // first run: create the directory
    if (auto st = mkdirs(dir); !st) return st.error();
    store.lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  }
  if (store.lock_fd_ < 0)
    return make_error(Errc::state, fmt::format("cannot open lock file {}: {}", lock_path,
                                               std::strerror(errno)));
  // Another porthole (a cron job, say) may hold the lock for one operation.
  while (::flock(store.lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR)
      return make_error(Errc::state, fmt::format("cannot lock {}: {}", lock_path,
                                                 std::strerror(errno)));
    if (expired(deadline))
      return make_error(Errc::state, fmt::format("the state directory {} is locked by another "
                                                 "porthole process", dir));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  struct stat st{};
  if (::stat(store.file_.c_str(), &st) != 0 && errno == ENOENT) return store;  // first run
  std::ifstream in(store.file_, std::ios::binary);
  if (!in)
    return make_error(Errc::state, fmt::format("cannot read state file {}", store.file_));
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  if (text.empty())
    return make_error(Errc::state, fmt::format("state file {} is empty (a power cut while it "
                                               "was being written?); porthole will not "
                                               "overwrite it: remove it, then run again",
                                               store.file_));
  auto parsed = parse(text, store.file_);
  if (!parsed) return parsed.error();
  // Mappings whose lifetime ran out are gone from the router: forget them.
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  for (auto& m : *parsed)
    if (m.mapping.expires_at == 0 || m.mapping.expires_at > now)
      store.mappings_.push_back(std::move(m));
  return store;
}

std::optional<StoredMapping> StateStore::find(const std::string& gateway,
                                              const std::string& internal_ip,
                                              Transport transport,
                                              std::uint16_t internal_port) const {
  for (const auto& m : mappings_)
    if (m.gateway == gateway && m.mapping.internal_ip == internal_ip &&
        m.mapping.transport == transport && m.mapping.internal_port == internal_port)
      return m;
  return std::nullopt;
}

void StateStore::upsert(const StoredMapping& m) {
  remove(m.gateway, m.mapping.internal_ip, m.mapping.transport, m.mapping.internal_port);
  mappings_.push_back(m);
}

bool StateStore::remove(const std::string& gateway, const std::string& internal_ip,
                        Transport transport, std::uint16_t internal_port) {
  auto before = mappings_.size();
  std::erase_if(mappings_, [&](const StoredMapping& m) {
    return m.gateway == gateway && m.mapping.internal_ip == internal_ip &&
           m.mapping.transport == transport && m.mapping.internal_port == internal_port;
  });
  return mappings_.size() != before;
}

std::string StateStore::serialize(const std::vector<StoredMapping>& mappings) {
  json arr = json::array();
  for (const auto& s : mappings) {
    const Mapping& m = s.mapping;
    json j = {{"gateway", s.gateway},
              {"protocol", protocol_name(m.protocol)},
              {"transport", transport_name(m.transport)},
              {"internal_ip", m.internal_ip},
              {"internal_port", m.internal_port},
              {"external_ip", m.external_ip},
              {"external_port", m.external_port},
              {"lifetime", m.lifetime},
              {"expires_at", m.expires_at},
              {"description", m.description}};
    if (s.has_nonce) j["nonce"] = hex(s.nonce);
    arr.push_back(std::move(j));
  }
  json doc = {{"version", kFormatVersion}, {"mappings", std::move(arr)}};
  return doc.dump(2) + "\n";
}

Result<std::vector<StoredMapping>> StateStore::parse(const std::string& text,
                                                     const std::string& file_name) {
  auto corrupt = [&](const std::string& why) {
    return make_error(Errc::state,
                      fmt::format("state file {} is corrupt ({}); porthole will not overwrite "
                                  "it: repair or remove it, then run again", file_name, why));
  };
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return corrupt("not valid JSON");
  if (!doc.is_object() || !doc.contains("version") || !doc["version"].is_number_integer())
    return corrupt("no format version");
  if (doc["version"].get<int>() != kFormatVersion)
    return corrupt(fmt::format("unknown format version {}", doc["version"].dump()));
  if (!doc.contains("mappings") || !doc["mappings"].is_array())
    return corrupt("no mappings array");
  std::vector<StoredMapping> out;
  std::size_t index = 0;
  for (const auto& j : doc["mappings"]) {
    auto bad = [&](const char* field) {
      return corrupt(fmt::format("mapping #{}: bad or missing '{}'", index, field));
    };
    if (!j.is_object()) return bad("entry");
    auto str = [&](const char* k) -> const std::string* {
      auto it = j.find(k);
      return (it != j.end() && it->is_string()) ? it->get_ptr<const std::string*>() : nullptr;
    };
    auto num = [&](const char* k, std::int64_t lo, std::int64_t hi) -> std::optional<std::int64_t> {
      auto it = j.find(k);
      if (it == j.end() || !it->is_number_integer()) return std::nullopt;
      auto v = it->get<std::int64_t>();
      if (v < lo || v > hi) return std::nullopt;
      return v;
    };
    StoredMapping s;
    Mapping& m = s.mapping;
    const std::string* gw = str("gateway");
    const std::string* proto = str("protocol");
    const std::string* transport = str("transport");
    const std::string* iip = str("internal_ip");
    const std::string* eip = str("external_ip");
    const std::string* desc = str("description");
    auto iport = num("internal_port", 1, 65535);
    auto eport = num("external_port", 1, 65535);
    auto life = num("lifetime", 0, 0xffffffffLL);
    auto exp = num("expires_at", 0, INT64_MAX);
    if (!gw || !is_ipv4_literal(*gw)) return bad("gateway");
    if (!proto || !parse_protocol(*proto)) return bad("protocol");
    if (!transport || (*transport != "tcp" && *transport != "udp")) return bad("transport");
    if (!iip || !is_ipv4_literal(*iip)) return bad("internal_ip");
    if (!eip) return bad("external_ip");
    if (!iport) return bad("internal_port");
    if (!eport) return bad("external_port");
    if (!life) return bad("lifetime");
    if (!exp) return bad("expires_at");
    s.gateway = *gw;
    m.protocol = *parse_protocol(*proto);
    m.transport = *transport == "udp" ? Transport::udp : Transport::tcp;
    m.internal_ip = *iip;
    m.internal_port = static_cast<std::uint16_t>(*iport);
    m.external_ip = *eip;
    m.external_port = static_cast<std::uint16_t>(*eport);
    m.lifetime = static_cast<std::uint32_t>(*life);
    m.expires_at = *exp;
    m.description = desc ? *desc : "";
    if (const std::string* nonce = str("nonce")) {
      if (!unhex(*nonce, s.nonce)) return bad("nonce");
      s.has_nonce = true;
    } else if (m.protocol == Protocol::pcp) {
      return bad("nonce");
    }
    out.push_back(std::move(s));
    ++index;
  }
  return out;
}

Status StateStore::save() {
  std::string tmp = fmt::format("{}.tmp.{}", file_, ::getpid());
  std::string text = serialize(mappings_);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(Errc::state, fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(Errc::state, fmt::format("cannot write {}: {}", tmp, std::strerror(err)));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  // Start writing the data back now, without waiting for the disk: a blocking fsync
  // was half a millisecond, a third of a whole NAT-PMP `open`. A crash of porthole
  // cannot tear the file either way (rename below is atomic); only a power cut within
  // seconds of a write could leave an empty file, which load() then reports instead of
  // overwriting.
  (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return make_error(Errc::state, fmt::format("cannot flush {}: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), file_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return make_error(Errc::state, fmt::format("cannot replace {}: {}", file_, std::strerror(err)));
  }
  // No fsync of the directory: the rename already makes readers see the old file or
  // the new one, never a mix; after a power cut the older state is still a valid one
  // (the mapping it lacks expires on the router). That fsync was a sixth of the time
  // of a whole NAT-PMP `open`.
  return ok_status();
}

}  // namespace porthole::detail
