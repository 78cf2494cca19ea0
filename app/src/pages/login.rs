use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The sign-in page. A plain form posted to `/login`, so it works before and without
/// JavaScript; once hydrated, the button shows that sign-in is under way.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let message = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid") => Some((
                "error",
                "That email and password don't match. Check them and try again.",
            )),
            Some("rate_limited") => Some((
                "error",
                "Too many sign-in attempts. Wait 15 minutes, then try again.",
            )),
            Some("missing") => Some(("error", "Enter your email and password.")),
            Some("unavailable") => Some((
                "error",
                "Sign-in is unavailable right now. Try again in a moment.",
            )),
            _ => match q.get("notice").as_deref() {
                Some("signed_out") => Some(("info", "You have signed out.")),
                _ => None,
            },
        })
    };
    view! {
        <Title text="Sign in"/>
        <main id="main" class="login">
            <div class="login-card card">
                <p class="brand" aria-hidden="true">"Tally"</p>
                <h1>"Sign in"</h1>
                <p class="muted">"Billing and AI credits for your workspaces."</p>
                {move || message().map(|(kind, text)| {
                    let role = if kind == "error" { "alert" } else { "status" };
                    view! { <p class=format!("notice notice-{kind}") role=role>{text}</p> }
                })}
                <LoginForm/>
            </div>
        </main>
    }
}

/// The form itself: it works as a plain post before hydration; once hydrated, the button
/// shows that sign-in is under way.
#[island]
fn LoginForm() -> impl IntoView {
    let (pending, set_pending) = signal(false);
    view! {
        <form method="post" action="/login" on:submit=move |_| set_pending.set(true)>
            <label for="email">"Email"</label>
            <input id="email" name="email" type="email" autocomplete="username" required=true/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required=true/>
            <button type="submit" class="button primary" aria-busy=move || pending.get().to_string()>
                {move || if pending.get() { "Signing in…" } else { "Sign in" }}
            </button>
        </form>
    }
}
