use crate::domain::{Credits, PurchaseStatus, WorkspaceId};
use crate::format;
use crate::purchases::{PackOffer, PurchaseSection, PurchaseView, SavedCard, StartCheckout};
use leptos::html;
use leptos::prelude::*;

/// What the buyer picked in the purchase section.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pick {
    Pack(PackOffer),
    Custom,
}

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

/// Buy credits: packs, a custom amount, and the confirmation dialog before checkout.
#[component]
pub fn BuyCredits(section: PurchaseSection) -> impl IntoView {
    let PurchaseSection {
        test_mode,
        can_buy,
        who_can_buy,
        packs,
        custom,
        cards,
        ..
    } = section;
    if !can_buy {
        return view! {
            <section id="buy-credits" class="card" aria-labelledby="buy-heading">
                <div class="card-head">
                    <h2 id="buy-heading">"Buy credits"</h2>
                    <TestModeBadge test_mode/>
                </div>
                <p class="muted" data-testid="buy-read-only">{format!("Buying credits is for billing managers. {who_can_buy}")}</p>
            </section>
        }
        .into_any();
    }
    let default_card = cards.iter().find(|c| c.is_default).cloned();
    let pick = RwSignal::new(None::<Pick>);
    let custom_text = RwSignal::new(String::new());
    let dialog_open = RwSignal::new(false);
    let terms = StoredValue::new(custom.clone());
    let custom_check = move || {
        terms.with_value(|t| {
            t.parse(&custom_text.get())
                .and_then(|c| Ok((c, t.price(c)?)))
        })
    };
    let pack_cards = packs
        .iter()
        .map(|pack| {
            let offer = pack.clone();
            let input_id = format!("pack-{}", pack.id);
            let chosen = {
                let id = pack.id.clone();
                move || matches!(pick.get(), Some(Pick::Pack(p)) if p.id == id)
            };
            let (chosen_class, label_for) = (chosen.clone(), input_id.clone());
            view! {
                <label class="pack" class:pack-chosen=chosen_class for=label_for data-testid="pack">
                    <input
                        type="radio"
                        name="pack-choice"
                        id=input_id
                        value=pack.id.clone()
                        prop:checked=chosen
                        on:change=move |_| pick.set(Some(Pick::Pack(offer.clone())))
                    />
                    <span class="pack-name">{pack.name.clone()}</span>
                    {pack.best_value.then(|| view! { <span class="badge badge-good">"Best value"</span> })}
                    <span class="pack-credits">{format!("{} credits", pack.credits)}</span>
                    {(!pack.bonus.is_zero()).then(|| view! {
                        <span class="pack-bonus">
                            {format!("+ {} bonus credits", pack.bonus)}
                            {pack.bonus_ends_at.map(|at| format!(" until {}", format::date(&at)))}
                        </span>
                    })}
                    <span class="pack-price">{format!("{} {}", pack.price, pack.price.currency().as_str().to_ascii_uppercase())}</span>
                    <span class="muted pack-rate">{format!("{} per 1,000 credits", pack.per_thousand)}</span>
                </label>
            }
        })
        .collect_view();
    let custom_chosen = move || matches!(pick.get(), Some(Pick::Custom));
    let can_continue = move || match pick.get() {
        Some(Pick::Pack(_)) => true,
        Some(Pick::Custom) => custom_check().is_ok(),
        None => false,
    };
    let hint = StoredValue::new(format!(
        "In steps of {} credits, from {} to {}, at {} per {} credits.",
        custom.increment, custom.min, custom.max, custom.price_per_increment, custom.increment
    ));
    let (min, max, step) = (custom.min.get(), custom.max.get(), custom.increment.get());
    view! {
        <section id="buy-credits" class="card" aria-labelledby="buy-heading">
            <div class="card-head">
                <h2 id="buy-heading">"Buy credits"</h2>
                <TestModeBadge test_mode/>
            </div>
            <p class="narrow-only notice notice-info" data-testid="wide-screen-note">
                "Buying credits needs a larger screen. Open Billing on a tablet or computer to choose a pack and pay."
            </p>
            <div class="wide-only">
                <p class="muted">"Credits you buy never expire. Larger packs cost less per credit. One-time payment: nothing renews."</p>
                <fieldset class="packs">
                    <legend>"Choose a pack or an amount"</legend>
                    <div class="pack-grid">
                        {pack_cards}
                        <label class="pack pack-custom" class:pack-chosen=custom_chosen for="pack-custom">
                            <input
                                type="radio"
                                name="pack-choice"
                                id="pack-custom"
                                value="custom"
                                prop:checked=custom_chosen
                                on:change=move |_| pick.set(Some(Pick::Custom))
                            />
                            <span class="pack-name">"Custom amount"</span>
                            <span class="muted">{hint.get_value()}</span>
                        </label>
                    </div>
                </fieldset>
                {move || custom_chosen().then(|| view! {
                    <div class="custom-amount">
                        <label for="custom-credits">"Credits to buy"</label>
                        <input
                            id="custom-credits"
                            type="number"
                            inputmode="numeric"
                            min=min
                            max=max
                            step=step
                            prop:value=move || custom_text.get()
                            on:input=move |ev| custom_text.set(event_target_value(&ev))
                            aria-describedby="custom-feedback"
                        />
                        <p id="custom-feedback" class="muted" aria-live="polite">
                            {move || {
                                if custom_text.get().trim().is_empty() {
                                    hint.get_value()
                                } else {
                                    match custom_check() {
                                        Ok((credits, price)) => format!("{credits} credits for {price} {}.", price.currency().as_str().to_ascii_uppercase()),
                                        Err(e) => format!("{}.", format::capitalised(&e.to_string())),
                                    }
                                }
                            }}
                        </p>
                    </div>
                })}
                <button
                    type="button"
                    class="button primary"
                    data-testid="buy-continue"
                    disabled=move || !can_continue()
                    on:click=move |_| dialog_open.set(true)
                >
                    "Continue"
                </button>
            </div>
            {move || dialog_open.get().then(|| {
                let choice = pick.get();
                let custom_amount = custom_check().ok();
                view! {
                    <ConfirmPurchase
                        choice
                        custom_amount
                        default_card=default_card.clone()
                        test_mode
                        on_close=Callback::new(move |_| dialog_open.set(false))
                    />
                }
            })}
        </section>
    }
    .into_any()
}

/// The dialog that shows what will be bought, and opens the checkout.
#[component]
fn ConfirmPurchase(
    choice: Option<Pick>,
    custom_amount: Option<(Credits, crate::domain::Money)>,
    default_card: Option<SavedCard>,
    test_mode: bool,
    on_close: Callback<()>,
) -> impl IntoView {
    let start = ServerAction::<StartCheckout>::new();
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
        _ => return view! { <p class="notice notice-error" role="alert">"Choose a pack or a valid amount first."</p> }.into_any(),
    };
    let total = credits.checked_add(bonus).unwrap_or(credits);
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
    view! {
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
                    <div><dt>"Credits"</dt><dd data-testid="confirm-credits">{credits.to_string()}</dd></div>
                    {(!bonus.is_zero()).then(|| view! { <div><dt>"Bonus"</dt><dd>{format!("+ {bonus} credits (promotion)")}</dd></div> })}
                    <div><dt>"You receive"</dt><dd>{format!("{total} credits")}</dd></div>
                    <div><dt>"Price"</dt><dd data-testid="confirm-price">{format!("{price} {currency}")}</dd></div>
                    <div><dt>"Payment method"</dt><dd>{method}</dd></div>
                </dl>
                <p class="muted">"A one-time payment, not a subscription. Purchased credits never expire and are not refundable. Your card is kept for later purchases and for Auto-reload if you turn it on."</p>
                <ActionForm action=start>
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
                </ActionForm>
                <div aria-live="polite">
                    {move || start.value().get().map(|outcome| match outcome {
                        Ok(_) => view! { <p class="muted" role="status">"Taking you to the payment page…"</p> }.into_any(),
                        Err(error) => view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }.into_any(),
                    })}
                </div>
            </div>
        </div>
    }
    .into_any()
}

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

/// The status of a purchase as a badge.
#[component]
pub fn PurchaseStatusBadge(status: PurchaseStatus) -> impl IntoView {
    let class = match status {
        PurchaseStatus::Succeeded => "badge badge-good",
        PurchaseStatus::Open | PurchaseStatus::Processing => "badge badge-info",
        PurchaseStatus::Failed | PurchaseStatus::Reversed => "badge badge-bad",
        PurchaseStatus::Canceled => "badge",
    };
    view! { <span class=class data-testid="purchase-status">{status.label()}</span> }
}

/// A button that copies a purchase's support details.
#[component]
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

/// Purchases and their receipts.
#[component]
pub fn PurchaseList(
    purchases: Vec<PurchaseView>,
    workspace_id: WorkspaceId,
    workspace_name: String,
) -> impl IntoView {
    if purchases.is_empty() {
        return view! {
            <section id="purchases" class="card" aria-labelledby="purchases-heading">
                <h2 id="purchases-heading">"Purchases"</h2>
                <p class="empty">"No purchases yet. Packs you buy show here with their receipts."</p>
            </section>
        }
        .into_any();
    }
    let rows = purchases
        .into_iter()
        .map(|p| {
            let details = p.support_details(&workspace_id, &workspace_name);
            let href = format!("/billing/purchases/{}", p.id);
            view! {
                <tr data-testid="purchase-row">
                    <td>{format::date_time(&p.created_at)}</td>
                    <td><a href=href>{p.description.clone()}</a>
                        {p.failure_reason.clone().filter(|_| !matches!(p.status, PurchaseStatus::Succeeded)).map(|r| view! { <div class="muted small">{r}</div> })}
                    </td>
                    <td class="num">{format!("{} {}", p.amount, p.amount.currency().as_str().to_ascii_uppercase())}</td>
                    <td class="num">{p.total_credits().to_string()}</td>
                    <td><PurchaseStatusBadge status=p.status/></td>
                    <td>{p.payment_method.clone().unwrap_or_else(|| "—".into())}</td>
                    <td>
                        {p.receipt_url.clone().map(|url| view! { <a href=url target="_blank" rel="noopener">"Receipt"</a> })}
                        " "
                        <CopySupportDetails details/>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="purchases" class="card" aria-labelledby="purchases-heading">
            <h2 id="purchases-heading">"Purchases"</h2>
            <div class="table-scroll">
                <table class="numbers purchases-table">
                    <caption class="visually-hidden">"Credit purchases, newest first, with receipts"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Date"</th>
                            <th scope="col">"Item"</th>
                            <th scope="col" class="num">"Amount"</th>
                            <th scope="col" class="num">"Credits"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Paid with"</th>
                            <th scope="col">"Receipt"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
