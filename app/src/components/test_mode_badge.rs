//! The "Test mode" badge, wherever a payment is.

use leptos::prelude::*;

/// "Test mode" wherever a payment is.
#[component]
pub fn TestModeBadge(test_mode: bool) -> impl IntoView {
    test_mode.then(|| {
        view! {
            <span class="badge badge-test" data-testid="test-mode" title="Payments go to a test-mode payment provider; no real money moves.">
                "Test mode"
            </span>
        }
    })
}
