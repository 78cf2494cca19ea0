use crate::format;
use crate::purchases::{AutoReloadPanel, ConfirmReload, SaveAutoReload};
use leptos::prelude::*;

/// Auto-reload: its state in a sentence, this month's spend against the cap, the last
/// attempt, and (for billing managers) the settings form.
#[component]
pub fn AutoReloadCard(panel: AutoReloadPanel, can_manage: bool) -> impl IntoView {
    let AutoReloadPanel {
        settings,
        paused,
        card,
        default_card,
        spent_this_month,
        last_attempt,
        status_line,
    } = panel;
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
    let method = card.clone().or(default_card.clone());
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
                    <p class="muted hint">
                        {match method.clone() {
                            Some(m) => format!("Charges {m}."),
                            None => "Needs a saved card: buy credits once with a card and it is kept for Auto-reload.".to_owned(),
                        }}
                    </p>
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
