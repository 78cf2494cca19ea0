//! Building and running the server: the router and the listener.

use crate::backend::TallyBackend;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Store;
use crate::payments::emulator::{Emulator, EmulatorConfig};
use crate::payments::stripe::StripeGateway;
use crate::payments::Payments;
use crate::routing::{RouteBook, RouteEntry};
use crate::site_files::SiteFiles;
pub use crate::state::AppState;
use crate::state::Parts;
use crate::{api, ops, web};
use anyhow::Context;
use app::backend::BackendHandle;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use tokio::net::TcpListener;

/// A bound, ready-to-run server. Binding happens in [`Application::build`], so the port is
/// known (port 0 picks a free one, as the tests do) before serving starts.
pub struct Application {
    listener: TcpListener,
    router: Router,
    payments: Payments,
}

impl Application {
    /// Connects the store (it must be migrated already), binds the listener and builds the
    /// router.
    pub async fn build(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.site_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.site_addr))?;
        let local = listener
            .local_addr()
            .context("cannot read the listening address")?;
        drop_stale_precompressed(std::path::Path::new(&config.site_root));
        let site_files =
            SiteFiles::find(&config.hash_file, std::path::Path::new(&config.site_root));
        let leptos_options = LeptosOptions::builder()
            .output_name(crate::site_files::OUTPUT_NAME)
            .site_root(config.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(local)
            .reload_port(3001)
            .build();
        let batcher =
            crate::ledger::ChargeBatcher::new(store.clone(), clock.clone(), config.gate_shards);
        // The server calls itself (the emulator, the emulator's events) on loopback.
        let loopback = if local.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], local.port()))
        } else {
            local
        };
        let (payments, emulator) = payments_for(&config, &store, &clock, loopback).await?;
        let config_sign_ins = config.sign_in_concurrency;
        let api_keys = crate::accounts::ApiKeyCache::default();
        api_keys.write_uses(store.clone(), clock.clone());
        if store.backend() == crate::db::Backend::Postgres {
            api_keys.listen_for_revocations(config.database_url.clone());
        }
        let state = AppState::new(Parts {
            leptos_options,
            store,
            clock,
            config: Arc::new(config),
            batcher,
            api_keys,
            payments,
            emulator,
            sign_ins: Arc::new(tokio::sync::Semaphore::new(config_sign_ins)),
            site_files: Arc::new(site_files),
        });
        let payments = state.payments.clone();
        Ok(Application {
            listener,
            router: router(state),
            payments,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Buying credits, for the background jobs.
    pub fn payments(&self) -> Payments {
        self.payments.clone()
    }

    /// Serves until Ctrl-C or SIGTERM, finishing requests in flight.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
    }
}

/// The routes outside the Leptos app: browser form routes, the API, Stripe's webhooks, the
/// test-mode emulator and the operations endpoints.
fn route_book(emulator: Option<Arc<Emulator>>) -> RouteBook<AppState> {
    RouteBook::new()
        .merge(web::routes())
        .merge(crate::openapi::routes())
        .merge(api::routes())
        .merge(crate::payments::stripe::webhook::routes())
        .nest_with_state("/_stripe", crate::payments::emulator::routes(), emulator)
        .merge(ops::routes())
}

/// The app's pages, listed once per process.
///
/// Listing them renders the app with resource loading switched off by a flag that
/// leptos_server keeps for the whole process: a page whose resource is first polled while
/// another thread lists the pages waits forever. Listing once, before any router exists,
/// means no page can be rendering then, even when several servers share a process (as the
/// tests' servers do).
static PAGES: LazyLock<Vec<AxumRouteListing>> = LazyLock::new(|| generate_route_list(app::App));

/// Every route the server answers: the Leptos pages and server functions, and
/// [`route_book`]'s. The authorisation matrix test holds each one against its entry.
pub fn route_list() -> Vec<RouteEntry> {
    let mut list: Vec<RouteEntry> = PAGES
        .iter()
        .flat_map(|page| {
            page.methods().map(|method| RouteEntry {
                // leptos_router's Method, named here by its Debug form.
                method: match format!("{method:?}").as_str() {
                    "Post" => "POST",
                    "Put" => "PUT",
                    "Patch" => "PATCH",
                    "Delete" => "DELETE",
                    _ => "GET",
                },
                path: page.path().to_owned(),
            })
        })
        .collect();
    list.extend(
        leptos::server_fn::axum::server_fn_paths().map(|(path, method)| RouteEntry {
            method: if method == axum::http::Method::GET {
                "GET"
            } else {
                "POST"
            },
            path: path.to_owned(),
        }),
    );
    list.extend(route_book(None).entries().iter().cloned());
    list.sort();
    list.dedup();
    list
}

/// The whole router: pages and server functions (Leptos), browser form routes, the API,
/// operations endpoints, and static files.
pub fn router(state: AppState) -> Router {
    let backend = BackendHandle(Arc::new(TallyBackend {
        store: state.store.clone(),
        clock: state.clock.clone(),
        studio_work: state.config.studio_work,
        payments: state.payments.clone(),
        public_url: state.config.public_url.clone(),
        outbound_policy: state.config.outbound.policy,
        api_key_cache: state.api_keys.clone(),
    }));
    let routes = PAGES.clone();
    let options = state.leptos_options.clone();
    // The bundle's names, read once at start, for every page's tags.
    let bundle = state.site_files.bundle.clone();
    let error_bundle = bundle.clone();
    Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(backend.clone());
                provide_context(bundle.clone());
                leptos::nonce::provide_nonce();
            },
            move || app::shell(options.clone()),
        )
        .merge(route_book(state.emulator.clone()).into_router())
        // Static files first, and the app's 404 page for anything else. (Leptos's own file
        // handler would do both, but it can hand a page's response headers, its
        // Content-Security-Policy among them, to a file served at the same moment.)
        .fallback_service(
            tower_http::services::ServeDir::new(&state.config.site_root)
                .precompressed_br()
                .precompressed_gzip()
                .not_found_service(axum::handler::Handler::with_state(
                    leptos_axum::file_and_error_handler_with_context::<AppState, _>(
                        move || provide_context(error_bundle.clone()),
                        app::shell,
                    ),
                    state.clone(),
                )),
        )
        // A form posted from one of the site's pages without its script, and refused, comes
        // back to that page with the reason (inside the guards, so a cross-site post with a
        // session never gets here; the layer itself checks where a post came from).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::carry_refusal,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::page_guard,
        ))
        // A cross-site request is refused before anything reads it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::same_origin_guard,
        ))
        // Outside the guards, so every answer carries them, refusals included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::headers::security_headers,
        ))
        .layer(web::headers::compression())
        .with_state(state)
}

/// Removes compressed copies (`x.wasm.br`, `x.css.gz`) older than the file they compress:
/// a build after the last `.ci/precompress.mjs` would otherwise have browsers served the old
/// bundle beside a new page. What cannot be read or removed is logged and left.
fn drop_stale_precompressed(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            drop_stale_precompressed(&path);
            continue;
        }
        let is_copy = matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz"));
        let original = path.with_extension("");
        if !is_copy || !original.is_file() {
            continue;
        }
        let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified());
        if let (Ok(copy), Ok(source)) = (modified(&path), modified(&original)) {
            if copy < source {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(file = %path.display(), "removed a stale compressed copy")
                    }
                    Err(err) => {
                        tracing::warn!(file = %path.display(), error = %err, "a stale compressed copy could not be removed")
                    }
                }
            }
        }
    }
}

/// The payment gateway: Stripe when a secret key is configured, otherwise the embedded
/// test-mode emulator, reached by the same async-stripe gateway over loopback.
async fn payments_for(
    config: &Config,
    store: &Store,
    clock: &Arc<dyn Clock>,
    loopback: SocketAddr,
) -> anyhow::Result<(Payments, Option<Arc<Emulator>>)> {
    if let Some(key) = &config.stripe_secret_key {
        let secret = config.stripe_webhook_secret.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY (the signing secret of the webhook endpoint)"
            )
        })?;
        let gateway = StripeGateway::new(key, config.stripe_api_base.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let payments = Payments::new(store.clone(), clock.clone(), Arc::new(gateway), &secret);
        return Ok((payments.with_storefront(config.storefront.clone()), None));
    }
    let secrets = Emulator::secrets(store).await?;
    let secret = config
        .stripe_webhook_secret
        .clone()
        .unwrap_or(secrets.webhook_secret);
    let gateway = StripeGateway::new(
        &secrets.api_key,
        Some(&format!("http://{loopback}/_stripe/")),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let emulator = Emulator::new(
        store.clone(),
        clock.clone(),
        EmulatorConfig {
            public_base: config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{loopback}")),
            site_url: config.public_url.clone(),
            webhook_url: format!("http://{loopback}/webhooks/stripe"),
            webhook_secret: secret.clone(),
            api_key: secrets.api_key,
            delivery_delay: config.emulator_event_delay,
        },
    );
    tracing::warn!("payments are simulated: no STRIPE_SECRET_KEY is set, so Tally's test-mode Stripe emulator takes them and no money moves");
    let payments = Payments::new(store.clone(), clock.clone(), Arc::new(gateway), &secret);
    Ok((
        payments.with_storefront(config.storefront.clone()),
        Some(Arc::new(emulator)),
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
