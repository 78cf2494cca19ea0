//! What every request handler can reach: the one value the router carries.
//!
//! A leaf of the house: it names the server's parts and imports none of the modules that
//! handle requests, so each of them can take it without a circle.

use crate::accounts::ApiKeyCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Store;
use crate::ledger::ChargeBatcher;
use crate::payments::emulator::Emulator;
use crate::payments::Payments;
use crate::site_files::SiteFiles;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// What every handler can reach: a handle on the server's [`Parts`], so that cloning it is one
/// reference count. axum clones the state for each extractor and layer of every request; a
/// clone of the parts themselves (some twenty shared pointers and the site's options) took
/// about a tenth of the server's time under the gate's load.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// The server's parts, shared by every request through [`AppState`].
#[derive(Debug)]
pub struct Parts {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// Group commit for concurrent charges.
    pub batcher: ChargeBatcher,
    /// Recently used API keys, so that the gate does not look each one up per request.
    pub api_keys: ApiKeyCache,
    /// Buying credits through the payment gateway.
    pub payments: Payments,
    /// The embedded Stripe test-mode emulator, when no Stripe key is configured.
    pub emulator: Option<Arc<Emulator>>,
    /// Password verifications allowed at once.
    pub sign_ins: Arc<tokio::sync::Semaphore>,
    /// The browser bundle's file names, hashed when the build hashed them.
    pub site_files: Arc<SiteFiles>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
