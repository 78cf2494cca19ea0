use crate::components::{ErrorPanel, Loading, TopBar};
use crate::format;
use crate::studio::{load_notifications, NotificationsView};
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
    let NotificationsView { viewer, items } = data;
    let body = if items.is_empty() {
        view! { <p class="empty">"Nothing yet. Low-balance alerts and requests for credits will show here."</p> }.into_any()
    } else {
        view! {
            <ul class="notifications" data-testid="notifications">
                {items.into_iter().map(|n| view! {
                    <li data-kind=n.kind.clone()>
                        <p class="title">{n.title.clone()}</p>
                        <p>{n.body.clone()}</p>
                        <p class="muted"><time datetime=n.created_at.to_rfc3339()>{format::date_time(&n.created_at)}</time></p>
                    </li>
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <TopBar viewer/>
        <main id="main" class="narrow">
            <div class="page-head"><h1>"Notifications"</h1></div>
            <section class="card">{body}</section>
        </main>
    }
}
