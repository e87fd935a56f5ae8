// `lumokeys`: command-line client for LumoKeys. See `lumokeys --help` and
// cli/args.cc for the grammar, cli/commands.h for exit statuses.
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/config.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return lumo::cli::RunCli(args, lumo::cli::ProcessEnv(),
                           lumo::cli::DefaultClientFactory(),
                           {std::cin, std::cout, std::cerr});
}
