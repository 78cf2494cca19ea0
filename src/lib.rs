//! Tally's server: the ledger and its store, accounts, the HTTP API, browser routes and the
//! operator CLI. `main.rs` only parses the command line and calls [`cli::run`].
#![forbid(unsafe_code)]
// The islands' views are concrete types (not erased), and the page types that hold them are
// deep: computing their layout needs more than the default 128 levels.
#![recursion_limit = "256"]

pub mod accounts;
pub mod api;
pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod grants;
pub mod jobs;
pub mod ledger;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod outbound;
pub mod payments;
pub mod rates;
pub mod routing;
pub mod site_files;
pub mod spend;
pub mod startup;
pub mod state;
pub mod web;
