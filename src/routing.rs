//! A router that keeps the list of its own routes.
//!
//! Every route module builds its routes through a [`RouteBook`], which registers each handler
//! with axum and writes down its method and path. [`crate::startup::route_list`] gathers them
//! (with the Leptos pages and server functions), so a test can hold every route the server
//! answers against the authorisation matrix: a route added without an entry fails it.

use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use axum::Router;

/// One route: an HTTP method (`ANY` for a catch-all) and its path pattern.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteEntry {
    pub method: &'static str,
    pub path: String,
}

/// An axum router and the list of what it routes.
pub struct RouteBook<S> {
    router: Router<S>,
    entries: Vec<RouteEntry>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteBook<S> {
    fn default() -> Self {
        RouteBook {
            router: Router::new(),
            entries: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> RouteBook<S> {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, method: &'static str, path: &'static str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self.entries.push(RouteEntry {
            method,
            path: path.to_owned(),
        });
        self
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add("GET", path, routing::get(handler))
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add("POST", path, routing::post(handler))
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add("DELETE", path, routing::delete(handler))
    }

    /// Every method (a catch-all answer such as the API's JSON 404).
    pub fn any<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add("ANY", path, routing::any(handler))
    }

    /// What a route answers to a method it does not take (axum's default is an empty 405).
    pub fn method_not_allowed<H: Handler<T, S>, T: 'static>(mut self, handler: H) -> Self {
        self.router = self.router.method_not_allowed_fallback(handler);
        self
    }

    /// The routes of `other` as well.
    pub fn merge(mut self, other: RouteBook<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.entries.extend(other.entries);
        self
    }

    /// The routes of `other`, which carry a state of their own, under `prefix`.
    pub fn nest_with_state<T: Clone + Send + Sync + 'static>(
        mut self,
        prefix: &'static str,
        other: RouteBook<T>,
        state: T,
    ) -> Self {
        self.entries
            .extend(other.entries.iter().map(|e| RouteEntry {
                method: e.method,
                path: format!("{prefix}{}", e.path),
            }));
        self.router = self.router.nest(prefix, other.router.with_state(state));
        self
    }

    /// Limits the request bodies of the routes so far to `bytes`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.router = self
            .router
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// The routes written down so far.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}
