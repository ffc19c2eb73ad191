//! The gateway's HTTP suite on the durable backend: the real Redis and
//! PostgreSQL of this machine (REDIS_URL, DATABASE_URL).
tessera_tests::gateway_http_suite!(tessera_tests::harness::durable_memory);
