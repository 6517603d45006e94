//! Cross-crate conformance and end-to-end tests of the media-redirection
//! device.
//!
//! The tests live in `tests/tests/`. Each one starts real components (the
//! daemon binary on a real Unix socket, the guest driver, the client engine)
//! and cites the numbered requirement of `spec/README.md` it checks, so that a
//! guest driver or a backend can be held to the specification.
