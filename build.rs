//! Rebuilds the server when a migration changes. `sqlx::migrate!` embeds the migrations when
//! the crate is compiled, and on stable Rust Cargo cannot see that it read them: without this,
//! a changed or added migration is left out of a build until some Rust source changes too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
