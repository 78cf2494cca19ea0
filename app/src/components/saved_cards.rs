//! The workspace's saved cards.

use super::{announce, read_lists_again, FormAction, ServerForm};
use crate::purchases::{RefreshCards, SavedCard};
use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The list's id, which "Refresh" reads again from the server's page.
const CARD_LIST: [&str; 1] = ["saved-card-list"];

/// Saved cards, the default marked, with a way to read them from the payment provider again
/// (the page shows the copy Tally keeps, updated by the provider's card events). The list is
/// the server's HTML; "Refresh" is an island that reads it again in place.
#[component]
pub fn SavedCards(cards: Vec<SavedCard>, error: Option<String>) -> impl IntoView {
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
    view! {
        <section id="payment-methods" class="card" aria-labelledby="cards-heading">
            <div class="card-head">
                <h2 id="cards-heading">"Payment methods"</h2>
                <RefreshSavedCards/>
            </div>
            <div id="saved-card-list">{notice} {list}</div>
            <div id="saved-cards-outcome" aria-live="polite"></div>
        </section>
    }
}

/// "Refresh": reads the cards from the payment provider again, then the list from the server's
/// page, and says how it went. An island.
#[island]
fn RefreshSavedCards() -> impl IntoView {
    let refresh = FormAction::<RefreshCards>::new();
    let refreshing = refresh.pending();
    Effect::new(move |_| {
        let Some(answer) = refresh.value().get() else {
            return;
        };
        leptos::task::spawn_local(async move {
            if answer.is_ok() {
                read_lists_again::<<RefreshCards as ServerFn>::Client>(&CARD_LIST).await;
            }
            let said = answer.map(|cards| match cards.len() {
                0 => "No card is saved with the payment provider.".to_owned(),
                1 => "1 saved card, as the payment provider has it.".to_owned(),
                n => format!("{n} saved cards, as the payment provider has them."),
            });
            announce("saved-cards-outcome", said);
        });
    });
    view! {
        <ServerForm action=refresh>
            <button type="submit" class="button small ghost" data-testid="refresh-cards" aria-label="Refresh saved cards"
                disabled=move || refreshing.get() aria-busy=move || refreshing.get().to_string()>
                {move || if refreshing.get() { "Refreshing…" } else { "Refresh" }}
            </button>
        </ServerForm>
    }
}
