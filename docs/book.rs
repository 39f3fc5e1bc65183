//! The book's pages, compiled as documentation so every Rust snippet in them is tested.
#![deny(missing_docs)]
