//! Benchmark tooling for Patchbay (see docs/benchmarks.md): `pb-dataset` fills a
//! database with N connections per face; `pb-baseline` answers recorded
//! responses byte for byte without touching storage.
