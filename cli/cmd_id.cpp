// `porthole id`: this host's peer ID (include/porthole/identity.hpp), the name other
// hosts give `porthole punch`. The key is made on first use in the state directory.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/identity.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

class IdOptions : public NoOptions {
 public:
  IdOptions()
      : NoOptions("id",
                  "Print this host's peer ID, the name `porthole punch` takes (the key "
                  "is made in the state directory on first use)") {}
};

int run_id(const Invocation& inv) {
  auto identity = Identity::load_or_create(inv.options.state_dir);
  if (!identity) return fail(identity.error(), inv.json);
  const std::string id = identity->id().to_string();
  // The ID is the result, so -q prints it too (a script's `$(porthole id -q)`).
  if (inv.json)
    fmt::print("{}", dump({{"id", id}}));
  else
    fmt::print("{}\n", id);
  return 0;
}

}  // namespace

CommandSpec id_command() { return {Command::id, make_options<IdOptions>, run_id}; }

}  // namespace porthole::cli
