//! Logging through `tracing` when the `tracing` feature is on, and nothing at all otherwise.

/// A `tracing::debug!` event with the `tracing` feature; nothing without it.
macro_rules! trace_debug {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::debug!($($arg)*);
    };
}

/// A `tracing::info!` event with the `tracing` feature; nothing without it.
macro_rules! trace_info {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::info!($($arg)*);
    };
}
