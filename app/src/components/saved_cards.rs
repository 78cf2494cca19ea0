//! The workspace's saved cards.

use crate::purchases::SavedCard;
use leptos::prelude::*;

/// Saved cards, the default marked.
#[component]
pub fn SavedCards(cards: Vec<SavedCard>, error: Option<String>) -> impl IntoView {
    let body = if let Some(error) = error {
        view! { <p class="notice notice-error">{error}</p> }.into_any()
    } else if cards.is_empty() {
        view! { <p class="empty">"No saved card yet. The card you use for your first purchase is kept here for later purchases and Auto-reload."</p> }.into_any()
    } else {
        view! {
            <ul class="cards-list">
                {cards.into_iter().map(|card| view! {
                    <li data-testid="saved-card">
                        <span>{card.label()}</span>
                        <span class="muted">{format!(" · expires {}", card.expiry())}</span>
                        {card.is_default.then(|| view! { <span class="badge badge-good">"Default"</span> })}
                    </li>
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <section id="payment-methods" class="card" aria-labelledby="cards-heading">
            <h2 id="cards-heading">"Payment methods"</h2>
            {body}
        </section>
    }
}
