"""One module per `i3dmtn` subcommand: add_arguments(parser) and run(args)."""
