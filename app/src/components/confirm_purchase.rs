//! The dialog before checkout: pack, price, card, credits and any promotion.

use super::{FormAction, ServerForm, TestModeBadge};
use crate::domain::Credits;
use crate::purchases::{Pick, SavedCard, StartCheckout};
use leptos::either::Either;
use leptos::html;
use leptos::prelude::*;

/// The dialog that shows what will be bought, and opens the checkout.
#[component]
pub(super) fn ConfirmPurchase(
    choice: Option<Pick>,
    custom_amount: Option<(Credits, crate::domain::Money)>,
    default_card: Option<SavedCard>,
    test_mode: bool,
    on_close: Callback<()>,
) -> impl IntoView {
    let start = FormAction::<StartCheckout>::new();
    let pending = start.pending();
    let first = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if let Some(button) = first.get() {
            let _ = button.focus();
        }
    });
    // Off to the payment page once the checkout is open.
    Effect::new(move |_| {
        if let Some(Ok(started)) = start.value().get() {
            // Leaving the page; nothing to do if the browser refuses.
            let _ = window().location().assign(&started.url);
        }
    });
    let (item, credits, bonus, price, pack_id, custom_credits) = match (&choice, custom_amount) {
        (Some(Pick::Pack(pack)), _) => (
            format!("{} pack", pack.name),
            pack.credits,
            pack.bonus,
            pack.price.clone(),
            pack.id.clone(),
            String::new(),
        ),
        (Some(Pick::Custom), Some((credits, price))) => (
            "Custom amount".to_owned(),
            credits,
            Credits::ZERO,
            price,
            String::new(),
            credits.get().to_string(),
        ),
        _ => {
            return Either::Left(
                view! { <p class="notice notice-error" role="alert">"Choose a pack or a valid amount first."</p> },
            )
        }
    };
    let total = credits.checked_add(bonus).unwrap_or(credits);
    let unit = crate::format::unit();
    let currency = price.currency().as_str().to_ascii_uppercase();
    let method = match default_card {
        Some(card) => format!(
            "{} (saved, expires {}). You can use another card on the payment page.",
            card.label(),
            card.expiry()
        ),
        None => "A card, entered on the secure payment page. It is saved for later purchases."
            .to_owned(),
    };
    Either::Right(view! {
        <div class="dialog-backdrop">
            <div
                class="dialog card"
                role="dialog"
                aria-modal="true"
                aria-labelledby="confirm-heading"
                data-testid="confirm-purchase"
                on:keydown=move |ev| if ev.key() == "Escape" { on_close.run(()) }
            >
                <div class="card-head">
                    <h2 id="confirm-heading">"Confirm your purchase"</h2>
                    <TestModeBadge test_mode/>
                </div>
                <dl class="summary">
                    <div><dt>"Item"</dt><dd>{item}</dd></div>
                    <div><dt>"Credits"</dt><dd data-testid="confirm-credits">{unit.figure(credits)}</dd></div>
                    {(!bonus.is_zero()).then(|| view! { <div><dt>"Bonus"</dt><dd>{format!("+ {} (promotion)", unit.amount(bonus))}</dd></div> })}
                    <div><dt>"You receive"</dt><dd>{unit.amount(total)}</dd></div>
                    <div><dt>"Price"</dt><dd data-testid="confirm-price">{format!("{price} {currency}")}</dd></div>
                    <div><dt>"Payment method"</dt><dd>{method}</dd></div>
                </dl>
                <p class="muted">"A one-time payment, not a subscription. Purchased credits never expire and are not refundable. Your card is kept for later purchases and for Auto-reload if you turn it on."</p>
                <ServerForm action=start>
                    <input type="hidden" name="pack_id" value=pack_id/>
                    <input type="hidden" name="custom_credits" value=custom_credits/>
                    <div class="actions">
                        <button type="button" class="button" node_ref=first on:click=move |_| on_close.run(())>"Cancel"</button>
                        <button
                            type="submit"
                            class="button primary"
                            data-testid="go-to-checkout"
                            disabled=move || pending.get()
                            aria-busy=move || pending.get().to_string()
                        >
                            {move || if pending.get() { "Opening checkout…".to_owned() } else { format!("Pay {price} {currency}") }}
                        </button>
                    </div>
                </ServerForm>
                <div aria-live="polite">
                    {move || start.value().get().map(|outcome| match outcome {
                        Ok(_) => Either::Left(view! { <p class="muted" role="status">"Taking you to the payment page…"</p> }),
                        Err(error) => Either::Right(view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }),
                    })}
                </div>
            </div>
        </div>
    })
}
