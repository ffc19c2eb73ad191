//! The gateway's HTTP suite on the embedded (SQLite) backend, with the
//! gateway calling memory in process as the all-in-one does (the
//! Redis + PostgreSQL run of the suite calls it over gRPC on a port).
tessera_tests::gateway_http_suite!(tessera_tests::harness::embedded_memory, start_in_process);
