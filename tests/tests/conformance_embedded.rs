//! The conformance suite on the embedded (SQLite) backend.
tessera_tests::conformance_suite!(tessera_tests::harness::embedded_memory);
