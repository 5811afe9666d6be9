#include "state/state_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <array>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
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
// Temporary files are the file's name + ".tmp." + 16 random hex digits.
constexpr const char* kTempInfix = ".tmp.";
// The files whose killed writers' temporaries open() removes.
constexpr std::array<const char*, 2> kReplacedFiles = {kFileName, kIgdCacheFileName};

Error state_error(const std::string& what, const std::string& path, int err) {
  return make_error(Errc::state, fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

Status random_bytes(void* out, std::size_t size) {
  auto* p = static_cast<std::uint8_t*>(out);
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::getrandom(p + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::internal, fmt::format("getrandom: {}", std::strerror(errno)));
    }
    got += static_cast<std::size_t>(n);
  }
  return ok_status();
}

// A state directory anyone else may write to lets them plant files and links for root
// to trip over: refuse it, saying why, as ssh's StrictModes refuses ~/.ssh.
Status check_dir(int dir_fd, const std::string& dir) {
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) return state_error("cannot stat state directory", dir, errno);
  if (st.st_uid != ::geteuid())
    return make_error(Errc::state,
                      fmt::format("state directory {} is owned by uid {}, not by this user "
                                  "(uid {}): porthole will not use it; use another "
                                  "--state-dir or fix its owner",
                                  dir, st.st_uid, ::geteuid()));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return make_error(Errc::state,
                      fmt::format("state directory {} is writable by group or others (mode "
                                  "{:o}): porthole will not use it; run chmod go-w {}",
                                  dir, st.st_mode & 07777, dir));
  return ok_status();
}

// Waits for the exclusive lock on `fd` until `deadline`. The lock is held only for a
// read-modify-write of the file (no network exchange inside it), so waits are short;
// the bound is for a wedged holder (a stopped process). flock(2) has no timeout and a
// library must not play SIGALRM games, so a helper thread sleeps in the blocking
// flock(LOCK_EX) on a duplicate of the descriptor (the same open file description, so
// the lock it gets is ours) while we wait on a condition variable until the deadline.
// If we give up first, the helper drops the lock as soon as it gets it. flock rather
// than F_OFD_SETLKW: both belong to the open file description, and flock is what
// earlier porthole versions take, so a running older `hold` and this one still exclude
// each other.
Status lock_until(int fd, Deadline deadline, const std::string& lock_path, const std::string& dir) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return ok_status();
  if (errno != EWOULDBLOCK && errno != EINTR) return state_error("cannot lock", lock_path, errno);
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool abandoned = false;
    int err = 0;
  };
  auto wait = std::make_shared<Wait>();
  int helper_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (helper_fd < 0) return state_error("cannot lock", lock_path, errno);
  std::thread([wait, helper_fd] {
    int rc;
    do rc = ::flock(helper_fd, LOCK_EX);
    while (rc != 0 && errno == EINTR);
    int err = rc == 0 ? 0 : errno;
    std::lock_guard<std::mutex> hold(wait->mu);
    wait->done = true;
    wait->err = err;
    if (rc == 0 && wait->abandoned) (void)::flock(helper_fd, LOCK_UN);
    ::close(helper_fd);
    wait->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lk(wait->mu);
  if (!wait->cv.wait_until(lk, deadline, [&] { return wait->done; })) {
    wait->abandoned = true;
    return make_error(Errc::state, fmt::format("the state directory {} stayed locked by another "
                                               "porthole process until the deadline; nothing "
                                               "was changed",
                                               dir));
  }
  if (wait->err != 0) return state_error("cannot lock", lock_path, wait->err);
  return ok_status();
}

// Under the lock no writer is between open and rename, so every temporary file left is
// a killed writer's. Only our own pattern, only regular files (never what a link
// points to: unlinkat removes the name itself).
void remove_stale_temps(int dir_fd) {
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return;
  }
  auto is_temp = [](const char* entry) {
    for (const char* file : kReplacedFiles) {
      const std::string prefix = std::string(file) + kTempInfix;
      if (std::strncmp(entry, prefix.c_str(), prefix.size()) == 0) return true;
    }
    return false;
  };
  while (struct dirent* e = ::readdir(d)) {
    if (!is_temp(e->d_name)) continue;
    struct stat st {};
    if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
      (void)::unlinkat(dir_fd, e->d_name, 0);
  }
  ::closedir(d);
}

}  // namespace

Result<std::optional<std::string>> read_state_file(int dir_fd, const char* name,
                                                   const std::string& path) {
  int fd = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};  // first run
    if (errno == ELOOP)
      return make_error(Errc::state, fmt::format("state file {} is a symbolic link: porthole "
                                                 "will not follow it; remove it",
                                                 path));
    return state_error("cannot read state file", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::state, fmt::format("state file {} is not a regular file: porthole "
                                               "will not use it; remove it",
                                               path));
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return state_error("cannot read state file", path, err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>{std::move(text)};
}

namespace {

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
      unsigned d = (c >= '0' && c <= '9')   ? unsigned(c - '0')
                   : (c >= 'a' && c <= 'f') ? unsigned(c - 'a' + 10)
                                            : 16u;
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
  if (!dir.empty() && dir[0] == '/') path.push_back('/');
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

void test_pause_at(const char* step) {
  const char* want = std::getenv("PORTHOLE_TEST_PAUSE_AT");
  if (want && std::strcmp(want, step) == 0) ::raise(SIGSTOP);
}

StateStore::StateStore(StateStore&& other) noexcept
    : file_(std::move(other.file_)),
      dir_fd_(other.dir_fd_),
      lock_fd_(other.lock_fd_),
      mappings_(std::move(other.mappings_)) {
  other.dir_fd_ = -1;
  other.lock_fd_ = -1;
}

StateStore::~StateStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

Result<Nonce> StateStore::new_nonce() {
  Nonce n{};
  if (auto st = random_bytes(n.data(), n.size()); !st) return st.error();
  return n;
}

Result<int> open_state_dir(const std::string& dir) {
  if (dir.empty()) return make_error(Errc::state, "no state directory given");
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {  // first run: create the directory
    if (auto st = mkdirs(dir); !st) return st.error();
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (fd < 0) return state_error("cannot open state directory", dir, errno);
  if (auto st = check_dir(fd, dir); !st) {
    ::close(fd);
    return st.error();
  }
  return fd;
}

Result<StateStore> StateStore::open(const std::string& dir, Deadline deadline) {
  if (dir.empty()) return make_error(Errc::state, "no state directory given");
  StateStore store;
  store.file_ = dir + "/" + kFileName;
  std::string lock_path = dir + "/" + kLockName;
  auto dir_fd = open_state_dir(dir);
  if (!dir_fd) return dir_fd.error();
  store.dir_fd_ = *dir_fd;
  store.lock_fd_ = ::openat(store.dir_fd_, kLockName,
                            O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
  if (store.lock_fd_ < 0 && errno == ELOOP)
    return make_error(Errc::state, fmt::format("lock file {} is a symbolic link: porthole will "
                                               "not follow it; remove it",
                                               lock_path));
  if (store.lock_fd_ < 0) return state_error("cannot open lock file", lock_path, errno);
  struct stat lst {};
  if (::fstat(store.lock_fd_, &lst) != 0 || !S_ISREG(lst.st_mode))
    return make_error(Errc::state, fmt::format("lock file {} is not a regular file: porthole "
                                               "will not use it; remove it",
                                               lock_path));
  // Another porthole (a cron job, say) may hold the lock for one read-modify-write.
  if (auto st = lock_until(store.lock_fd_, deadline, lock_path, dir); !st) return st.error();
  remove_stale_temps(store.dir_fd_);

  auto read = read_state_file(store.dir_fd_, kFileName, store.file_);
  if (!read) return read.error();
  if (!*read) return store;  // first run
  const std::string& text = **read;
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

std::optional<StoredMapping> StateStore::find(const IpAddress& gateway,
                                              const IpAddress& internal_ip, Transport transport,
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

bool StateStore::remove(const IpAddress& gateway, const IpAddress& internal_ip, Transport transport,
                        std::uint16_t internal_port) {
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
    // The file format is text: "" for an external address the gateway did not tell.
    json j = {{"gateway", s.gateway.to_string()},
              {"protocol", protocol_name(m.protocol)},
              {"transport", transport_name(m.transport)},
              {"internal_ip", m.internal_ip.to_string()},
              {"internal_port", m.internal_port},
              {"external_ip", m.external_ip ? m.external_ip->to_string() : std::string()},
              {"external_port", m.external_port},
              {"lifetime", m.lifetime},
              {"expires_at", m.expires_at},
              {"description", m.description}};
    if (s.has_nonce) j["nonce"] = hex(s.nonce);
    if (s.pending) j["pending"] = true;
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
                                  "it: repair or remove it, then run again",
                                  file_name, why));
  };
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return corrupt("not valid JSON");
  if (!doc.is_object() || !doc.contains("version") || !doc["version"].is_number_integer())
    return corrupt("no format version");
  if (doc["version"].get<int>() != kFormatVersion)
    return corrupt(fmt::format("unknown format version {}", doc["version"].dump()));
  if (!doc.contains("mappings") || !doc["mappings"].is_array()) return corrupt("no mappings array");
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
    // Addresses are parsed here, once: IPv4 for the gateway and this host (what porthole
    // writes), any address or "" (unknown) for the external one.
    auto ipv4 = [](const std::string* field) -> std::optional<IpAddress> {
      if (!field) return std::nullopt;
      auto ip = IpAddress::parse(*field);
      if (!ip || !ip->is_v4()) return std::nullopt;
      return *ip;
    };
    const std::optional<IpAddress> gateway = ipv4(gw), internal = ipv4(iip);
    if (!gateway) return bad("gateway");
    if (!proto || !parse_protocol(*proto)) return bad("protocol");
    if (!transport || (*transport != "tcp" && *transport != "udp")) return bad("transport");
    if (!internal) return bad("internal_ip");
    if (!eip) return bad("external_ip");
    std::optional<IpAddress> external;
    if (!eip->empty()) {
      auto ip = IpAddress::parse(*eip);
      if (!ip) return bad("external_ip");
      external = *ip;
    }
    if (!iport) return bad("internal_port");
    if (!eport) return bad("external_port");
    if (!life) return bad("lifetime");
    if (!exp) return bad("expires_at");
    s.gateway = *gateway;
    m.protocol = *parse_protocol(*proto);
    m.transport = *transport == "udp" ? Transport::udp : Transport::tcp;
    m.internal_ip = *internal;
    m.internal_port = static_cast<std::uint16_t>(*iport);
    m.external_ip = external;
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
    if (auto it = j.find("pending"); it != j.end()) {
      if (!it->is_boolean()) return bad("pending");
      s.pending = it->get<bool>();
    }
    out.push_back(std::move(s));
    ++index;
  }
  return out;
}

Status StateStore::save() {
  return replace_file(dir_fd_, file_.substr(0, file_.size() - std::strlen(kFileName)), kFileName,
                      serialize(mappings_), "save-written");
}

Status replace_file(int dir_fd, const std::string& dir_prefix, const char* name,
                    const std::string& text, const char* pause_step) {
  // An unpredictable name, created exclusively and never through a link: a file or
  // link planted in the directory cannot make us write anywhere else.
  std::array<std::uint8_t, 8> r{};
  if (auto st = random_bytes(r.data(), r.size()); !st) return st.error();
  std::string temp = std::string(name) + kTempInfix;
  for (auto b : r) temp += fmt::format("{:02x}", b);
  const std::string tmp = dir_prefix + temp;
  const std::string file = dir_prefix + name;
  int fd = ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
  if (fd < 0) return state_error("cannot write", tmp, errno);
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlinkat(dir_fd, temp.c_str(), 0);
      return state_error("cannot write", tmp, err);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (pause_step) test_pause_at(pause_step);
  // Start writing the data back now, without waiting for the disk: a blocking fsync
  // was half a millisecond, a third of a whole NAT-PMP `open`. A crash of porthole
  // cannot tear the file either way (rename below is atomic); only a power cut within
  // seconds of a write could leave an empty file, which load() then reports instead of
  // overwriting.
  (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return state_error("cannot flush", tmp, err);
  }
  // renameat replaces the name itself, never what a link there points to.
  if (::renameat(dir_fd, temp.c_str(), dir_fd, name) != 0) {
    int err = errno;
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return state_error("cannot replace", file, err);
  }
  // No fsync of the directory: the rename already makes readers see the old file or
  // the new one, never a mix; after a power cut the older state is still a valid one
  // (the mapping it lacks expires on the router). That fsync was a sixth of the time
  // of a whole NAT-PMP `open`.
  return ok_status();
}

}  // namespace porthole::detail
