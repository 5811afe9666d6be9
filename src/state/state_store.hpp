// What the router cannot tell us later: our PCP/NAT-PMP mappings and their PCP nonces.
// One JSON file per state directory, written atomically under an exclusive lock.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codec/pcp_codec.hpp"  // Nonce
#include "net/deadline.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

struct StoredMapping {
  Mapping mapping;
  std::string gateway;  // the gateway the mapping lives on
  bool has_nonce = false;
  Nonce nonce{};
};

class StateStore {
 public:
  StateStore(StateStore&& other) noexcept;
  StateStore& operator=(StateStore&& other) = delete;
  StateStore(const StateStore&) = delete;
  ~StateStore();

  // Creates `dir` (0700) if needed, takes the lock (waiting at most until `deadline`)
  // and loads the file. A corrupt file is an Errc::state error naming it; it is left
  // exactly as it was.
  static Result<StateStore> open(const std::string& dir, Deadline deadline);

  const std::vector<StoredMapping>& mappings() const { return mappings_; }
  std::optional<StoredMapping> find(const std::string& gateway, const std::string& internal_ip,
                                    Transport transport, std::uint16_t internal_port) const;
  void upsert(const StoredMapping& m);
  bool remove(const std::string& gateway, const std::string& internal_ip, Transport transport,
              std::uint16_t internal_port);
  // Write to a temporary file, start its writeback, rename it over the old one.
  Status save();
  const std::string& file() const { return file_; }

  // The on-disk form, exposed for the unit tests.
  static std::string serialize(const std::vector<StoredMapping>& mappings);
  static Result<std::vector<StoredMapping>> parse(const std::string& text,
                                                  const std::string& file_name);

 private:
  StateStore() = default;
  std::string file_;
  int lock_fd_ = -1;
  std::vector<StoredMapping> mappings_;
};

}  // namespace porthole::detail
