//! Building and running the server: the router, its state, and the listener.

use crate::clock::Clock;
use crate::config::Config;
use crate::services::TallyServices;
use crate::store::Store;
use crate::{api, ops, web};
use app::services::ServicesHandle;
use axum::extract::FromRef;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// Group commit for concurrent charges of one workspace.
    pub batcher: crate::ledger::ChargeBatcher,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// A bound, ready-to-run server. Binding happens in [`Application::build`], so the port is
/// known (port 0 picks a free one, as the tests do) before serving starts.
pub struct Application {
    listener: TcpListener,
    router: Router,
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
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.site_addr))?;
        let local = listener.local_addr()?;
        let leptos_options = LeptosOptions::builder()
            .output_name("tally")
            .site_root(config.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(local)
            .reload_port(3001)
            .build();
        let batcher = crate::ledger::ChargeBatcher::new(store.clone(), clock.clone());
        let state = AppState {
            leptos_options,
            store,
            clock,
            config: Arc::new(config),
            batcher,
        };
        Ok(Application {
            listener,
            router: router(state),
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

/// The whole router: pages and server functions (Leptos), browser form routes, the API,
/// operations endpoints, and static files.
pub fn router(state: AppState) -> Router {
    let services = ServicesHandle(Arc::new(TallyServices {
        store: state.store.clone(),
        clock: state.clock.clone(),
        studio_work: state.config.studio_work,
    }));
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(services.clone()),
            move || app::shell(options.clone()),
        )
        .merge(web::routes())
        .merge(api::routes())
        .merge(ops::routes())
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::page_guard,
        ))
        .with_state(state)
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
