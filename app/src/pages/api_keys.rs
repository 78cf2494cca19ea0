use crate::api_keys::{load_api_keys, ApiKeyView, ApiKeysPage as Data, CreateApiKey, RevokeApiKey};
use crate::components::{
    announce, post_form, read_lists_again, ErrorPanel, FormAction, ListCard, ListSubmit, Loading,
    ServerForm, TopBar,
};
use crate::error::AppError;
use crate::format;
use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

/// The workspace's API keys, for its owners: make one (its secret shown once), see when each
/// was last used, revoke one.
#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| load_api_keys());
    view! {
        <Title text="API keys"/>
        <Suspense fallback=|| view! { <Loading what="your API keys"/> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(data) => view! { <KeysView data/> }.into_any(),
                    Err(AppError::Forbidden) => {
                        #[cfg(feature = "ssr")]
                        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                            response.set_status(http::StatusCode::FORBIDDEN);
                        }
                        view! {
                        <main id="main" class="narrow">
                            <section class="card error-panel" role="alert" aria-labelledby="error-title">
                                <h1 id="error-title">"Only owners manage API keys"</h1>
                                <p>"An API key can spend all of this workspace's credits, so only the workspace's owners can see, create and revoke them. Ask an owner if your product needs one."</p>
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

#[component]
fn KeysView(data: Data) -> impl IntoView {
    let Data { viewer, keys } = data;
    view! {
        <TopBar viewer/>
        <main id="main" class="narrow">
            <div class="page-head">
                <h1>"API keys"</h1>
                <p class="muted">"Your product's server calls the credit gate with an API key. Anyone holding a key can spend this workspace's credits: keep keys on servers, never in a browser or an app."</p>
            </div>
            <KeysManager>
                <KeysCard keys/>
            </KeysManager>
        </main>
    }
}

/// Making keys, and revoking them from the list: an island. Its children are the list, as the
/// server renders it; the island sends the list's forms, says each answer in the list's live
/// region and reads the list again after every change. A new key's secret shows in place.
#[island]
fn KeysManager(children: Children) -> impl IntoView {
    let create = FormAction::<CreateApiKey>::new();
    let creating = create.pending();
    // A new key shows in the list once it is answered.
    Effect::new(move |_| {
        if create.value().with(|answer| matches!(answer, Some(Ok(_)))) {
            leptos::task::spawn_local(read_lists_again::<PageClient>(&KEY_LIST));
        }
    });
    let on_submit = move |ev: leptos::web_sys::SubmitEvent| {
        let Some(mut sent) = ListSubmit::take(&ev, &[RevokeApiKey::url()]) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let answer = post_form::<RevokeApiKey>(std::mem::take(&mut sent.body))
                .await
                .map(|key| format!("“{}” is revoked: it no longer works anywhere.", key.name));
            if answer.is_ok() {
                read_lists_again::<PageClient>(&KEY_LIST).await;
            }
            announce("keys-outcome", answer);
            sent.done();
        });
    };
    view! {
        <section class="card" aria-labelledby="new-key-heading">
            <h2 id="new-key-heading">"Create a key"</h2>
            <ServerForm action=create>
                <label for="key-name">"Name"</label>
                <input id="key-name" name="name" type="text" maxlength="100" required=true placeholder="Production backend" aria-describedby="key-name-hint"/>
                <p id="key-name-hint" class="muted hint">"Say where it is used, so you know which key to revoke later."</p>
                <button type="submit" class="button primary" data-testid="create-key" disabled=move || creating.get() aria-busy=move || creating.get().to_string()>
                    {move || if creating.get() { "Creating…" } else { "Create key" }}
                </button>
            </ServerForm>
            <div aria-live="polite">
                {move || create.value().get().map(|outcome| match outcome {
                    Ok(made) => Either::Left(view! {
                        <div class="notice notice-info" role="status" data-testid="new-key">
                            <p><strong>{format!("“{}” is ready. ", made.key.name)}</strong>"Copy the key now: it is shown only this once."</p>
                            <p><code data-testid="new-key-secret">{made.secret.clone()}</code></p>
                            <CopySecret secret=made.secret/>
                        </div>
                    }),
                    Err(error) => Either::Right(view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> }),
                })}
            </div>
        </section>
        <div on:submit=on_submit>{children()}</div>
    }
}

/// The list's id, which the island reads again after a change.
const KEY_LIST: [&str; 1] = ["key-list"];

/// The client the page is read again through (every server function's is the same).
type PageClient = <CreateApiKey as ServerFn>::Client;

/// The workspace's keys, newest first, each active one with a plain form to revoke it.
#[component]
fn KeysCard(keys: Vec<ApiKeyView>) -> impl IntoView {
    let list = if keys.is_empty() {
        Either::Left(
            view! { <p class="empty">"No API keys yet. Create one for your product's server: it sends the key with each call to the credit gate."</p> },
        )
    } else {
        Either::Right(view! {
            <table class="api-keys" data-testid="api-keys">
                <caption class="visually-hidden">"This workspace's API keys, newest first"</caption>
                <thead><tr><th scope="col">"Name"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Status"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>
                    {keys.into_iter().map(|key| view! { <KeyRow key/> }).collect_view()}
                </tbody>
            </table>
        })
    };
    view! {
        <ListCard heading_id="keys-heading" title="Keys" list_id="key-list" outcome_id="keys-outcome">
            {list}
        </ListCard>
    }
}

#[component]
fn KeyRow(key: ApiKeyView) -> impl IntoView {
    let last_used = key
        .last_used_at
        .as_ref()
        .map(format::date_time)
        .unwrap_or_else(|| "Never".to_owned());
    let status = match &key.revoked_at {
        Some(at) => format!("Revoked {}", format::date_time(at)),
        None => "Active".to_owned(),
    };
    let active = key.revoked_at.is_none();
    let label = format!("Revoke {}", key.name);
    let id = key.id.clone();
    view! {
        <tr data-testid="api-key" data-id=key.id.clone()>
            <td>{key.name.clone()}</td>
            <td><time datetime=key.created_at.to_rfc3339()>{format::date_time(&key.created_at)}</time></td>
            <td>{last_used}</td>
            <td>{status}</td>
            <td>
                {active.then(|| view! {
                    <form action=RevokeApiKey::url() method="post">
                        <input type="hidden" name="id" value=id.clone()/>
                        <button type="submit" class="button small" aria-label=label.clone() data-busy="Revoking…" aria-busy="false">"Revoke"</button>
                    </form>
                })}
            </td>
        </tr>
    }
}

/// Copies a new key's secret.
#[component]
fn CopySecret(secret: String) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let secret = StoredValue::new(secret);
    view! {
        <button
            type="button"
            class="button small"
            data-testid="copy-key"
            on:click=move |_| {
                let clipboard = window().navigator().clipboard();
                let promise = clipboard.write_text(&secret.get_value());
                leptos::task::spawn_local(async move {
                    let done = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
                    copied.set(Some(done));
                });
            }
        >
            "Copy key"
        </button>
        <span class="muted" aria-live="polite">
            {move || match copied.get() {
                Some(true) => "Copied",
                Some(false) => "Could not copy; select the key instead",
                None => "",
            }}
        </span>
    }
}
