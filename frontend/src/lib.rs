//! The browser entry point: hydrates the islands of the server-rendered page (its forms,
//! dialogs and buttons); everything else stays the server's HTML.
#![forbid(unsafe_code)]

// Links the app's islands into the bundle (each is exported for the loader to call).
#[allow(unused_imports)]
use app::*;
use leptos::prelude::{document, set_timeout};
use std::time::Duration;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // The page's loader (app's shell.rs) hydrates each island right after this returns, within
    // the same task; a task queued now runs after them all and marks the page live, for tests
    // and styles.
    set_timeout(
        || {
            if let Some(app) = document().get_element_by_id("app") {
                let _ = app.set_attribute("data-hydrated", "true");
            }
        },
        Duration::ZERO,
    );
}
