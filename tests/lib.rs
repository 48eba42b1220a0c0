//! Workspace-level integration tests of `jobs` (see `tests/`), and the
//! compile-fail suite (`ui/`). This library itself is empty.
