//! The adversarial suite: an outsider with made-up keys, a member, a guest and a cross-site
//! form try, against a running app, what they must not be able to do. Every refusal is
//! checked together with the books: balances, lots, the journal, purchases and the test-mode
//! emulator's objects do not move.

#[path = "../support/mod.rs"]
mod support;

#[path = "../api/fixture.rs"]
#[allow(dead_code)]
mod fixture;

mod books;
mod cross_site;
mod emulator;
mod matrix;
mod payments;
mod refunds;
mod roles;
