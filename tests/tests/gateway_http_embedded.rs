//! The gateway's HTTP suite on the embedded (SQLite) backend.
tessera_tests::gateway_http_suite!(tessera_tests::harness::embedded_memory);
