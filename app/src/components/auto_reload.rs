use crate::billing::AutoReloadView;
use crate::format;
use crate::purchases::{ConfirmReload, SaveAutoReload, SavedCard, TryAgainAutoReload};
use leptos::prelude::*;

/// Auto-reload: its state in a sentence, this month's spend against the cap, the last
/// attempt, and (for billing managers) the settings form and "Try again" after declines.
#[component]
pub fn AutoReloadCard(
    panel: AutoReloadView,
    /// The workspace's saved cards, to choose the one reloads charge.
    cards: Vec<SavedCard>,
    can_manage: bool,
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
    let retry = ServerAction::<TryAgainAutoReload>::new();
    let retrying = retry.pending();
    let enabled = settings.as_ref().is_some_and(|s| s.enabled) && !paused;
    let cap_text = settings
        .as_ref()
        .map(|s| format!("{spent_this_month} of {} this month", s.monthly_cap))
        .unwrap_or_else(|| format!("{spent_this_month} this month"));
    let save = ServerAction::<SaveAutoReload>::new();
    let pending = save.pending();
    let (threshold, target, cap) = match &settings {
        Some(s) => (
            s.threshold.get().to_string(),
            s.target.get().to_string(),
            format!(
                "{}.{:02}",
                s.monthly_cap.amount_minor() / 100,
                s.monthly_cap.amount_minor() % 100
            ),
        ),
        None => ("5000".to_owned(), "25000".to_owned(), "50.00".to_owned()),
    };
    // The card in use while it is still saved, else the default: what saving keeps.
    let in_use = card_id
        .as_deref()
        .and_then(|id| cards.iter().find(|c| c.id == id))
        .or_else(|| cards.iter().find(|c| c.is_default))
        .map(|c| c.id.clone());
    let card_gone = card_id.is_some() && !cards.iter().any(|c| Some(&c.id) == card_id.as_ref());
    let card_gone = card_gone && !cards.is_empty();
    let needs_confirmation = can_manage
        && last_attempt
            .as_ref()
            .is_some_and(|a| a.status == "requires_action");
    let confirm = ServerAction::<ConfirmReload>::new();
    let confirming = confirm.pending();
    Effect::new(move |_| {
        if let Some(Ok(started)) = confirm.value().get() {
            // Off to the payment page, where the cardholder confirms.
            let _ = window().location().assign(&started.url);
        }
    });
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
            {needs_confirmation.then(|| view! {
                <div class="notice notice-info" data-testid="confirm-reload">
                    <p>"Your bank wants the cardholder to confirm the last reload before it is charged."</p>
                    <ActionForm action=confirm>
                        <button type="submit" class="button primary" disabled=move || confirming.get() aria-busy=move || confirming.get().to_string()>
                            {move || if confirming.get() { "Opening the payment page…" } else { "Confirm payment" }}
                        </button>
                    </ActionForm>
                    {move || confirm.value().get().and_then(|r| r.err()).map(|e| view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> })}
                </div>
            })}
            {(can_manage && can_try_again).then(|| view! {
                <div class="notice notice-info" data-testid="auto-reload-try-again">
                    <p>"The waiting time after the declined payment has passed. Try the card once more, or choose another card below."</p>
                    <ActionForm action=retry>
                        <button type="submit" class="button" disabled=move || retrying.get() aria-busy=move || retrying.get().to_string()>
                            {move || if retrying.get() { "Trying…" } else { "Try again" }}
                        </button>
                    </ActionForm>
                    <div aria-live="polite">
                        {move || retry.value().get().map(|outcome| match outcome {
                            Ok(message) => view! { <p role="status">{message}</p> }.into_any(),
                            Err(error) => view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }.into_any(),
                        })}
                    </div>
                </div>
            })}
            {can_manage.then(|| view! {
                <ActionForm action=save>
                    <label class="checkbox">
                        <input type="checkbox" name="enabled" value="on" checked=enabled/>
                        " Turn on Auto-reload"
                    </label>
                    <label for="reload-threshold">"When the balance falls below (credits)"</label>
                    <input id="reload-threshold" name="threshold" inputmode="numeric" value=threshold required=true/>
                    <label for="reload-target">"Top up to (credits)"</label>
                    <input id="reload-target" name="target" inputmode="numeric" value=target required=true/>
                    <label for="reload-cap">"Monthly cap (USD)"</label>
                    <input id="reload-cap" name="monthly_cap" inputmode="decimal" value=cap required=true aria-describedby="reload-cap-hint"/>
                    <p id="reload-cap-hint" class="muted hint">"Auto-reload never spends more than this in a calendar month (UTC). Purchases you make yourself don't count."</p>
                    {if cards.is_empty() {
                        view! {
                            <p class="muted hint" data-testid="auto-reload-card">
                                {match card.clone() {
                                    Some(m) => format!("Charges {m}, which is no longer saved. Buy credits with a card to save one."),
                                    None => "Needs a saved card: buy credits once with a card and it is kept for Auto-reload.".to_owned(),
                                }}
                            </p>
                        }
                        .into_any()
                    } else {
                        view! {
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
                        }
                        .into_any()
                    }}
                    <button type="submit" class="button primary" data-testid="save-auto-reload" disabled=move || pending.get() aria-busy=move || pending.get().to_string()>
                        {move || if pending.get() { "Saving…" } else { "Save Auto-reload" }}
                    </button>
                </ActionForm>
            })}
            <div aria-live="polite">
                {move || save.value().get().map(|outcome| match outcome {
                    Ok(message) => view! { <p class="notice notice-info" role="status" data-testid="auto-reload-saved">{message}</p> }.into_any(),
                    Err(error) => view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }.into_any(),
                })}
            </div>
        </section>
    }
}
