//! Tally's user interface and the types it shares with the server.
//!
//! Compiled twice: with `ssr` into the server (rendering pages, running server functions),
//! with `hydrate` into the browser's wasm. Server-only code sits behind the `ssr` feature, so
//! the browser build links neither the database nor Stripe.
#![forbid(unsafe_code)]
// The purchase section's view types nest deeply when hydrating.
#![recursion_limit = "256"]

pub mod api_keys;
#[cfg(feature = "ssr")]
pub mod backend;
pub mod billing;
pub mod budgets;
pub mod codec;
mod components;
pub mod domain;
pub mod error;
pub mod format;
pub mod notifications;
mod pages;
pub mod purchases;
pub mod rates;
#[cfg(feature = "ssr")]
pub mod request;
mod shell;
pub mod studio;

pub use shell::{shell, App, BundleFiles, OUTPUT_NAME};
