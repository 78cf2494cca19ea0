use crate::billing::Viewer;
use leptos::prelude::*;

/// The bar above every signed-in page: the product, the workspace switcher (for people in
/// several workspaces), who is signed in, and sign-out. Switching and signing out are plain
/// form posts, so they also work before the page has hydrated.
#[component]
pub fn TopBar(viewer: Viewer) -> impl IntoView {
    let several = viewer.workspaces.len() > 1;
    let current = viewer.workspace.clone();
    let choices = viewer.workspaces.clone();
    view! {
        <header class="top-bar">
            <a class="brand" href="/billing">"Tally"</a>
            {viewer.back_to.clone().map(|back| view! {
                <a class="back-to" href=back.url data-testid="back-to">{format!("← Back to {}", back.label)}</a>
            })}
            <nav class="main-nav" aria-label="Main">
                {(viewer.role.can_view_billing()).then(|| view! {
                    <a href="/billing">"Billing"</a>
                    <a href="/billing/rates">"Rates"</a>
                })}
                <a href="/studio">"Studio"</a>
                {(viewer.role.can_view_billing()).then(|| view! { <a href="/notifications">"Notifications"</a> })}
                {viewer.can_manage_billing.then(|| view! { <a href="/budgets">"Budgets"</a> })}
                {(viewer.role.can_manage_api_keys()).then(|| view! { <a href="/api-keys">"API keys"</a> })}
            </nav>
            <div class="workspace">
                {if several {
                    view! {
                        <form method="post" action="/session/workspace" class="switcher">
                            <label for="workspace-switcher">"Workspace"</label>
                            <select id="workspace-switcher" name="workspace_id">
                                {choices
                                    .into_iter()
                                    .map(|w| {
                                        let selected = w.id == current.id;
                                        view! {
                                            <option value=w.id.to_string() selected=selected>
                                                {w.name.clone()}
                                            </option>
                                        }
                                    })
                                    .collect_view()}
                            </select>
                            <button type="submit" class="button small">"Switch"</button>
                        </form>
                    }
                        .into_any()
                } else {
                    view! {
                        <span class="workspace-name">
                            <span class="visually-hidden">"Workspace: "</span>
                            {current.name.clone()}
                        </span>
                    }
                        .into_any()
                }}
            </div>
            <div class="who">
                <span class="email">{viewer.email.clone()}</span>
                <span class="role-badge">{viewer.role.label()}</span>
                <form method="post" action="/logout">
                    <button type="submit" class="button small ghost">"Sign out"</button>
                </form>
            </div>
        </header>
    }
}
