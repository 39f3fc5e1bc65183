//! `vllm-rs`: parses the command line and runs the subcommand (see the crate docs).

/// mimalloc instead of the system allocator: a benchmark's streams allocate and free small
/// buffers on every request and many chunks, where glibc's malloc spent ~9% of the client's
/// CPU in its slow paths (bin consolidation, chunk unlinking).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of `mimalloc.h` (libmimalloc-sys names the options before it but
/// not this one; mimalloc deprecates options in place and never renumbers them, and a test
/// below checks that this one has its documented default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Keep freed memory for the next allocation rather than hand it back to the system a
    // second later (mimalloc 3's default): a benchmark frees and allocates all the time, and
    // every page handed back was faulted in and zeroed again when reused (~9% of the client's
    // CPU unpaced). The process's resident memory stays at its peak instead of shrinking.
    // SAFETY: sets one of mimalloc's process-wide options, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // No transparent huge pages: mimalloc asks for them, and the first touch of each one
    // zeroes 2 MiB at once while the thread waits: the benchmark's timings then carried those
    // stalls (p99 read lag 1.3 ms instead of 0.2 at 1,000 streams). The kernel checks this
    // flag at every fault, so it covers the memory mapped before `main` too.
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl(PR_SET_THP_DISABLE)` only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    vllm_cli::run(std::env::args_os())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_mimallocs() {
        // The default of `mi_option_purge_delay` in mimalloc 3 (`options.c`): 1000 ms (unless
        // the environment set it). Another value means the index names another option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads a process-wide option.
            let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(value, 1000);
        }
    }
}
