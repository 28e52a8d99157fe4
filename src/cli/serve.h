// `reel serve`: the flags of the OpenAI-compatible server; the server itself is src/server.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "server/server.h"

namespace reel::cli {

struct ServeArgs {
  EngineOptions engine;
  server::ServerOptions server;
};

// Adds the `serve` subcommand to app, filling args.
CLI::App* add_serve_command(CLI::App& app, ServeArgs& args);
// Runs the server until SIGINT or SIGTERM; the process exit code.
int run_serve(ServeArgs& args);

}  // namespace reel::cli
