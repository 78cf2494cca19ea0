//! HTTP tests: the app on a random port over a fresh database, driven like a browser or a
//! script would.

#[path = "../support/mod.rs"]
mod support;

mod api_keys;
mod auto_reload;
mod budgets;
mod credits;
mod delivery;
mod fixture;
mod integration_examples;
mod openapi;
mod outbox;
mod pages;
mod portal;
mod provisioning;
mod purchases;
mod saved_cards;
mod sessions;
mod storefront;
mod stripe_emulator;
mod subscriptions;
mod usage;
