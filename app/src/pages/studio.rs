use crate::components::{
    ErrorPanel, FormAction, InsufficientCredits, Loading, OverBudgetNotice, ServerForm, TopBar,
};
use crate::domain::{CreditUnit, Credits, Modality, Rate};
use crate::error::AppError;
use crate::studio::{load_studio, RunAction, StudioView};
use leptos::either::EitherOf4;
use leptos::prelude::*;
use leptos_meta::Title;

/// A small Studio: run a simulated AI action through the same credit gate and reservation flow
/// as every AI action in the product.
#[component]
pub fn StudioPage() -> impl IntoView {
    let studio = Resource::new(|| (), |_| load_studio());
    view! {
        <Title text="Studio"/>
        <Suspense fallback=|| view! { <Loading what="the Studio"/> }>
            {move || Suspend::new(async move {
                match studio.await {
                    Ok(data) => view! { <StudioView data/> }.into_any(),
                    Err(error) => view! { <main id="main" class="narrow"><ErrorPanel error/></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn StudioView(data: StudioView) -> impl IntoView {
    let StudioView {
        viewer,
        rates,
        balance,
    } = data;
    crate::format::show_amounts_in(&viewer.unit);
    let unit = viewer.unit.clone();
    let can_run = viewer.role.can_spend_credits();
    // A member shown only their project's pool acts in that project and sees what it has left.
    let pool = viewer.pool.as_ref().map(|p| p.project.clone());
    let left_word = if pool.is_some() {
        "Left for the project"
    } else {
        "Balance now"
    };
    let why_not = if viewer.role.can_view_billing() {
        "Your role can't run AI actions in this workspace: billing admins manage credits. Ask an owner, admin or member to run it."
    } else {
        "Guests run AI actions only in work someone shared with them, and see nothing of this workspace's billing. Ask the workspace owner or the person who shared this with you."
    };
    view! {
        <TopBar viewer/>
        <main id="main" class="narrow">
            <div class="page-head">
                <h1>"Studio"</h1>
                <p class="muted">
                    "Try an AI action. Tally holds the estimated credits first, runs the work, then charges what it really cost and releases the rest. "
                    {balance.map(|b| {
                        let text = match &pool {
                            Some(project) => format!("{project} has {} left.", unit.amount(b)),
                            None => format!("Balance: {}.", unit.amount(b)),
                        };
                        view! { <span data-testid="studio-balance">{text}</span> }
                    })}
                </p>
            </div>
            {(!can_run).then(|| view! {
                <p class="notice notice-info" data-testid="cannot-run">{why_not}</p>
            })}
            <StudioRunner rates can_run unit=unit.clone() left_word=left_word.to_owned()/>
        </main>
    }
}

/// The form that runs an action and what came of it: an island, so the result (or the
/// refusal, with its way forward) shows in place.
#[island]
fn StudioRunner(
    rates: Vec<Rate>,
    can_run: bool,
    unit: CreditUnit,
    left_word: String,
) -> impl IntoView {
    crate::format::show_amounts_in(&unit);
    let run = FormAction::<RunAction>::new();
    let pending = run.pending();
    let groups = Modality::ALL
        .iter()
        .map(|modality| {
            let options = rates
                .iter()
                .filter(|r| r.modality == *modality)
                .map(|r| view! { <option value=r.model.clone()>{format!("{} — {}", r.label, r.describe_in(&unit))}</option> })
                .collect_view();
            view! { <optgroup label=modality.label()>{options}</optgroup> }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="run-heading">
                <h2 id="run-heading">"Run an action"</h2>
                <ServerForm action=run>
                    <label for="studio-model">"Model"</label>
                    <select id="studio-model" name="model" required=true disabled=!can_run>{groups}</select>
                    <label for="studio-units">"Size"</label>
                    <input id="studio-units" name="units" type="number" min="1" step="1" value="2000" required=true disabled=!can_run aria-describedby="units-hint"/>
                    <p id="units-hint" class="muted hint">"Tokens for text models, images for image models, seconds for video models."</p>
                    <button type="submit" class="button primary" disabled=move || !can_run || pending.get() aria-busy=move || pending.get().to_string()>
                        {move || if pending.get() { "Running…" } else { "Run action" }}
                    </button>
                </ServerForm>
            </section>
            <div aria-live="polite">
                {move || run.value().get().map(|outcome| match outcome {
                    Ok(result) => EitherOf4::A(view! {
                        <section class="card result" data-testid="action-result">
                            <h2>"Done"</h2>
                            <p>
                                {
                                    let unit = crate::format::unit();
                                    let amount = |n: i64| unit.amount(Credits::new(n.max(0)).unwrap_or_default());
                                    format!(
                                        "{} on {} {}: held {}, charged {} for the work done. {} {}.",
                                        result.model_label,
                                        Credits::new(result.units).map(|c| c.to_string()).unwrap_or_default(),
                                        result.unit_name,
                                        amount(result.estimate),
                                        amount(result.charged),
                                        left_word,
                                        amount(result.balance),
                                    )
                                }
                            </p>
                        </section>
                    }),
                    Err(AppError::InsufficientCredits(info)) => EitherOf4::B(view! { <InsufficientCredits info/> }),
                    Err(AppError::OverBudget(info)) => EitherOf4::C(view! { <OverBudgetNotice info/> }),
                    Err(error) => EitherOf4::D(view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }),
                })}
            </div>
    }
}
