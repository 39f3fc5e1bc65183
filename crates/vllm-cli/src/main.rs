//! `vllm-rs`: parses the command line and runs the subcommand (see the crate docs).

/// mimalloc instead of the system allocator: a benchmark's streams allocate and free small
/// buffers on every request and many chunks, where glibc's malloc spent ~9% of the client's
/// CPU (its slow paths: bin consolidation, chunk unlinking); with mimalloc the client reads
/// ~6% more chunks per CPU-second (`benches/bench-capacity.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vllm_cli::run(std::env::args_os())
}
