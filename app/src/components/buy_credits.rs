//! Buy credits: the packs, a custom amount, and what the buyer picked.

use super::confirm_purchase::ConfirmPurchase;
use super::TestModeBadge;
use crate::domain::{CreditUnit, CustomAmountError, CustomAmountTerms};
use crate::format;
use crate::purchases::{BuyOptions, PackOffer, Pick, SavedCard};
use leptos::either::EitherOf3;
use leptos::prelude::*;

/// Buy credits: for billing managers, packs, a custom amount and the confirmation dialog
/// before checkout; for everyone else, why they can't buy, which needs nothing in the browser.
#[component]
pub fn BuyCredits(options: BuyOptions, unit: CreditUnit) -> impl IntoView {
    let BuyOptions {
        test_mode,
        can_buy,
        who_can_buy,
        packs,
        custom,
        default_card,
        upgrade,
    } = options;
    match (upgrade, can_buy) {
        // Buying needs a paid plan here: say how to get one instead of offering packs.
        (Some(upgrade), _) => EitherOf3::A(view! {
            <section id="buy-credits" class="card" aria-labelledby="buy-heading">
                <div class="card-head">
                    <h2 id="buy-heading">"Buy credits"</h2>
                    <TestModeBadge test_mode/>
                </div>
                <p class="notice notice-info" data-testid="upgrade-note">{upgrade.message}</p>
                {upgrade.url.map(|url| view! {
                    <p><a class="button primary" href=url data-testid="upgrade-link">"See plans"</a></p>
                })}
            </section>
        }),
        (None, false) => EitherOf3::B(view! {
            <section id="buy-credits" class="card" aria-labelledby="buy-heading">
                <div class="card-head">
                    <h2 id="buy-heading">"Buy credits"</h2>
                    <TestModeBadge test_mode/>
                </div>
                <p class="muted" data-testid="buy-read-only">{format!("Buying credits is for billing managers. {who_can_buy}")}</p>
            </section>
        }),
        (None, true) => EitherOf3::C(view! {
            <BuyCreditsForm test_mode packs custom default_card unit/>
        }),
    }
}

/// The packs, the custom amount and the dialog: an island, so choosing, checking a custom
/// amount and confirming run in the browser.
#[island]
fn BuyCreditsForm(
    test_mode: bool,
    packs: Vec<PackOffer>,
    custom: CustomAmountTerms,
    /// The card a checkout offers first.
    default_card: Option<SavedCard>,
    unit: CreditUnit,
) -> impl IntoView {
    format::show_amounts_in(&unit);
    let pick = RwSignal::new(None::<Pick>);
    let custom_text = RwSignal::new(String::new());
    let dialog_open = RwSignal::new(false);
    // A custom amount is typed in the deployment's unit (credits, or money).
    let terms = StoredValue::new((custom.clone(), unit.clone()));
    let custom_check = move || {
        terms.with_value(|(t, unit)| {
            let credits = unit
                .parse_amount(&custom_text.get().replace(' ', ""))
                .map_err(|_| CustomAmountError::NotANumber)?;
            let credits = t.check(credits)?;
            Ok::<_, CustomAmountError>((credits, t.price(credits)?))
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
                    <span class="pack-credits">{if unit.is_money() { format!("{} of credit", unit.figure(pack.credits)) } else { format!("{} credits", pack.credits) }}</span>
                    {(!pack.bonus.is_zero()).then(|| view! {
                        <span class="pack-bonus">
                            {if unit.is_money() { format!("+ {} bonus", unit.figure(pack.bonus)) } else { format!("+ {} bonus credits", pack.bonus) }}
                            {pack.bonus_ends_at.map(|at| format!(" until {}", format::date(&at)))}
                        </span>
                    })}
                    <span class="pack-price">{format!("{} {}", pack.price, pack.price.currency().as_str().to_ascii_uppercase())}</span>
                    {(!unit.is_money()).then(|| view! { <span class="muted pack-rate">{format!("{} per 1,000 credits", pack.per_thousand)}</span> })}
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
    let hint = StoredValue::new(custom.sentence(&unit));
    let (min, max, step) = (
        unit.input_value(custom.min),
        unit.input_value(custom.max),
        unit.input_value(custom.increment),
    );
    let custom_label = if unit.is_money() {
        format!("Amount to buy ({})", unit.noun())
    } else {
        "Credits to buy".to_owned()
    };
    let inputmode = unit.input_mode();
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
                        <label for="custom-credits">{custom_label.clone()}</label>
                        <input
                            id="custom-credits"
                            type="number"
                            inputmode=inputmode
                            min=min.clone()
                            max=max.clone()
                            step=step.clone()
                            prop:value=move || custom_text.get()
                            on:input=move |ev| custom_text.set(event_target_value(&ev))
                            aria-describedby="custom-feedback"
                        />
                        <p id="custom-feedback" class="muted" aria-live="polite">
                            {move || {
                                if custom_text.get().trim().is_empty() {
                                    hint.get_value()
                                } else {
                                    terms.with_value(|(_, unit)| match custom_check() {
                                        Ok((credits, price)) => format!("{} for {price} {}.", unit.amount(credits), price.currency().as_str().to_ascii_uppercase()),
                                        Err(e) => format!("{}.", format::capitalised(&e.explain(unit))),
                                    })
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
}
