//! Lists the server renders, each item with plain forms, that an island keeps current in the
//! browser: it sends the items' forms itself (one handler for every form of the list), shows
//! each answer in the list's own live region, and reads the list's HTML again from the
//! server's page after a change.
//!
//! The items are never built in the browser, so the bundle holds no code to render, hydrate
//! or rebuild them: only the server's view of a list exists. Before the page hydrates (or
//! without its script) the same forms post and the server sends the browser back to the page.

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::client::Client;
use leptos::server_fn::request::ClientReq;
use leptos::server_fn::response::ClientRes;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::{Element, HtmlTemplateElement, SubmitEvent};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A card holding a list the server renders and an island reads again: its heading, an
/// optional line under it, the list (its element's id `list_id`, which the island names) and
/// the live region (`outcome_id`) its forms' answers are said in.
#[component]
pub fn ListCard(
    /// The heading's id, which labels the card.
    heading_id: &'static str,
    title: &'static str,
    list_id: &'static str,
    outcome_id: &'static str,
    /// A line under the heading.
    #[prop(optional)]
    intro: Option<&'static str>,
    /// The list, or what stands for it while it is empty.
    children: Children,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby=heading_id>
            <h2 id=heading_id>{title}</h2>
            {intro.map(|text| view! { <p class="muted">{text}</p> })}
            <div id=list_id>{children()}</div>
            <div id=outcome_id aria-live="polite"></div>
        </section>
    }
}

/// A form of a list, as its submit event found it: where it posts, its fields URL-encoded, and
/// the button that sent it (to show it busy).
pub struct ListSubmit {
    /// Which of the addresses given to [`ListSubmit::take`] the form posts to.
    pub to: usize,
    /// The form's fields, URL-encoded as the browser would post them.
    pub body: String,
    /// The button that sent the form, busy until the answer.
    button: Option<Element>,
}

impl ListSubmit {
    /// Takes over a form's submission if it posts to one of `actions` (server functions'
    /// addresses) and nothing else took it already; any other form posts as it would without
    /// the island. The button that sent it says it is busy (its `data-busy` text, disabled)
    /// until [`ListSubmit::done`].
    pub fn take(ev: &SubmitEvent, actions: &[&str]) -> Option<ListSubmit> {
        if ev.default_prevented() {
            return None;
        }
        let form: Element = ev.target()?.dyn_into().ok()?;
        let action = form.get_attribute("action")?;
        let to = actions.iter().position(|a| *a == action)?;
        let body = super::server_form::form_body(ev)?;
        ev.prevent_default();
        let button: Option<Element> = ev.submitter().map(Into::into);
        if let Some(button) = &button {
            busy(button, true);
        }
        Some(ListSubmit { to, body, button })
    }

    /// Gives the button back (it may be gone: a list read again has new ones).
    pub fn done(self) {
        if let Some(button) = &self.button {
            busy(button, false);
        }
    }
}

/// A button busy with its form's send, or back as it was.
fn busy(button: &Element, on: bool) {
    let text = if on {
        let idle = button.text_content().unwrap_or_default();
        let _ = button.set_attribute("data-idle", &idle);
        let _ = button.set_attribute("disabled", "");
        let _ = button.set_attribute("aria-busy", "true");
        button.get_attribute("data-busy")
    } else {
        let _ = button.remove_attribute("disabled");
        let _ = button.set_attribute("aria-busy", "false");
        button.get_attribute("data-idle")
    };
    if let Some(text) = text {
        button.set_text_content(Some(&text));
    }
}

/// Shows an answer in the live region `region` (an element's id), as one notice: the
/// sentence on success (announced politely), the error's otherwise (announced at once). The
/// region itself stays, so assistive technology hears the change.
pub fn announce(region: &str, answer: Result<String, AppError>) {
    let (class, role, text) = super::notices::notice(answer);
    let document = document();
    let (Some(region), Ok(notice)) = (
        document.get_element_by_id(region),
        document.create_element("p"),
    ) else {
        return;
    };
    notice.set_class_name(class);
    let _ = notice.set_attribute("role", role);
    notice.set_text_content(Some(&text));
    region.replace_children_with_node_1(&notice);
}

/// The latest of the reads of the page that were started; only its answer is put in place.
static LATEST_READ: AtomicUsize = AtomicUsize::new(0);

/// Reads the page again from the server (through `C`, the server functions' client) and puts
/// the new content of each element named in `lists` (by id) in place of the old. A page that
/// cannot be read leaves the lists as they were: the answer is shown all the same. When reads
/// overlap, only the one started last is put in place, so an older page never overwrites a
/// newer one; a list whose HTML has not changed is left alone (its focus and its islands kept).
pub async fn read_lists_again<C: Client<AppError>>(lists: &[&str]) {
    let ticket = LATEST_READ.fetch_add(1, Ordering::Relaxed) + 1;
    let Ok(html) = page_html::<C>().await else {
        return;
    };
    if LATEST_READ.load(Ordering::Relaxed) != ticket {
        return;
    }
    let document = document();
    // A template's content is inert: nothing in the read page loads or runs.
    let Some(template) = document
        .create_element("template")
        .ok()
        .and_then(|t| t.dyn_into::<HtmlTemplateElement>().ok())
    else {
        return;
    };
    template.set_inner_html(&html);
    let fresh = template.content();
    for id in lists {
        if let (Some(old), Some(new)) =
            (document.get_element_by_id(id), fresh.get_element_by_id(id))
        {
            let html = new.inner_html();
            if old.inner_html() == html {
                continue;
            }
            old.set_inner_html(&html);
            // Islands in the new content (a copy button, say) come alive like the page's.
            let _ = hydrate_islands_in(&old);
        }
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The page loader's hydration of the islands under `root` (app's shell.rs).
    #[wasm_bindgen(catch, js_namespace = window, js_name = tallyHydrate)]
    fn hydrate_islands_in(root: &Element) -> Result<(), wasm_bindgen::JsValue>;
}

/// The current page's HTML as the server renders it now, for the same address (its query
/// too: it can change what the page says).
async fn page_html<C: Client<AppError>>() -> Result<String, AppError> {
    let location = window().location();
    let path = location.pathname().map_err(|_| AppError::Internal)?;
    let query = location.search().map_err(|_| AppError::Internal)?;
    let query = query.strip_prefix('?').unwrap_or(&query);
    let request = C::Request::try_new_get(&path, "text/html", "text/html", query)?;
    let response = C::send(request).await?;
    if response.status() != 200 {
        return Err(AppError::Internal);
    }
    response.try_into_string().await
}
