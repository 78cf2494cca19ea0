use crate::api_keys::{
    load_api_keys, ApiKeyView, ApiKeysPage as Data, CreateApiKey, LoadApiKeys, RevokeApiKey,
};
use crate::components::{outcome, read_again, ErrorPanel, FormAction, Loading, ServerForm, TopBar};
use crate::error::AppError;
use crate::format;
use leptos::either::Either;
use leptos::prelude::*;
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
            <KeysManager keys/>
        </main>
    }
}

/// The page's list, read again in the browser: only this part of [`Data`], so the bundle holds
/// no reader for the rest.
#[derive(serde::Deserialize)]
struct Keys {
    keys: Vec<ApiKeyView>,
}

/// Making and revoking keys, and the list they change: an island, so a new key's secret and
/// each change show in place, and the list is read again after each.
#[island]
fn KeysManager(keys: Vec<ApiKeyView>) -> impl IntoView {
    let create = FormAction::<CreateApiKey>::new();
    let revoke = FormAction::<RevokeApiKey>::new();
    let creating = create.pending();
    // The list the page came with, read again in the browser after each change (the newest
    // read wins).
    let keys = RwSignal::new(keys);
    Effect::new(move |_| {
        let versions = (create.version().get(), revoke.version().get());
        if versions != (0, 0) {
            leptos::task::spawn_local(async move {
                if let Ok(page) = read_again::<LoadApiKeys, Keys>().await {
                    let now = (
                        create.version().get_untracked(),
                        revoke.version().get_untracked(),
                    );
                    if now == versions {
                        keys.set(page.keys);
                    }
                }
            });
        }
    });
    let list = move || {
        let keys = keys.get();
        if keys.is_empty() {
            Either::Left(
                view! { <p class="empty">"No API keys yet. Create one for your product's server: it sends the key with each call to the credit gate."</p> },
            )
        } else {
            Either::Right(view! {
                <table class="api-keys" data-testid="api-keys">
                    <caption class="visually-hidden">"This workspace's API keys, newest first"</caption>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Status"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                    <tbody>
                        {keys.into_iter().map(|key| view! { <KeyRow key revoke/> }).collect_view()}
                    </tbody>
                </table>
            })
        }
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
        <section class="card" aria-labelledby="keys-heading">
            <h2 id="keys-heading">"Keys"</h2>
            {list}
            <div aria-live="polite">
                {move || revoke.value().get().map(|answer| outcome(answer, |key| format!("“{}” is revoked: it no longer works anywhere.", key.name)))}
            </div>
        </section>
    }
}

#[component]
fn KeyRow(key: ApiKeyView, revoke: FormAction<RevokeApiKey>) -> impl IntoView {
    let revoking = revoke.pending();
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
                    <ServerForm action=revoke>
                        <input type="hidden" name="id" value=id.clone()/>
                        <button type="submit" class="button small" aria-label=label.clone() disabled=move || revoking.get() aria-busy=move || revoking.get().to_string()>
                            {move || if revoking.get() { "Revoking…" } else { "Revoke" }}
                        </button>
                    </ServerForm>
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

#[cfg(test)]
mod tests {
    use super::Keys;

    /// The island reads the list again out of `load_api_keys`'s whole answer, skipping the
    /// viewer it has no reader for.
    #[test]
    fn the_keys_read_again_skip_the_viewer() {
        let answer = r#"{
            "viewer": {"email": "owner@acme.test", "role": "owner"},
            "keys": [{"id": "key_1", "name": "Production", "created_at": "2026-12-01T10:00:00Z",
                "last_used_at": null, "revoked_at": "2026-12-02T10:00:00.5+01:00"}]
        }"#;
        let keys: Keys = serde_json::from_str(answer).unwrap();
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].name, "Production");
        assert!(keys.keys[0].last_used_at.is_none());
    }
}
