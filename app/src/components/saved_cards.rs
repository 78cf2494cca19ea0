//! The workspace's saved cards.

use super::{FormAction, ServerForm};
use crate::purchases::{RefreshCards, SavedCard};
use leptos::either::Either;
use leptos::prelude::*;

/// Saved cards, the default marked, with a way to read them from the payment provider again
/// (the page shows the copy Tally keeps, updated by the provider's card events). An island:
/// "Refresh" answers in place.
#[island]
pub fn SavedCards(cards: Vec<SavedCard>, error: Option<String>) -> impl IntoView {
    let refresh = FormAction::<RefreshCards>::new();
    let refreshing = refresh.pending();
    let shown = move || match refresh.value().get() {
        Some(Ok(fresh)) => card_list(fresh, None),
        Some(Err(failed)) => card_list(cards.clone(), Some(failed.to_string())),
        None => card_list(cards.clone(), error.clone()),
    };
    view! {
        <section id="payment-methods" class="card" aria-labelledby="cards-heading">
            <div class="card-head">
                <h2 id="cards-heading">"Payment methods"</h2>
                <ServerForm action=refresh>
                    <button type="submit" class="button small ghost" data-testid="refresh-cards" aria-label="Refresh saved cards"
                        disabled=move || refreshing.get() aria-busy=move || refreshing.get().to_string()>
                        {move || if refreshing.get() { "Refreshing…" } else { "Refresh" }}
                    </button>
                </ServerForm>
            </div>
            <div aria-live="polite">{shown}</div>
        </section>
    }
}

fn card_list(cards: Vec<SavedCard>, error: Option<String>) -> impl IntoView {
    let notice = error.map(|error| {
        view! { <p class="notice notice-error" role="alert">{error}" Use “Refresh” to try again."</p> }
    });
    let list = if cards.is_empty() {
        Either::Left(
            view! { <p class="empty">"No saved card yet. The card you use for your first purchase is kept here for later purchases and Auto-reload."</p> },
        )
    } else {
        Either::Right(view! {
            <ul class="cards-list">
                {cards.into_iter().map(|card| view! {
                    <li data-testid="saved-card">
                        <span>{card.label()}</span>
                        <span class="muted">{format!(" · expires {}", card.expiry())}</span>
                        {card.is_default.then(|| view! { <span class="badge badge-good">"Default"</span> })}
                    </li>
                }).collect_view()}
            </ul>
        })
    };
    view! { {notice} {list} }
}
