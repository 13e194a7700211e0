//! API tests: each runs against a real server on port 0, once on SQLite and once on PostgreSQL.

mod helpers;

mod accounts;
mod coaches;
mod data;
mod deploy;
mod http;
mod interviews;
mod recordings;
mod reports;
mod turn;
