//! A form that sends its fields to a server function, and what it answered, for the islands'
//! forms.

use crate::codec::{TextJson, TextJsonEncoding};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::client::Client;
use leptos::server_fn::codec::PostUrl;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::request::ClientReq;
use leptos::server_fn::response::ClientRes;
use leptos::server_fn::{ContentType, Http, ServerFn};
use leptos::web_sys::SubmitEvent;
use serde::de::DeserializeOwned;

/// What a form's server function last answered, how many answers came, and whether one is on
/// its way: `ServerAction`'s reading side, for forms sent by [`ServerForm`].
///
/// A `ServerAction` is dispatched with the server function's arguments, so the browser build
/// held, for every form, a reader of its fields into those arguments and a writer of them
/// back into the same form encoding. A `ServerForm` sends the form's fields as the browser
/// encodes them (what the plain post sends before hydration too) and only the answer is read.
pub struct FormAction<S: ServerFn> {
    value: RwSignal<Option<Result<S::Output, AppError>>>,
    flight: Flight,
}

impl<S: ServerFn> Clone for FormAction<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ServerFn> Copy for FormAction<S> {}

impl<S> FormAction<S>
where
    S: ServerFn,
    S::Output: Send + Sync + 'static,
{
    /// No answer yet, nothing sent.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        FormAction {
            value: RwSignal::new(None),
            flight: Flight::new(),
        }
    }

    /// The latest answer, `None` before the first.
    pub fn value(&self) -> RwSignal<Option<Result<S::Output, AppError>>> {
        self.value
    }

    /// Whether a send is waiting for its answer.
    pub fn pending(&self) -> Signal<bool> {
        self.flight.pending()
    }

    fn answer(&self, answer: Result<S::Output, AppError>) {
        self.value.set(Some(answer));
    }
}

/// Sends in flight; one type for every form, so its code is in the bundle once.
#[derive(Clone, Copy)]
struct Flight {
    in_flight: RwSignal<usize>,
}

impl Flight {
    fn new() -> Self {
        Flight {
            in_flight: RwSignal::new(0),
        }
    }

    fn pending(self) -> Signal<bool> {
        Signal::derive(move || self.in_flight.get() > 0)
    }

    fn took_off(self) {
        self.in_flight.update(|n| *n += 1);
    }

    fn landed(self) {
        self.in_flight.update(|n| *n = n.saturating_sub(1));
    }
}

/// A `<form>` posting to `action`'s server function: a plain POST before the page hydrates,
/// the same fields sent by `fetch` after, its answer shown in place through `action`.
///
/// Leptos's `ActionForm` does the same but takes its fields as type-erased children, and the
/// browser build then compiles a type-erased view for every form — all of its methods, among
/// them asynchronous hydration, which islands never use. Here the fields keep their type.
#[component]
pub fn ServerForm<S, C>(
    /// Where the answer goes.
    action: FormAction<S>,
    /// The form's fields and buttons.
    children: TypedChildren<C>,
) -> impl IntoView
where
    S: ServerFn<Error = AppError, Protocol = Http<PostUrl, TextJson>> + 'static,
    S::Client: Client<AppError>,
    S::Output: DeserializeOwned + Send + Sync + 'static,
    C: IntoView + 'static,
{
    let on_submit = move |ev: SubmitEvent| {
        if ev.default_prevented() {
            return;
        }
        ev.prevent_default();
        let Some(body) = form_body(&ev) else {
            action.answer(Err(AppError::Internal));
            return;
        };
        action.flight.took_off();
        leptos::task::spawn_local(async move {
            let answer = post_form::<S>(body).await;
            action.answer(answer);
            action.flight.landed();
        });
    };
    let fields = children.into_inner();
    view! {
        <form action=S::url() method="post" on:submit=on_submit>
            {fields()}
        </form>
    }
}

/// Posts a form's URL-encoded fields to the server function `S` and reads its answer.
pub async fn post_form<S>(body: String) -> Result<S::Output, AppError>
where
    S: ServerFn<Error = AppError, Protocol = Http<PostUrl, TextJson>>,
    S::Client: Client<AppError>,
    S::Output: DeserializeOwned,
{
    let (status, text) = send::<S::Client>(S::url(), body).await?;
    read(status, text)
}

/// The submitted form's fields URL-encoded, with the name and value of the button that sent
/// it added as Leptos's own forms add them (a button without a name adds an empty pair, which
/// the server's reader skips).
pub(super) fn form_body(ev: &SubmitEvent) -> Option<String> {
    let data = leptos::form::form_data_from_event(ev).ok()?;
    let encoded = leptos::web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data).ok()?;
    encoded.to_string().as_string()
}

/// Posts `body` to `url` and gives back the answer's status and text.
async fn send<C: Client<AppError>>(url: &str, body: String) -> Result<(u16, String), AppError> {
    let request = C::Request::try_new_post(
        url,
        PostUrl::CONTENT_TYPE,
        TextJsonEncoding::CONTENT_TYPE,
        body,
    )?;
    let response = C::send(request).await?;
    let status = response.status();
    Ok((status, response.try_into_string().await?))
}

/// The answer of a server function: its output, or the error it answered with (as a server
/// function's own client reads them).
fn read<T: DeserializeOwned>(status: u16, text: String) -> Result<T, AppError> {
    if (400..=599).contains(&status) {
        return Err(AppError::de(text.into()));
    }
    serde_json::from_str(&text).map_err(|e| {
        AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::{read, FormAction};
    use crate::error::AppError;
    use leptos::prelude::*;
    use leptos::server_fn::error::FromServerFnError;

    /// The form's button is disabled while a send waits: pending stays on until the last of
    /// several sends has its answer, and the latest answer is the one shown.
    #[test]
    fn a_form_is_pending_until_its_last_send_is_answered() {
        let owner = Owner::new();
        owner.with(|| {
            let action = FormAction::<crate::budgets::RemoveBudget>::new();
            let pending = action.pending();
            assert!(!pending.get_untracked());
            action.flight.took_off();
            action.flight.took_off();
            assert!(pending.get_untracked());
            action.answer(Err(AppError::Forbidden));
            action.flight.landed();
            assert!(pending.get_untracked(), "one send is still waiting");
            action.answer(Err(AppError::NotFound));
            action.flight.landed();
            assert!(!pending.get_untracked());
            assert!(matches!(
                action.value().get_untracked(),
                Some(Err(AppError::NotFound))
            ));
        });
    }

    #[test]
    fn a_form_answered_with_success_reads_its_output() {
        let answer: Result<Vec<i64>, AppError> = read(200, "[1500,25]".to_owned());
        assert_eq!(answer.unwrap(), vec![1_500, 25]);
    }

    /// An error status carries the server function's own error, which the form shows as it
    /// was written (a refusal must not turn into a generic failure).
    #[test]
    fn a_form_answered_with_an_error_status_reads_the_servers_error() {
        let sent = AppError::Invalid("Pick a model from the list.".into());
        let text = String::from_utf8(sent.ser().to_vec()).unwrap();
        for status in [400, 403, 409, 500] {
            let answer: Result<Vec<i64>, AppError> = read(status, text.clone());
            assert_eq!(
                answer.unwrap_err().to_string(),
                sent.to_string(),
                "{status}"
            );
        }
    }

    #[test]
    fn an_answer_that_is_not_the_output_is_an_error_not_a_panic() {
        let answer: Result<Vec<i64>, AppError> = read(200, "<html>".to_owned());
        assert!(answer.is_err());
    }
}
