//! End-to-end tests: the real `securemail` binary against a real SMTP server on 127.0.0.1 that
//! speaks TLS with certificates generated per run, the real SQLite store, and independent
//! decoders (mail-parser, png, rqrr, an RFC 6238 implementation written here).

mod support;

mod adversarial;
mod audit;
mod batch;
mod config_errors;
mod custody;
mod edges;
mod fuzz_corpus;
mod hosts;
mod install;
mod limits;
mod operator;
mod outbox;
mod postgres;
mod replies;
mod reply;
mod reply_table;
mod send;
mod store;
mod structure;
mod tls_refusals;
