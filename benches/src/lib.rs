//! Shared inputs for the criterion benchmarks in this package.
#![deny(missing_docs)]
