use crate::billing::BudgetLine;
use crate::budgets::TargetChoice;
use crate::budgets::{
    load_budgets, AddBudget, AddPool, BudgetsPage as Data, ChangeBudget, ChangePool, PoolLine,
    RemoveBudget, RemovePool,
};
use crate::components::{
    announce, outcome, post_form, read_lists_again, BudgetBar, ErrorPanel, FormAction, ListCard,
    ListSubmit, Loading, ServerForm, TopBar,
};
use crate::domain::CreditUnit;
use crate::error::AppError;
use crate::format;
use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

/// The ids of the lists the server renders, which the island reads again after a change.
const LISTS: [&str; 2] = ["budget-list", "pool-list"];

/// The client the page is read again through (every server function's is the same).
type PageClient = <AddBudget as ServerFn>::Client;

/// Budgets below the workspace, for its billing managers: each with this period's use as a
/// bar, frequency caps, pools with what they keep, and forms to add, change or remove each.
#[component]
pub fn BudgetsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| load_budgets());
    view! {
        <Title text="Budgets"/>
        <Suspense fallback=|| view! { <Loading what="your budgets"/> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(data) => {
                        let Data { viewer, budgets, pools, members, api_keys, projects } = data;
                        let unit = viewer.unit.clone();
                        format::show_amounts_in(&unit);
                        view! {
                            <TopBar viewer/>
                            <main id="main" class="narrow">
                                <div class="page-head">
                                    <h1>"Budgets"</h1>
                                    <p class="muted">"Limits below the workspace's balance. The credit gate checks them with every charge: a hard budget refuses the action that would pass it, a soft one lets it through and tells you."</p>
                                </div>
                                <BudgetsManager unit members api_keys projects>
                                    <BudgetsCard budgets/>
                                    <PoolsCard pools/>
                                </BudgetsManager>
                            </main>
                        }
                        .into_any()
                    }
                    Err(AppError::Forbidden) => {
                        #[cfg(feature = "ssr")]
                        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                            response.set_status(http::StatusCode::FORBIDDEN);
                        }
                        view! {
                            <main id="main" class="narrow">
                                <section class="card error-panel" role="alert" aria-labelledby="error-title">
                                    <h1 id="error-title">"Only billing managers set budgets"</h1>
                                    <p>"The budgets that apply to you, and what each has left, are on the Billing page. Ask a workspace admin to change one."</p>
                                    <p><a class="button" href="/billing">"Back to Billing"</a></p>
                                </section>
                            </main>
                        }.into_any()
                    }
                    Err(error) => view! { <main id="main" class="narrow"><ErrorPanel error/></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The page's forms: an island. Its children are the lists, as the server renders them; the
/// island sends their forms, shows each answer in the list's live region and reads the lists
/// again after every change. The forms that add a budget or a pool are its own.
#[island]
fn BudgetsManager(
    unit: CreditUnit,
    members: Vec<TargetChoice>,
    api_keys: Vec<TargetChoice>,
    projects: Vec<TargetChoice>,
    children: Children,
) -> impl IntoView {
    format::show_amounts_in(&unit);
    let add = FormAction::<AddBudget>::new();
    let add_pool = FormAction::<AddPool>::new();
    // An addition shows in the lists once it is answered (a refusal leaves the page as it is,
    // with what was typed).
    Effect::new(move |_| {
        if add.value().with(|answer| matches!(answer, Some(Ok(_)))) {
            leptos::task::spawn_local(read_lists_again::<PageClient>(&LISTS));
        }
    });
    Effect::new(move |_| {
        if add_pool
            .value()
            .with(|answer| matches!(answer, Some(Ok(_))))
        {
            leptos::task::spawn_local(read_lists_again::<PageClient>(&LISTS));
        }
    });
    let on_submit = {
        let unit = unit.clone();
        move |ev: leptos::web_sys::SubmitEvent| {
            let actions = [
                ChangeBudget::url(),
                RemoveBudget::url(),
                ChangePool::url(),
                RemovePool::url(),
            ];
            let Some(mut sent) = ListSubmit::take(&ev, &actions) else {
                return;
            };
            let unit = unit.clone();
            leptos::task::spawn_local(async move {
                let body = std::mem::take(&mut sent.body);
                let (region, answer) = send_list_form(sent.to, body, &unit).await;
                if answer.is_ok() {
                    read_lists_again::<PageClient>(&LISTS).await;
                }
                announce(region, answer);
                sent.done();
            });
        }
    };
    view! {
        <div on:submit=on_submit>{children()}</div>
        <NewPoolCard add_pool/>
        <NewBudgetCard members api_keys projects add/>
    }
}

/// Sends one of the lists' forms to its server function (`to`: the index of its address in
/// the handler's list) and words the answer; with the live region (an id) it belongs in.
async fn send_list_form(
    to: usize,
    body: String,
    unit: &CreditUnit,
) -> (&'static str, Result<String, AppError>) {
    match to {
        0 => {
            let answer = post_form::<ChangeBudget>(body).await;
            let said =
                answer.map(|b| format!("{}'s budget is now {}.", b.label, limit_phrase(&b, unit)));
            ("budgets-outcome", said)
        }
        1 => {
            let answer = post_form::<RemoveBudget>(body).await;
            let said = answer.map(|label| format!("The budget on {label} is removed."));
            ("budgets-outcome", said)
        }
        2 => {
            let answer = post_form::<ChangePool>(body).await;
            let said =
                answer.map(|p| format!("{} now keeps {}.", p.label, unit.amount(p.remaining)));
            ("pools-outcome", said)
        }
        _ => {
            let answer = post_form::<RemovePool>(body).await;
            let said = answer.map(|label| {
                format!(
                    "The pool for {label} is removed; its credits are back in the shared balance."
                )
            });
            ("pools-outcome", said)
        }
    }
}

/// This period's budgets, each with its use and forms to change or remove it.
#[component]
fn BudgetsCard(budgets: Vec<BudgetLine>) -> impl IntoView {
    let list = if budgets.is_empty() {
        Either::Left(
            view! { <p class="empty">"No budgets yet. Without one, any member or API key can spend the whole balance. Add a budget to cap a person, a key or a project per day, week or month."</p> },
        )
    } else {
        Either::Right(view! {
            <ul class="budget-list" data-testid="budgets">
                {budgets.into_iter().map(|budget| view! { <BudgetItem budget/> }).collect_view()}
            </ul>
        })
    };
    view! {
        <ListCard heading_id="budgets-heading" title="This period" list_id="budget-list" outcome_id="budgets-outcome">
            {list}
        </ListCard>
    }
}

/// The form that adds a budget or a frequency cap.
#[component]
fn NewBudgetCard(
    members: Vec<TargetChoice>,
    api_keys: Vec<TargetChoice>,
    projects: Vec<TargetChoice>,
    add: FormAction<AddBudget>,
) -> impl IntoView {
    let unit = format::unit();
    let scope = RwSignal::new("member".to_owned());
    // Naming an action makes the new budget a frequency cap, whose limit counts actions.
    let counting = RwSignal::new(false);
    let noun = unit.noun();
    let money_step = unit.input_step();
    let limit_step = move || {
        if counting.get() {
            "1".to_owned()
        } else {
            money_step.clone()
        }
    };
    let adding = add.pending();
    view! {
            <section class="card" aria-labelledby="new-budget-heading">
                <h2 id="new-budget-heading">"Add a budget"</h2>
                <ServerForm action=add attr:class="budget-form">
                    <label for="budget-scope">"On"</label>
                    <select id="budget-scope" name="scope" prop:value=move || scope.get() on:change=move |ev| scope.set(event_target_value(&ev))>
                        <option value="member">"A member"</option>
                        <option value="api_key">"An API key"</option>
                        <option value="project">"A project"</option>
                        <option value="workspace">"The whole workspace"</option>
                    </select>
                    <label for="budget-target">{move || match scope.get().as_str() {
                        "api_key" => "API key",
                        "project" => "Project",
                        "workspace" => "Workspace",
                        _ => "Member's email",
                    }}</label>
                    <input id="budget-target" name="target" type="text" maxlength="200" required=move || scope.get() != "workspace"
                        list=move || format!("budget-{}-choices", scope.get())
                        aria-describedby="budget-target-hint"/>
                    <p id="budget-target-hint" class="muted hint">{move || match scope.get().as_str() {
                        "api_key" => "Pick a key from the list (its id is sent).",
                        "project" => "The project's name, as your product sends it with each action.",
                        "workspace" => "Every action of the workspace counts.",
                        _ => "Someone in this workspace.",
                    }}</p>
                    {choices("budget-member-choices", members)}
                    {choices("budget-api_key-choices", api_keys)}
                    {choices("budget-project-choices", projects)}
                    <label for="budget-period">"Per"</label>
                    <select id="budget-period" name="period">
                        <option value="day">"Day (UTC)"</option>
                        <option value="week">"Week (from Monday, UTC)"</option>
                        <option value="month" selected=true>"Month (UTC)"</option>
                        <option value="lifetime">"Ever (never resets)"</option>
                    </select>
                    <label for="budget-action">"Only count one action (optional)"</label>
                    <input id="budget-action" name="action" type="text" maxlength="200" aria-describedby="budget-action-hint"
                        on:input=move |ev| counting.set(!event_target_value(&ev).trim().is_empty())/>
                    <p id="budget-action-hint" class="muted hint">"An action your product sends, such as video.generate: the budget then caps how many of them run per period, whatever they cost, and answers 429 past it."</p>
                    <label for="budget-limit">{move || if counting.get() { "Limit in actions".to_owned() } else { format!("Limit in {noun}") }}</label>
                    <input id="budget-limit" name="limit" type="number" required=true
                        min=limit_step.clone()
                        step=limit_step
                        inputmode=unit.input_mode()/>
                    <label for="budget-enforcement">"When it is reached"</label>
                    <select id="budget-enforcement" name="enforcement" aria-describedby="budget-enforcement-hint">
                        <option value="hard">"Refuse further actions (hard)"</option>
                        <option value="soft">"Allow them and tell me (soft)"</option>
                    </select>
                    <p id="budget-enforcement-hint" class="muted hint">"Billing managers are told at 80 % and when it is used up, once each period."</p>
                    <button type="submit" class="button primary" data-testid="add-budget" disabled=move || adding.get() aria-busy=move || adding.get().to_string()>
                        {move || if adding.get() { "Adding…" } else { "Add budget" }}
                    </button>
                </ServerForm>
                <div aria-live="polite">
                    {move || add.value().get().map(|answer| outcome(answer, |b| format!("Budget added: {} per {}.", limit_phrase(&b, &format::unit()), b.period)))}
                </div>
            </section>
    }
}

/// Suggestions for a target field: the form sends `value`, people read `label`.
fn choices(id: &'static str, choices: Vec<TargetChoice>) -> impl IntoView {
    view! {
        <datalist id=id>
            {choices.into_iter().map(|c| view! { <option value=c.value>{c.label}</option> }).collect_view()}
        </datalist>
    }
}

/// A budget's limit in words: credits in the unit shown, or a cap's count of actions.
fn limit_phrase(budget: &BudgetLine, unit: &CreditUnit) -> String {
    match &budget.action {
        Some(action) => format!("{} {action}", budget.limit),
        None => unit.amount(budget.limit),
    }
}

/// One budget: its use, and plain forms to change its limit or remove it (sent by the
/// island's handler once the page is live, posted as they are before).
#[component]
fn BudgetItem(budget: BudgetLine) -> impl IntoView {
    let id = budget.id.clone();
    let (limit_id, enforcement_id) = (format!("limit-{id}"), format!("enforcement-{id}"));
    let kind = match budget.scope.as_str() {
        "api_key" => "API key",
        "project" => "Project",
        "workspace" => "Workspace",
        _ => "Member",
    };
    // A frequency cap says which action it counts.
    let scope = match &budget.action {
        Some(action) => format!("{kind}, {action} cap"),
        None => kind.to_owned(),
    };
    let hard = budget.enforcement == "hard";
    // A cap's limit is a count of actions; a budget's is credits in the unit shown.
    let unit = format::unit();
    let (step, value) = match &budget.action {
        Some(_) => ("1".to_owned(), budget.limit.get().to_string()),
        None => (unit.input_step(), unit.input_value(budget.limit)),
    };
    view! {
        <li data-testid="budget" data-id=budget.id.clone()>
            <h3>{format!("{scope}: {}", budget.label)}</h3>
            <BudgetBar budget=budget.clone()/>
            <form action=ChangeBudget::url() method="post" class="inline-form">
                <input type="hidden" name="id" value=id.clone()/>
                <label for=limit_id.clone()>"Limit"</label>
                <input id=limit_id name="limit" type="number" min=step.clone() step=step required=true value=value/>
                <label for=enforcement_id.clone()>"Enforcement"</label>
                <select id=enforcement_id name="enforcement">
                    <option value="hard" selected=hard>"Hard"</option>
                    <option value="soft" selected=!hard>"Soft"</option>
                </select>
                <button type="submit" class="button small" data-busy="Saving…" aria-busy="false">"Save"</button>
            </form>
            <form action=RemoveBudget::url() method="post" class="inline-form">
                <input type="hidden" name="id" value=id/>
                <button type="submit" class="button small" aria-label=format!("Remove the budget on {}", budget.label) data-busy="Removing…" aria-busy="false">"Remove"</button>
            </form>
        </li>
    }
}

/// Pools: credits of the balance kept for one project or API key, each with what it keeps and
/// forms to change or remove it.
#[component]
fn PoolsCard(pools: Vec<PoolLine>) -> impl IntoView {
    let list = if pools.is_empty() {
        Either::Left(
            view! { <p class="empty">"No pools. Keep credits apart for a project or an API key, and only it can spend them; the rest of the workspace can't."</p> },
        )
    } else {
        Either::Right(view! {
            <ul class="budget-list" data-testid="pools">
                {pools.into_iter().map(|pool| view! { <PoolItem pool/> }).collect_view()}
            </ul>
        })
    };
    view! {
        <ListCard heading_id="pools-heading" title="Pools" list_id="pool-list" outcome_id="pools-outcome"
            intro="Credits of the balance kept for one project or API key: only it spends them, and nobody else can.">
            {list}
        </ListCard>
    }
}

/// The form that keeps credits apart in a new pool.
#[component]
fn NewPoolCard(add_pool: FormAction<AddPool>) -> impl IntoView {
    let unit = format::unit();
    let scope = RwSignal::new("project".to_owned());
    let adding = add_pool.pending();
    view! {
        <section class="card" aria-labelledby="new-pool-heading">
            <h2 id="new-pool-heading">"Keep credits apart"</h2>
            <ServerForm action=add_pool attr:class="budget-form" attr:aria-labelledby="new-pool-heading">
                <label for="pool-scope">"For"</label>
                <select id="pool-scope" name="scope" prop:value=move || scope.get() on:change=move |ev| scope.set(event_target_value(&ev))>
                    <option value="project">"A project"</option>
                    <option value="api_key">"An API key"</option>
                </select>
                <label for="pool-target">{move || if scope.get() == "api_key" { "API key" } else { "Project" }}</label>
                // The budget form's suggestions, which hold the same projects and keys.
                <input id="pool-target" name="target" type="text" maxlength="200" required=true
                    list=move || format!("budget-{}-choices", scope.get())/>
                <label for="pool-credits">{format!("Credits to keep ({})", unit.noun())}</label>
                <input id="pool-credits" name="credits" type="number" required=true min=unit.input_step() step=unit.input_step()
                    inputmode=unit.input_mode() aria-describedby="pool-credits-hint"/>
                <p id="pool-credits-hint" class="muted hint">"They come out of what no other pool keeps."</p>
                <label class="checkbox">
                    <input type="checkbox" name="overflow" value="on"/>
                    " When they run out, go on with the shared balance"
                </label>
                <button type="submit" class="button primary" data-testid="add-pool" disabled=move || adding.get() aria-busy=move || adding.get().to_string()>
                    {move || if adding.get() { "Keeping…" } else { "Keep credits" }}
                </button>
            </ServerForm>
            <div aria-live="polite">
                {move || add_pool.value().get().map(|answer| outcome(answer, |p| format!("{} kept for {}.", format::unit().amount(p.remaining), p.label)))}
            </div>
        </section>
    }
}

/// One pool: what it keeps, and plain forms to change or remove it (sent by the island's
/// handler once the page is live).
#[component]
fn PoolItem(pool: PoolLine) -> impl IntoView {
    let unit = format::unit();
    let id = pool.id.clone();
    let (credits_id, overflow_id) = (format!("pool-credits-{id}"), format!("pool-overflow-{id}"));
    let (credits_for, overflow_for) = (credits_id.clone(), overflow_id.clone());
    let (change_id, remove_id) = (id.clone(), id.clone());
    let (step, value) = (unit.input_step(), unit.input_value(pool.remaining));
    let overflow = pool.overflow;
    let kind = if pool.scope == "api_key" {
        "API key"
    } else {
        "Project"
    };
    let left = format!(
        "{} left{}",
        unit.amount(pool.remaining),
        if pool.overflow {
            ", then the shared balance"
        } else {
            "; nothing more once spent"
        }
    );
    view! {
        <li data-testid="pool" data-id=id>
            <h3>{format!("{kind}: {}", pool.label)}</h3>
            <p class="muted">{left}</p>
            <form action=ChangePool::url() method="post" class="inline-form">
                <input type="hidden" name="id" value=change_id/>
                <label for=credits_for>"Keeps"</label>
                <input id=credits_id name="credits" type="number" required=true min=step.clone() step=step value=value/>
                <label class="checkbox" for=overflow_for>
                    <input id=overflow_id type="checkbox" name="overflow" value="on" checked=overflow/>
                    " Then the shared balance"
                </label>
                <button type="submit" class="button small" data-busy="Saving…" aria-busy="false">"Save"</button>
            </form>
            <form action=RemovePool::url() method="post" class="inline-form">
                <input type="hidden" name="id" value=remove_id/>
                <button type="submit" class="button small" aria-label=format!("Remove the pool for {}", pool.label) data-busy="Removing…" aria-busy="false">"Remove"</button>
            </form>
        </li>
    }
}
