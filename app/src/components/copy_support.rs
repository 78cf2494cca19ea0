//! Copying a purchase's support details.

use leptos::prelude::*;

/// A button that copies a purchase's support details (an island: the clipboard is the
/// browser's).
#[island]
pub fn CopySupportDetails(details: String) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let details = StoredValue::new(details);
    view! {
        <button
            type="button"
            class="button small"
            on:click=move |_| {
                let clipboard = window().navigator().clipboard();
                let promise = clipboard.write_text(&details.get_value());
                leptos::task::spawn_local(async move {
                    let done = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
                    copied.set(Some(done));
                });
            }
        >
            "Copy support details"
        </button>
        <span class="muted" aria-live="polite">
            {move || match copied.get() {
                Some(true) => "Copied",
                Some(false) => "Could not copy; select the text instead",
                None => "",
            }}
        </span>
    }
}
