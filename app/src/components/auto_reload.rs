use super::{FormAction, ServerForm};
use crate::billing::AutoReloadView;
use crate::domain::{
    AutoReloadSettings, CreditUnit, Credits, Currency, CustomAmountTerms, Money, PackDeal,
    ReloadAmount, ReloadMode,
};
use crate::format;
use crate::purchases::{ConfirmReload, PackOffer, SaveAutoReload, SavedCard, TryAgainAutoReload};
use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;

/// What the form's fields say the next reload will buy and cost, or what to fix first.
fn form_preview(
    mode: ReloadMode,
    fields: [&str; 4],
    terms: &CustomAmountTerms,
    packs: &[PackOffer],
    unit: &CreditUnit,
) -> String {
    let [threshold, target, fixed, pack_id] = fields;
    let read = |field: &str, text: &str| {
        unit.parse_amount(&text.replace(' ', ""))
            .map_err(|e| format!("{field}: {e}."))
    };
    let threshold = match read("Threshold", threshold) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let amount = match mode {
        ReloadMode::Target => match read("Target balance", target) {
            Ok(t) => ReloadAmount::Target(t),
            Err(e) => return e,
        },
        ReloadMode::Fixed => match read(
            if unit.is_money() {
                "Amount to buy each time"
            } else {
                "Credits to buy each time"
            },
            fixed,
        ) {
            Ok(c) => ReloadAmount::Fixed(c),
            Err(e) => return e,
        },
        ReloadMode::Pack => ReloadAmount::Pack(pack_id.to_owned()),
    };
    let pack = packs.iter().find(|p| p.id == pack_id).map(|p| PackDeal {
        name: p.name.clone(),
        credits: p.credits,
        bonus: p.bonus,
        price: p.price.clone(),
    });
    let settings = AutoReloadSettings {
        enabled: true,
        threshold,
        amount,
        monthly_cap: Money::zero(Currency::usd()),
    };
    settings.preview(terms, pack.as_ref(), unit)
}

/// Auto-reload: its state in a sentence, this month's spend against the cap, the last
/// attempt, and (for billing managers) the settings form and "Try again" after declines.
///
/// The state lines are the server's HTML; only the forms are an island, so the browser reads
/// only what they need.
#[component]
pub fn AutoReloadCard(
    panel: AutoReloadView,
    /// The workspace's saved cards, to choose the one reloads charge.
    cards: Vec<SavedCard>,
    /// The packs on sale, for the pack mode.
    packs: Vec<PackOffer>,
    /// The custom amount's terms, which the target and fixed modes buy on.
    terms: CustomAmountTerms,
    can_manage: bool,
    /// The unit amounts are shown and typed in.
    unit: CreditUnit,
) -> impl IntoView {
    let settings = panel.settings();
    let AutoReloadView {
        paused,
        card,
        card_id,
        spent_this_month,
        last_attempt,
        status_line,
        can_try_again,
        ..
    } = panel;
    let enabled = settings.as_ref().is_some_and(|s| s.enabled) && !paused;
    let cap_text = settings
        .as_ref()
        .map(|s| format!("{spent_this_month} of {} this month", s.monthly_cap))
        .unwrap_or_else(|| format!("{spent_this_month} this month"));
    let needs_confirmation = can_manage
        && last_attempt
            .as_ref()
            .is_some_and(|a| a.status == "requires_action");
    view! {
        <section id="auto-reload" class="card" aria-labelledby="auto-reload-heading">
            <div class="card-head">
                <h2 id="auto-reload-heading">"Auto-reload"</h2>
                <span class=if enabled { "badge badge-good" } else if paused { "badge badge-bad" } else { "badge" } data-testid="auto-reload-state">
                    {if enabled { "On" } else if paused { "Paused" } else { "Off" }}
                </span>
            </div>
            <p data-testid="auto-reload-status">{status_line}</p>
            <p class="muted" data-testid="auto-reload-spend">{cap_text}</p>
            {last_attempt.map(|a| view! {
                <p class="muted small" data-testid="auto-reload-last">
                    {format!(
                        "Last attempt {}: {}{}",
                        format::date_time(&a.at),
                        a.status.replace('_', " "),
                        a.reason.map(|r| format!(" — {r}")).unwrap_or_default()
                    )}
                </p>
            })}
            <AutoReloadForms
                settings
                enabled
                card
                card_id
                needs_confirmation
                can_try_again=can_manage && can_try_again
                cards
                packs
                terms
                can_manage
                unit
            />
        </section>
    }
}

/// Auto-reload's forms: confirming a reload the bank held, trying a declined one again, and
/// the settings with a preview of what the next reload buys. An island.
#[island]
fn AutoReloadForms(
    /// The saved settings, if any.
    settings: Option<AutoReloadSettings>,
    /// Whether reloads run now (on and not paused).
    enabled: bool,
    /// The card reloads charge, as people read it.
    card: Option<String>,
    /// Its id.
    card_id: Option<String>,
    /// The bank wants the cardholder to confirm the last reload.
    needs_confirmation: bool,
    /// The wait after a declined reload has passed.
    can_try_again: bool,
    /// The workspace's saved cards, to choose the one reloads charge.
    cards: Vec<SavedCard>,
    /// The packs on sale, for the pack mode.
    packs: Vec<PackOffer>,
    /// The custom amount's terms, which the target and fixed modes buy on.
    terms: CustomAmountTerms,
    /// Billing managers get the settings form; everyone else the state lines alone.
    can_manage: bool,
    /// The unit amounts are shown and typed in.
    unit: CreditUnit,
) -> impl IntoView {
    format::show_amounts_in(&unit);
    let retry = FormAction::<TryAgainAutoReload>::new();
    let retrying = retry.pending();
    let save = FormAction::<SaveAutoReload>::new();
    let pending = save.pending();
    // Amounts are read and typed in the deployment's unit.
    let field = {
        let unit = unit.clone();
        move |credits: i64| unit.input_value(Credits::new(credits).unwrap_or_default())
    };
    let (threshold, cap) = match &settings {
        Some(s) => (
            field(s.threshold.get()),
            format!(
                "{}.{:02}",
                s.monthly_cap.amount_minor() / 100,
                s.monthly_cap.amount_minor() % 100
            ),
        ),
        None => (field(5_000), "50.00".to_owned()),
    };
    // The form's fields, so that only the chosen mode's show and the preview follows them.
    let saved = settings.as_ref().map(|s| s.amount.clone());
    let mode = RwSignal::new(
        saved
            .as_ref()
            .map_or(ReloadMode::Target, ReloadAmount::mode),
    );
    let threshold_text = RwSignal::new(threshold);
    let target_text = RwSignal::new(match &saved {
        Some(ReloadAmount::Target(t)) => field(t.get()),
        _ => field(25_000),
    });
    let fixed_text = RwSignal::new(match &saved {
        Some(ReloadAmount::Fixed(c)) => field(c.get()),
        _ => field(terms.min.get()),
    });
    let pack_choice = RwSignal::new(match &saved {
        Some(ReloadAmount::Pack(id)) => id.clone(),
        _ => packs.first().map(|p| p.id.clone()).unwrap_or_default(),
    });
    let shop = StoredValue::new((terms, packs, unit.clone()));
    let preview = move || {
        shop.with_value(|(terms, packs, unit)| {
            form_preview(
                mode.get(),
                [
                    &threshold_text.get(),
                    &target_text.get(),
                    &fixed_text.get(),
                    &pack_choice.get(),
                ],
                terms,
                packs,
                unit,
            )
        })
    };
    let noun = unit.noun();
    let (fixed_choice, fixed_label) = if unit.is_money() {
        (
            " a fixed amount",
            format!("Amount to buy each time ({noun})"),
        )
    } else {
        (
            " a fixed number of credits",
            "Credits to buy each time".to_owned(),
        )
    };
    let inputmode = unit.input_mode();
    // The first render carries the saved values as attributes, so the form works before the
    // page hydrates; the signals take over after.
    let initial_mode = mode.get_untracked();
    let mode_choice = move |value: ReloadMode, label: &'static str| {
        let id = format!("reload-mode-{value}");
        view! {
            <label class="radio" for=id.clone()>
                <input
                    type="radio"
                    id=id.clone()
                    name="mode"
                    value=value.as_str()
                    checked=initial_mode == value
                    prop:checked=move || mode.get() == value
                    on:change=move |_| mode.set(value)
                />
                {label}
            </label>
        }
    };
    // The card in use while it is still saved, else the default: what saving keeps.
    let in_use = card_id
        .as_deref()
        .and_then(|id| cards.iter().find(|c| c.id == id))
        .or_else(|| cards.iter().find(|c| c.is_default))
        .map(|c| c.id.clone());
    let card_gone = card_id.is_some() && !cards.iter().any(|c| Some(&c.id) == card_id.as_ref());
    let card_gone = card_gone && !cards.is_empty();
    let confirm = FormAction::<ConfirmReload>::new();
    let confirming = confirm.pending();
    Effect::new(move |_| {
        if let Some(Ok(started)) = confirm.value().get() {
            // Off to the payment page, where the cardholder confirms.
            let _ = window().location().assign(&started.url);
        }
    });
    view! {
            {needs_confirmation.then(|| view! {
                <div class="notice notice-info" data-testid="confirm-reload">
                    <p>"Your bank wants the cardholder to confirm the last reload before it is charged."</p>
                    <ServerForm action=confirm>
                        <button type="submit" class="button primary" disabled=move || confirming.get() aria-busy=move || confirming.get().to_string()>
                            {move || if confirming.get() { "Opening the payment page…" } else { "Confirm payment" }}
                        </button>
                    </ServerForm>
                    {move || confirm.value().get().and_then(|r| r.err()).map(|e| view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> })}
                </div>
            })}
            {can_try_again.then(|| view! {
                <div class="notice notice-info" data-testid="auto-reload-try-again">
                    <p>"The waiting time after the declined payment has passed. Try the card once more, or choose another card below."</p>
                    <ServerForm action=retry>
                        <button type="submit" class="button" disabled=move || retrying.get() aria-busy=move || retrying.get().to_string()>
                            {move || if retrying.get() { "Trying…" } else { "Try again" }}
                        </button>
                    </ServerForm>
                    <div aria-live="polite">
                        {move || retry.value().get().map(|outcome| match outcome {
                            Ok(message) => Either::Left(view! { <p role="status">{message}</p> }),
                            Err(error) => Either::Right(view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }),
                        })}
                    </div>
                </div>
            })}
            {can_manage.then(|| view! {
                <ServerForm action=save>
                    <label class="checkbox">
                        <input type="checkbox" name="enabled" value="on" checked=enabled/>
                        " Turn on Auto-reload"
                    </label>
                    <label for="reload-threshold">{format!("When the balance falls below ({noun})")}</label>
                    <input id="reload-threshold" name="threshold" inputmode=inputmode value=threshold_text.get_untracked() prop:value=move || threshold_text.get() on:input=move |ev| threshold_text.set(event_target_value(&ev)) required=true/>
                    <fieldset class="reload-modes">
                        <legend>"Each reload buys"</legend>
                        {mode_choice(ReloadMode::Target, " enough to reach a target balance")}
                        {mode_choice(ReloadMode::Fixed, fixed_choice)}
                        {mode_choice(ReloadMode::Pack, " a credit pack")}
                    </fieldset>
                    {move || match mode.get() {
                        ReloadMode::Target => EitherOf3::A(view! {
                            <label for="reload-target">{format!("Top up to ({})", shop.with_value(|(_, _, unit)| unit.noun()))}</label>
                            <input id="reload-target" name="target" inputmode=inputmode value=target_text.get_untracked() prop:value=move || target_text.get() on:input=move |ev| target_text.set(event_target_value(&ev)) required=true/>
                        }),
                        ReloadMode::Fixed => EitherOf3::B(view! {
                            <label for="reload-fixed">{fixed_label.clone()}</label>
                            <input id="reload-fixed" name="fixed_credits" inputmode=inputmode value=fixed_text.get_untracked() prop:value=move || fixed_text.get() on:input=move |ev| fixed_text.set(event_target_value(&ev)) required=true aria-describedby="reload-fixed-hint"/>
                            <p id="reload-fixed-hint" class="muted hint">{shop.with_value(|(t, _, unit)| t.sentence(unit))}" The threshold can be at most this amount."</p>
                        }),
                        ReloadMode::Pack => EitherOf3::C(view! {
                            <label for="reload-pack">"Pack to buy"</label>
                            <select id="reload-pack" name="pack_id" on:change=move |ev| pack_choice.set(event_target_value(&ev))>
                                {shop.with_value(|(_, packs, unit)| packs.iter().map(|p| {
                                    let selected = pack_choice.get_untracked() == p.id;
                                    let bonus = if p.bonus.is_zero() { String::new() } else { format!(" + {} bonus", unit.figure(p.bonus)) };
                                    view! { <option value=p.id.clone() selected=selected>{format!("{}: {}{bonus}, {} {}", p.name, unit.amount(p.credits), p.price, p.price.currency().as_str().to_ascii_uppercase())}</option> }
                                }).collect_view())}
                            </select>
                        }),
                    }}
                    <p class="muted" data-testid="auto-reload-preview" aria-live="polite">{preview}</p>
                    <label for="reload-cap">"Monthly cap (USD)"</label>
                    <input id="reload-cap" name="monthly_cap" inputmode="decimal" value=cap required=true aria-describedby="reload-cap-hint"/>
                    <p id="reload-cap-hint" class="muted hint">"Auto-reload never spends more than this in a calendar month (UTC). Purchases you make yourself don't count."</p>
                    {if cards.is_empty() {
                        Either::Left(view! {
                            <p class="muted hint" data-testid="auto-reload-card">
                                {match card.clone() {
                                    Some(m) => format!("Charges {m}, which is no longer saved. Buy credits with a card to save one."),
                                    None => "Needs a saved card: buy credits once with a card and it is kept for Auto-reload.".to_owned(),
                                }}
                            </p>
                        })
                    } else {
                        Either::Right(view! {
                            <label for="reload-card">"Card to charge"</label>
                            <select id="reload-card" name="payment_method" data-testid="auto-reload-card" aria-describedby="reload-card-hint">
                                {cards.iter().map(|c| {
                                    let selected = in_use.as_deref() == Some(c.id.as_str());
                                    let label = if c.is_default { format!("{} (default)", c.label()) } else { c.label() };
                                    view! { <option value=c.id.clone() selected=selected>{label}</option> }
                                }).collect_view()}
                            </select>
                            <p id="reload-card-hint" class="muted hint">
                                {if card_gone {
                                    "The card Auto-reload charged is no longer saved; choose another and save."
                                } else {
                                    "Reloads charge this card while nobody is at the keyboard."
                                }}
                            </p>
                        })
                    }}
                    <button type="submit" class="button primary" data-testid="save-auto-reload" disabled=move || pending.get() aria-busy=move || pending.get().to_string()>
                        {move || if pending.get() { "Saving…" } else { "Save Auto-reload" }}
                    </button>
                </ServerForm>
            })}
            <div aria-live="polite">
                {move || save.value().get().map(|outcome| match outcome {
                    Ok(message) => Either::Left(view! { <p class="notice notice-info" role="status" data-testid="auto-reload-saved">{message}</p> }),
                    Err(error) => Either::Right(view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }),
                })}
            </div>
    }
}
