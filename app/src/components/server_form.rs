//! A form that sends its fields to a server function, for the islands' forms.

use leptos::form::FromFormData;
use leptos::prelude::*;
use leptos::server_fn::client::Client;
use leptos::server_fn::codec::PostUrl;
use leptos::server_fn::error::{IntoAppError, ServerFnErrorErr};
use leptos::server_fn::request::ClientReq;
use leptos::server_fn::{Http, ServerFn};
use leptos::web_sys::{FormData, SubmitEvent};
use serde::de::DeserializeOwned;

/// A `<form>` posting to `action`'s server function: a plain POST before the page hydrates,
/// the action's dispatch (its answer shown in place) after.
///
/// Leptos's `ActionForm` does the same but takes its fields as type-erased children, and the
/// browser build then compiles a type-erased view for every form — all of its methods, among
/// them asynchronous hydration, which islands never use. Here the fields keep their type.
#[component]
pub fn ServerForm<S, O, C>(
    /// The action that sends the form's fields.
    action: ServerAction<S>,
    /// The form's fields and buttons.
    children: TypedChildren<C>,
) -> impl IntoView
where
    S: DeserializeOwned + ServerFn<Protocol = Http<PostUrl, O>> + Clone + Send + Sync + 'static,
    <<S::Client as Client<S::Error>>::Request as ClientReq<S::Error>>::FormData: From<FormData>,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
    S::Client: Client<S::Error>,
    C: IntoView + 'static,
{
    let on_submit = move |ev: SubmitEvent| {
        if ev.default_prevented() {
            return;
        }
        ev.prevent_default();
        match S::from_event(&ev) {
            Ok(input) => {
                action.dispatch(input);
            }
            // A field the server function cannot read shows as the action's error, as an
            // answer would.
            Err(error) => {
                action.value().set(Some(Err(ServerFnErrorErr::Serialization(
                    error.to_string(),
                )
                .into_app_error())));
                action.version().update(|n| *n += 1);
            }
        }
    };
    let fields = children.into_inner();
    view! {
        <form action=S::url() method="post" on:submit=on_submit>
            {fields()}
        </form>
    }
}
