use crate::pages::{
    ApiKeysPage, BillingPage, BudgetsPage, HistoryPage, LoginPage, NotFound, NotificationsPage,
    PurchasePage, RatesPage, StudioPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The bundle's base name (`output-name` in Cargo.toml): `tally.js`, `tally.wasm`,
/// `tally.css`, or with a content hash between (`tally.<hash>.wasm`).
pub const OUTPUT_NAME: &str = "tally";

/// The browser bundle's file names under `/pkg/`, as the build named them (after their
/// contents, so browsers may keep them for good), with the page's loader script for them.
/// The server reads the names once at start and provides them to every render (a clone is
/// a few reference counts); without them the plain names are used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFiles {
    js: std::sync::Arc<str>,
    wasm: std::sync::Arc<str>,
    css: std::sync::Arc<str>,
    /// The loader's text, written once with the names (see [`BundleLoader`]).
    loader: std::sync::Arc<str>,
    /// The stylesheet's text, when the server read it at start: pages then carry it inline
    /// (see [`Stylesheet`]).
    style: Option<std::sync::Arc<str>>,
}

impl BundleFiles {
    /// The bundle named `js`, `wasm` and `css` under `/pkg/`.
    pub fn new(js: &str, wasm: &str, css: &str) -> BundleFiles {
        BundleFiles {
            js: js.into(),
            wasm: wasm.into(),
            css: css.into(),
            loader: loader_script(js, wasm).into(),
            style: None,
        }
    }

    /// The same bundle, its stylesheet's text `css` carried inline by every page.
    pub fn with_style(mut self, css: &str) -> BundleFiles {
        self.style = Some(css.into());
        self
    }

    /// The stylesheet's text, when pages carry it inline.
    pub fn style(&self) -> Option<&str> {
        self.style.as_deref()
    }

    /// The names without content hashes.
    pub fn plain() -> BundleFiles {
        BundleFiles::new(
            &format!("{OUTPUT_NAME}.js"),
            &format!("{OUTPUT_NAME}.wasm"),
            &format!("{OUTPUT_NAME}.css"),
        )
    }

    /// The script's file name.
    pub fn js(&self) -> &str {
        &self.js
    }

    /// The wasm's file name.
    pub fn wasm(&self) -> &str {
        &self.wasm
    }

    /// The stylesheet's file name.
    pub fn css(&self) -> &str {
        &self.css
    }
}

impl Default for BundleFiles {
    fn default() -> Self {
        BundleFiles::plain()
    }
}

/// The HTML document around the app, rendered on the server. Its Content-Security-Policy
/// allows scripts from the site and the page's own nonce only (on the one inline script,
/// the bundle's loader), WebAssembly, and styles from the site or with the nonce (the inline
/// stylesheet).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    let bundle = use_context::<BundleFiles>().unwrap_or_default();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <meta
                    name="description"
                    content="Your workspace's prepaid AI credits: balance, usage, purchases and Auto-reload."
                />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <Stylesheet bundle=bundle.clone()/>
                <BundleLoader bundle/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The site's stylesheet: inline when the server has its text, so that a first visit paints
/// after the page alone instead of waiting one more round trip for the stylesheet (the page's
/// nonce lets it past the Content-Security-Policy); otherwise a link to the file.
#[component]
fn Stylesheet(bundle: BundleFiles) -> impl IntoView {
    use leptos::either::Either;
    match bundle.style.clone() {
        // The build's own stylesheet, as it is: a `<style>` element's content is not HTML.
        Some(css) => {
            Either::Left(view! { <style nonce=leptos::nonce::use_nonce() inner_html=css></style> })
        }
        None => Either::Right(
            view! { <link rel="stylesheet" id="leptos" href=format!("/pkg/{}", bundle.css())/> },
        ),
    }
}

/// Loads the bundle and hydrates the page's islands once the server's HTML is on screen.
///
/// Nothing asks for the script or the wasm before the first frame is painted: the page is
/// whole without them, so they must not compete with the HTML and the stylesheet for the
/// first paint (Lighthouse counts every request started before the largest paint toward it;
/// docs/BENCHMARKS.md weighs this against a preload). Then both are asked for at once, and
/// each `<leptos-island>` is handed to the bundle's function named in its `data-component`,
/// in document order; an island inside another's children first lets the outer one claim
/// them.
#[component]
fn BundleLoader(bundle: BundleFiles) -> impl IntoView {
    // In islands mode only the islands hydrate: the rest of the page is rendered without
    // hydration markers.
    if let Some(context) = Owner::current_shared_context() {
        context.set_is_hydrating(false);
    }
    view! { <script type="module" nonce=leptos::nonce::use_nonce()>{bundle.loader.clone()}</script> }
}

/// The loader's text for the bundle's script `js` and wasm `wasm` (see [`BundleLoader`]).
fn loader_script(js: &str, wasm: &str) -> String {
    format!(
        r#"const load = async () => {{
  const wasm = fetch("/pkg/{wasm}");
  const bundle = await import("/pkg/{js}");
  await bundle.default({{ module_or_path: wasm }});
  bundle.hydrate();
  const hydrateIn = (root) => {{
    for (const island of root.querySelectorAll("leptos-island")) {{
      const hydrate = bundle[island.dataset.component];
      if (!hydrate) {{ console.warn("no island function", island.dataset.component); continue; }}
      island.parentElement?.closest("leptos-children")?.$$on_hydrate?.();
      hydrate(island);
    }}
  }};
  // Islands in a part of the page read again from the server hydrate through this.
  window.tallyHydrate = hydrateIn;
  hydrateIn(document);
}};
requestAnimationFrame(() => setTimeout(load, 0));"#
    )
}

#[cfg(feature = "ssr")]
fn content_security_policy() {
    let (Some(response), Some(nonce)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        leptos::nonce::use_nonce(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The reason a form posted without the page's script was refused, said once at the top of
/// the page it came back to (the server's `web::refusal` hands it over).
#[component]
fn RefusedNotice() -> impl IntoView {
    // Only the server renders it: the shell is not hydrated, and the reason is the request's.
    #[cfg(feature = "ssr")]
    let reason = use_context::<http::request::Parts>().and_then(|parts| {
        parts
            .extensions
            .get::<crate::request::RefusedChange>()
            .map(|refused| refused.0.clone())
    });
    #[cfg(not(feature = "ssr"))]
    let reason: Option<String> = None;
    reason.map(|reason| {
        view! {
            <p class="notice notice-error refused-change" role="alert">
                {format!("That change was not made. {reason}")}
            </p>
        }
    })
}

/// The application: its routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Title formatter=|text: String| if text.is_empty() { "Tally".to_owned() } else { format!("{text} · Tally") }/>
        // `data-hydrated` turns "true" once the browser has hydrated the page's islands
        // (frontend/src/lib.rs), so tests and styles can tell.
        <div id="app" data-hydrated="false">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <RefusedNotice/>
            <Router>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=|| view! { <Redirect path="/billing"/> }/>
                    <Route path=path!("/login") view=LoginPage/>
                    <Route path=path!("/billing") view=BillingPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/history") view=HistoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/rates") view=RatesPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/purchases/:id") view=PurchasePage ssr=SsrMode::Async/>
                    <Route path=path!("/studio") view=StudioPage ssr=SsrMode::Async/>
                    <Route path=path!("/notifications") view=NotificationsPage ssr=SsrMode::Async/>
                    <Route path=path!("/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/budgets") view=BudgetsPage ssr=SsrMode::Async/>
                </Routes>
            </Router>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_is_written_once_with_the_bundle_it_names() {
        let bundle = BundleFiles::new("tally.J1.js", "tally.W2.wasm", "tally.C3.css");
        assert!(bundle.loader.contains(r#"fetch("/pkg/tally.W2.wasm")"#));
        assert!(bundle.loader.contains(r#"import("/pkg/tally.J1.js")"#));
        // A render's copy shares the text instead of writing it again.
        let copy = bundle.clone();
        assert!(std::sync::Arc::ptr_eq(&bundle.loader, &copy.loader));
        assert_eq!(BundleFiles::default().css(), "tally.css");
        assert_eq!(BundleFiles::default().style(), None);
        let styled = bundle.with_style("a > b { color: red }");
        assert_eq!(styled.style(), Some("a > b { color: red }"));
    }
}
