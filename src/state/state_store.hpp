// What the router cannot tell us later: our PCP/NAT-PMP mappings and their PCP nonces.
// One JSON file per state directory, written atomically under an exclusive lock. The
// lock is held only to read, change and write the file, never across a network
// exchange: callers open the store, change it, save it and let it go.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codec/pcp_codec.hpp"  // Nonce
#include "net/deadline.hpp"
#include "porthole/ip_address.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

struct StoredMapping {
  Mapping mapping;
  IpAddress gateway;  // the gateway the mapping lives on
  bool has_nonce = false;
  Nonce nonce{};
  // Written before the request goes out ("what we are about to do"): the router may or
  // may not hold the mapping, and its external port may differ from the one recorded.
  // A PCP entry carries its nonce from this point on, so it can always be deleted.
  bool pending = false;
};

// TEST-ONLY hook for the crash tests (tests/lab/scenarios/state_crash.py): when
// $PORTHOLE_TEST_PAUSE_AT names `step`, the process stops itself (SIGSTOP) there, so the
// test can kill it with SIGKILL between two steps. Not a user-facing setting.
void test_pause_at(const char* step);

// The UPnP IGD cache's file in the state directory (state/igd_cache.hpp).
inline constexpr const char* kIgdCacheFileName = "upnp-igd.json";

// The state directory, opened (and created 0700 on first use) and checked as
// StateStore::open checks it (owner, no group or other write). The caller closes it.
Result<int> open_state_dir(const std::string& dir);

// Replaces `name` in the directory dir_fd (whose path is dir_prefix, ending in '/')
// with `text`: a new temporary file (exclusive, random name, never through a link),
// its writeback started, renamed over the old one. pause_step: see test_pause_at.
Status replace_file(int dir_fd, const std::string& dir_prefix, const char* name,
                    const std::string& text, const char* pause_step = nullptr);

// The whole of file `name` in dir_fd (path: its name in messages), read through a
// descriptor that refuses a symlink; nullopt when there is none.
Result<std::optional<std::string>> read_state_file(int dir_fd, const char* name,
                                                   const std::string& path);

class StateStore {
 public:
  StateStore(StateStore&& other) noexcept;
  StateStore& operator=(StateStore&& other) = delete;
  StateStore(const StateStore&) = delete;
  ~StateStore();

  // Creates `dir` (0700) if needed and refuses it when another user owns it or group or
  // others may write it (as ssh's StrictModes does); takes the lock, sleeping until it
  // is free or `deadline` passes; removes temporary files a killed writer left; loads
  // the file. Nothing in the directory is followed if it is a symlink. A corrupt file is
  // an Errc::state error naming it; it is left exactly as it was.
  static Result<StateStore> open(const std::string& dir, Deadline deadline);

  const std::vector<StoredMapping>& mappings() const { return mappings_; }
  std::optional<StoredMapping> find(const IpAddress& gateway, const IpAddress& internal_ip,
                                    Transport transport, std::uint16_t internal_port) const;
  void upsert(const StoredMapping& m);
  bool remove(const IpAddress& gateway, const IpAddress& internal_ip, Transport transport,
              std::uint16_t internal_port);
  // Write to a new temporary file (exclusive, random name), start its writeback, rename
  // it over the old one.
  Status save();
  const std::string& file() const { return file_; }

  // The on-disk form, exposed for the unit tests.
  static std::string serialize(const std::vector<StoredMapping>& mappings);
  static Result<std::vector<StoredMapping>> parse(const std::string& text,
                                                  const std::string& file_name);

  // 96 random bits from the kernel CSPRNG: a PCP nonce chosen before the request, so it
  // is in the state before the MAP is sent (RFC 6887 s11.1).
  static Result<Nonce> new_nonce();

 private:
  StateStore() = default;
  std::string file_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
  std::vector<StoredMapping> mappings_;
};

}  // namespace porthole::detail
