//! `vllm-rs`: parses the command line and runs the subcommand (see the crate docs).

fn main() -> std::process::ExitCode {
    vllm_cli::run(std::env::args_os())
}
