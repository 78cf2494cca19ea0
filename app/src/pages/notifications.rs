use crate::components::{ErrorPanel, FormAction, Loading, ServerForm, TopBar};
use crate::format;
use crate::notifications::{
    load_notifications, DeliveryView, EndpointView, NotificationsView, SaveEndpoint,
};
use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;

/// Credit notifications of the current workspace, newest first.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| load_notifications());
    view! {
        <Title text="Notifications"/>
        <Suspense fallback=|| view! { <Loading what="notifications"/> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(data) => view! { <NotificationList data/> }.into_any(),
                    Err(error) => view! { <main id="main" class="narrow"><ErrorPanel error/></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn NotificationList(data: NotificationsView) -> impl IntoView {
    let NotificationsView {
        viewer,
        items,
        endpoint,
    } = data;
    crate::format::show_amounts_in(&viewer.unit);
    let body = if items.is_empty() {
        Either::Left(
            view! { <p class="empty">"Nothing yet. Low-balance alerts and requests for credits will show here."</p> },
        )
    } else {
        Either::Right(view! {
            <ul class="notifications" data-testid="notifications">
                {items.into_iter().map(|n| view! {
                    <li data-kind=n.kind.clone()>
                        <p class="title">{n.title.clone()}</p>
                        <p>{n.body.clone()}</p>
                        <p class="muted"><time datetime=n.created_at.to_rfc3339()>{format::date_time(&n.created_at)}</time></p>
                    </li>
                }).collect_view()}
            </ul>
        })
    };
    view! {
        <TopBar viewer/>
        <main id="main" class="narrow">
            <div class="page-head"><h1>"Notifications"</h1></div>
            <section class="card">{body}</section>
            {endpoint.map(|EndpointView { url, deliveries }| view! {
                <EndpointCard url>
                    <DeliveryLog deliveries/>
                </EndpointCard>
            })}
        </main>
    }
}

/// The latest deliveries to the endpoint: the server's HTML, in the endpoint's card.
#[component]
fn DeliveryLog(deliveries: Vec<DeliveryView>) -> impl IntoView {
    let log = if deliveries.is_empty() {
        Either::Left(
            view! { <p class="empty">"No deliveries yet. Each new notification is sent to your endpoint within seconds."</p> },
        )
    } else {
        Either::Right(view! {
            <table class="deliveries" data-testid="deliveries">
                <caption class="visually-hidden">"The latest notification deliveries"</caption>
                <thead><tr><th scope="col">"Notification"</th><th scope="col">"Delivery"</th><th scope="col">"Tries"</th><th scope="col">"When"</th></tr></thead>
                <tbody>
                    {deliveries.into_iter().map(|d| {
                        let outcome = match d.outcome.as_str() {
                            "delivered" => "Delivered".to_owned(),
                            "no_endpoint" => "Not sent (no endpoint)".to_owned(),
                            "gave_up" => format!("Gave up: {}", d.last_error.clone().unwrap_or_default()),
                            _ => match &d.last_error {
                                Some(e) => format!("Retrying: {e}"),
                                None => "Waiting".to_owned(),
                            },
                        };
                        view! {
                            <tr>
                                <td>{d.kind.replace('_', " ")}</td>
                                <td>{outcome}</td>
                                <td class="num">{d.attempts}</td>
                                <td><time datetime=d.at.to_rfc3339()>{format::date_time(&d.at)}</time></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        })
    };
    view! {
        <h3>"Latest deliveries"</h3>
        {log}
    }
}

/// Where notifications are delivered as signed webhooks, and how the latest went (billing
/// managers only). An island: saving answers in place, with the new signing secret. Its
/// children are the delivery log, as the server renders it.
#[island]
fn EndpointCard(
    /// The endpoint's address, if one is set.
    url: Option<String>,
    children: Children,
) -> impl IntoView {
    let save = FormAction::<SaveEndpoint>::new();
    let pending = save.pending();
    let has_url = url.is_some();
    let current = url.clone().unwrap_or_default();
    view! {
        <section class="card" aria-labelledby="webhook-heading" data-testid="webhook">
            <h2 id="webhook-heading">"Send notifications to your systems"</h2>
            <p class="muted">"Tally posts each notification as JSON to this address, signed in the Tally-Signature header (HMAC-SHA256 of the timestamp and body). Failed deliveries are retried for several hours."</p>
            <ServerForm action=save>
                <label for="webhook-url">"Endpoint address"</label>
                <input id="webhook-url" name="url" type="url" inputmode="url" placeholder="https://example.com/hooks/tally" value=current required=true aria-describedby="webhook-url-hint"/>
                <p id="webhook-url-hint" class="muted hint">"Must start with https://. Saving gives a new signing secret."</p>
                <button type="submit" class="button primary" data-testid="save-webhook" disabled=move || pending.get() aria-busy=move || pending.get().to_string()>
                    {move || if pending.get() { "Saving…" } else { "Save endpoint" }}
                </button>
            </ServerForm>
            {has_url.then(|| view! {
                <ServerForm action=save>
                    <input type="hidden" name="remove" value="1"/>
                    <button type="submit" class="button" disabled=move || pending.get()>"Stop sending"</button>
                </ServerForm>
            })}
            <div aria-live="polite">
                {move || save.value().get().map(|outcome| match outcome {
                    Ok(saved) => match (saved.url, saved.secret) {
                        (Some(url), Some(secret)) => EitherOf3::A(view! {
                            <div class="notice notice-info" role="status" data-testid="webhook-saved">
                                <p>{format!("Notifications now go to {url}.")}</p>
                                <p>"Signing secret (shown once; keep it with your receiver): "<code data-testid="webhook-secret">{secret}</code></p>
                            </div>
                        }),
                        _ => EitherOf3::B(view! { <p class="notice notice-info" role="status">"Notifications are no longer sent to an endpoint."</p> }),
                    },
                    Err(error) => EitherOf3::C(view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }),
                })}
            </div>
            {children()}
        </section>
    }
}
