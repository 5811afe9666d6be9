// One subcommand of `porthole`. Each cli/cmd_<name>.cpp owns its options (the CLI11
// set-up), their checks, running it and rendering its output, and hands cli_args.cpp a
// CommandSpec. Adding a command: a cmd_<name>.cpp, its Command value (cli_args.hpp),
// its line in kCommands (cli_args.cpp) and in CMakeLists.txt.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli_args.hpp"

namespace porthole::cli {

// The options of one subcommand as typed: CLI11 writes into the object while parsing.
class CommandOptions {
 public:
  virtual ~CommandOptions() = default;
  // Adds the subcommand with its options to `app`; returns it.
  virtual CLI::App* add_to(CLI::App& app) = 0;
  // After a parse that chose this subcommand: checks what was typed and fills the
  // command's part of `inv`. Returns the usage error, or an empty string.
  virtual std::string finish(Invocation& inv) const = 0;
};

struct CommandSpec {
  Command command;
  std::unique_ptr<CommandOptions> (*make_options)();
  int (*run)(const Invocation& inv);
};

// A command with no options of its own (probe, list, nat).
class NoOptions : public CommandOptions {
 public:
  NoOptions(const char* name, const char* description) : name_(name), description_(description) {}
  CLI::App* add_to(CLI::App& app) override { return app.add_subcommand(name_, description_); }
  std::string finish(Invocation&) const override { return {}; }

 private:
  const char* name_;
  const char* description_;
};

// PORT (N, N/tcp or N/udp) as open and close take it, with the --external-port check.
void add_port_argument(CLI::App& sub, std::string& port);
std::string parse_port_arguments(const std::string& port, const std::string& external_port,
                                 PortSpec& spec, std::optional<std::uint16_t>& external);

template <class T>
std::unique_ptr<CommandOptions> make_options() {
  return std::make_unique<T>();
}

// One per cli/cmd_<name>.cpp.
CommandSpec probe_command();
CommandSpec open_command();
CommandSpec close_command();
CommandSpec list_command();
CommandSpec nat_command();
CommandSpec serve_command();
CommandSpec hold_command();
CommandSpec id_command();
CommandSpec punch_command();
CommandSpec expose_command();
CommandSpec connect_command();

}  // namespace porthole::cli
