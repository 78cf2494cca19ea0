//! The authorisation matrix: every route the server answers, taken from its own route list
//! (pages, server functions, the API, forms, webhooks, the emulator, operations), called by
//! every kind of caller, from another site, and with another workspace's ids, against the
//! status it must answer. A route without an entry here fails the test, so a new route
//! cannot ship without its rules being written down.

use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::{open_team_checkout, with_packs};
use crate::support::TestApp;
use app::domain::{Credits, PurchaseOrigin};
use serde_json::{json, Value};
use tally::payments::NewPurchase;
use tally::routing::RouteEntry;

const OPERATOR_TOKEN: &str = "operator-token-for-the-matrix-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// A browser with no session.
    Anonymous,
    /// A made-up workspace API key.
    Outsider,
    /// Acme's API key (the product's server).
    Key,
    /// The operator token.
    Operator,
    Guest,
    Member,
    BillingAdmin,
    Admin,
    Owner,
}
use Caller::*;

const CALLERS: [Caller; 9] = [
    Anonymous,
    Outsider,
    Key,
    Operator,
    Guest,
    Member,
    BillingAdmin,
    Admin,
    Owner,
];

impl Caller {
    fn signed_in(self) -> bool {
        matches!(self, Guest | Member | BillingAdmin | Admin | Owner)
    }

    fn manages_billing(self) -> bool {
        matches!(self, BillingAdmin | Admin | Owner)
    }
}

/// What a caller without a session gets from an API route: 401 for all of them, but Acme's
/// key gets `key`.
fn api(c: Caller, key: u16, session: impl Fn(Caller) -> u16) -> u16 {
    match c {
        Anonymous | Outsider | Operator => 401,
        Key => key,
        person => session(person),
    }
}

/// Server functions read the session only.
fn server_fn(c: Caller, session: impl Fn(Caller) -> u16) -> u16 {
    if c.signed_in() {
        session(c)
    } else {
        401
    }
}

/// Pages send people without a session to sign in.
fn page(c: Caller, session: impl Fn(Caller) -> u16) -> u16 {
    if c.signed_in() {
        session(c)
    } else {
        303
    }
}

fn managers(c: Caller, ok: u16) -> u16 {
    if c.manages_billing() {
        ok
    } else {
        403
    }
}

fn readers(c: Caller, ok: u16) -> u16 {
    if c == Guest {
        403
    } else {
        ok
    }
}

fn spenders(c: Caller, ok: u16) -> u16 {
    if matches!(c, Guest | BillingAdmin) {
        403
    } else {
        ok
    }
}

#[derive(Clone, Debug)]
enum Body {
    None,
    /// JSON; an `idempotency_key` in it is made new for every call.
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

#[derive(Clone, Debug)]
struct Probe {
    method: &'static str,
    path: String,
    body: Body,
}

fn probe(method: &'static str, path: impl Into<String>, body: Body) -> Probe {
    Probe {
        method,
        path: path.into(),
        body,
    }
}

struct Entry {
    probe: Probe,
    expect: Box<dyn Fn(Caller) -> u16>,
    /// The same route with another workspace's id, the caller who tries it, and the answer.
    foreign: Option<(Caller, Probe, u16)>,
}

fn entry(probe: Probe, expect: impl Fn(Caller) -> u16 + 'static) -> Entry {
    Entry {
        probe,
        expect: Box::new(expect),
        foreign: None,
    }
}

/// Ids in Acme (the callers' workspace) and in Globex (another workspace).
struct Ids {
    acme: String,
    acme_txn: String,
    acme_rsv: String,
    acme_purchase: String,
    globex: String,
    globex_txn: String,
    globex_rsv: String,
    globex_purchase: String,
    acme_budget: String,
    globex_budget: String,
    acme_pool: String,
    globex_pool: String,
}

fn usage_body() -> Body {
    Body::Json(json!({"idempotency_key": "", "action": "matrix.probe", "credits": 1}))
}

/// A server function's name: its path without Leptos's hash.
fn name_of(path: &str) -> &str {
    match path.strip_prefix("/api/") {
        Some(rest) if !rest.contains('/') => path.trim_end_matches(|c: char| c.is_ascii_digit()),
        _ => path,
    }
}

/// The rules of one route, or `None` when the matrix has no entry for it.
fn rules(route: &RouteEntry, ids: &Ids) -> Option<Entry> {
    let path = route.path.as_str();
    let at = |p: &str| probe(route.method, p.to_owned(), Body::None);
    let form = |pairs: &[(&'static str, &str)]| {
        Body::Form(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    };
    let call = |body: Body| probe("POST", path.to_owned(), body);
    let e = match (route.method, name_of(path)) {
        // Pages.
        // The app's front door: a page that sends the browser on to Billing.
        ("GET", "/") => entry(at("/"), |_| 200),
        ("GET", "/login") => entry(at("/login"), |c| if c.signed_in() { 303 } else { 200 }),
        ("GET", "/billing" | "/billing/history" | "/billing/rates" | "/notifications") => {
            entry(at(path), |c| page(c, |c| readers(c, 200)))
        }
        ("GET", "/studio") => entry(at(path), |c| page(c, |_| 200)),
        ("GET", "/budgets") => entry(at(path), |c| page(c, |c| managers(c, 200))),
        // API keys spend the whole workspace: owners only.
        ("GET", "/api-keys") => entry(at(path), |c| {
            page(c, |c| if c == Owner { 200 } else { 403 })
        }),
        ("GET", "/billing/purchases/{id}") => Entry {
            foreign: Some((
                Owner,
                at(&format!("/billing/purchases/{}", ids.globex_purchase)),
                404,
            )),
            ..entry(
                at(&format!("/billing/purchases/{}", ids.acme_purchase)),
                |c| page(c, |c| managers(c, 200)),
            )
        },
        // Server functions.
        ("POST", "/api/load_billing" | "/api/load_history" | "/api/load_rates")
        | ("POST", "/api/load_notifications" | "/api/load_purchases") => {
            entry(call(Body::Form(Vec::new())), |c| {
                server_fn(c, |c| readers(c, 200))
            })
        }
        ("POST", "/api/load_studio") => {
            entry(call(Body::Form(Vec::new())), |c| server_fn(c, |_| 200))
        }
        ("POST", "/api/run_action") => entry(
            call(form(&[("model", "atlas-text-large"), ("units", "10")])),
            |c| server_fn(c, |c| spenders(c, 200)),
        ),
        ("POST", "/api/ask_admin") => entry(call(Body::Form(Vec::new())), |c| {
            server_fn(c, |c| if c == Member { 200 } else { 403 })
        }),
        ("POST", "/api/start_checkout") => entry(call(form(&[("pack_id", "pack_starter")])), |c| {
            server_fn(c, |c| managers(c, 200))
        }),
        ("POST", "/api/load_purchase" | "/api/abandon_checkout") => Entry {
            foreign: Some((Owner, call(form(&[("id", &ids.globex_purchase)])), 404)),
            ..entry(call(form(&[("id", &ids.acme_purchase)])), |c| {
                server_fn(c, |c| managers(c, 200))
            })
        },
        ("POST", "/api/save_auto_reload") => entry(
            call(form(&[
                ("threshold", "5000"),
                ("target", "20000"),
                ("monthly_cap", "100"),
            ])),
            |c| server_fn(c, |c| managers(c, 200)),
        ),
        // Nothing failed and nothing waits: a billing manager is told so.
        ("POST", "/api/try_again_auto_reload" | "/api/confirm_reload") => {
            entry(call(Body::Form(Vec::new())), |c| {
                server_fn(c, |c| managers(c, 400))
            })
        }
        // The workspace has no Stripe customer yet: no cards, read at once.
        ("POST", "/api/refresh_cards") => entry(call(Body::Form(Vec::new())), |c| {
            server_fn(c, |c| managers(c, 200))
        }),
        ("POST", "/api/load_api_keys") => entry(call(Body::Form(Vec::new())), |c| {
            server_fn(c, |c| if c == Owner { 200 } else { 403 })
        }),
        ("POST", "/api/create_api_key") => entry(call(form(&[("name", "Matrix")])), |c| {
            server_fn(c, |c| if c == Owner { 200 } else { 403 })
        }),
        // A key id that is not this workspace's is unknown here.
        ("POST", "/api/revoke_api_key") => {
            entry(call(form(&[("id", "key_notthisworkspaces")])), |c| {
                server_fn(c, |c| if c == Owner { 404 } else { 403 })
            })
        }
        // Budgets: billing managers. A new budget for nobody of the workspace is refused after
        // the caller is let in; another workspace's budget is unknown here.
        ("POST", "/api/load_budgets") => entry(call(Body::Form(Vec::new())), |c| {
            server_fn(c, |c| managers(c, 200))
        }),
        ("POST", "/api/add_budget") => entry(
            call(form(&[
                ("scope", "member"),
                ("target", "nobody@acme.test"),
                ("period", "day"),
                ("limit", "5"),
                ("enforcement", "hard"),
            ])),
            |c| server_fn(c, |c| managers(c, 400)),
        ),
        ("POST", "/api/change_budget") => Entry {
            foreign: Some((
                Owner,
                call(form(&[
                    ("id", &ids.globex_budget),
                    ("limit", "5"),
                    ("enforcement", "hard"),
                ])),
                404,
            )),
            ..entry(
                call(form(&[
                    ("id", &ids.acme_budget),
                    ("limit", "450"),
                    ("enforcement", "soft"),
                ])),
                |c| server_fn(c, |c| managers(c, 200)),
            )
        },
        ("POST", "/api/remove_budget") => Entry {
            foreign: Some((Owner, call(form(&[("id", &ids.globex_budget)])), 404)),
            ..entry(call(form(&[("id", "bud_notthisworkspaces")])), |c| {
                server_fn(c, |c| managers(c, 404))
            })
        },
        // Pools on the Budgets page: billing managers. A pool for nothing a pool can be for
        // is refused after the caller is let in; another workspace's pool is unknown here.
        ("POST", "/api/add_pool") => entry(
            call(form(&[
                ("scope", "member"),
                ("target", "member@acme.test"),
                ("credits", "5"),
            ])),
            |c| server_fn(c, |c| managers(c, 400)),
        ),
        ("POST", "/api/change_pool") => Entry {
            foreign: Some((
                Owner,
                call(form(&[("id", &ids.globex_pool), ("credits", "5")])),
                404,
            )),
            ..entry(
                call(form(&[("id", &ids.acme_pool), ("credits", "5")])),
                |c| server_fn(c, |c| managers(c, 200)),
            )
        },
        ("POST", "/api/remove_pool") => Entry {
            foreign: Some((Owner, call(form(&[("id", &ids.globex_pool)])), 404)),
            ..entry(call(form(&[("id", "pool_notthisworkspaces")])), |c| {
                server_fn(c, |c| managers(c, 404))
            })
        },
        ("POST", "/api/save_endpoint") => entry(call(form(&[("remove", "1")])), |c| {
            server_fn(c, |c| managers(c, 200))
        }),
        // The API.
        ("GET", "/api/billing/credits" | "/billing/history.csv") => {
            entry(at(path), |c| api(c, 200, |c| readers(c, 200)))
        }
        ("POST", "/api/v1/usage") => {
            entry(call(usage_body()), |c| api(c, 200, |c| spenders(c, 200)))
        }
        ("POST", "/api/v1/usage/reservations") => {
            entry(call(usage_body()), |c| api(c, 201, |c| spenders(c, 201)))
        }
        ("POST", "/api/v1/usage/{transaction_id}/refund") => Entry {
            foreign: Some((
                Key,
                probe(
                    "POST",
                    format!("/api/v1/usage/{}/refund", ids.globex_txn),
                    Body::Json(json!({})),
                ),
                404,
            )),
            ..entry(
                probe(
                    "POST",
                    format!("/api/v1/usage/{}/refund", ids.acme_txn),
                    Body::Json(json!({})),
                ),
                |c| api(c, 200, |_| 403),
            )
        },
        (
            "POST",
            "/api/v1/usage/reservations/{id}/settle" | "/api/v1/usage/reservations/{id}/release",
        ) => {
            let action = path.rsplit('/').next().unwrap_or_default();
            let body = Body::Json(if action == "settle" {
                json!({"credits": 1})
            } else {
                json!({})
            });
            Entry {
                foreign: Some((
                    Key,
                    probe(
                        "POST",
                        format!("/api/v1/usage/reservations/{}/{action}", ids.globex_rsv),
                        body.clone(),
                    ),
                    404,
                )),
                ..entry(
                    probe(
                        "POST",
                        format!("/api/v1/usage/reservations/{}/{action}", ids.acme_rsv),
                        body,
                    ),
                    |c| api(c, 200, |_| 403),
                )
            }
        }
        // Budgets: the product's server and billing managers. A new budget for nobody of the
        // workspace is refused after the caller is let in; a budget id from elsewhere is
        // unknown here.
        ("GET", "/api/v1/budgets") => entry(at(path), |c| api(c, 200, |c| managers(c, 200))),
        ("POST", "/api/v1/budgets") => entry(
            call(Body::Json(
                json!({"scope": "member", "target": "nobody@acme.test",
                                   "period": "day", "limit": 5}),
            )),
            |c| api(c, 400, |c| managers(c, 400)),
        ),
        ("GET" | "POST" | "DELETE", "/api/v1/budgets/{budget_id}") => {
            let method = route.method;
            let body = |m: &str| {
                if m == "POST" {
                    Body::Json(json!({"limit": 400}))
                } else {
                    Body::None
                }
            };
            // Removing Acme's budget would change what later callers see: a removal is
            // probed with an id that is nobody's.
            let own = if method == "DELETE" {
                "bud_notthisworkspaces".to_owned()
            } else {
                ids.acme_budget.clone()
            };
            let ok = if method == "DELETE" { 404 } else { 200 };
            Entry {
                foreign: Some((
                    Key,
                    probe(
                        method,
                        format!("/api/v1/budgets/{}", ids.globex_budget),
                        body(method),
                    ),
                    404,
                )),
                ..entry(
                    probe(method, format!("/api/v1/budgets/{own}"), body(method)),
                    move |c| api(c, ok, |c| managers(c, ok)),
                )
            }
        }
        // Pools, likewise; a pool for a key that is not the workspace's is refused once the
        // caller is let in.
        ("GET", "/api/v1/pools") => entry(at(path), |c| api(c, 200, |c| managers(c, 200))),
        ("POST", "/api/v1/pools") => entry(
            call(Body::Json(
                json!({"scope": "api_key", "target": "key_nope", "credits": 5}),
            )),
            |c| api(c, 400, |c| managers(c, 400)),
        ),
        ("POST" | "DELETE", "/api/v1/pools/{pool_id}") => {
            let method = route.method;
            let body = |m: &str| {
                if m == "POST" {
                    Body::Json(json!({"overflow": true}))
                } else {
                    Body::None
                }
            };
            let own = if method == "DELETE" {
                "pool_notthisworkspaces".to_owned()
            } else {
                ids.acme_pool.clone()
            };
            let ok = if method == "DELETE" { 404 } else { 200 };
            Entry {
                foreign: Some((
                    Key,
                    probe(
                        method,
                        format!("/api/v1/pools/{}", ids.globex_pool),
                        body(method),
                    ),
                    404,
                )),
                ..entry(
                    probe(method, format!("/api/v1/pools/{own}"), body(method)),
                    move |c| api(c, ok, |c| managers(c, ok)),
                )
            }
        }
        // The operator's budgets and pools: the operator token alone, on the workspace in the
        // path; an id of another workspace (or an unknown workspace) is a 404 there too.
        (
            "GET",
            "/api/operator/workspaces/{workspace_id}/budgets"
            | "/api/operator/workspaces/{workspace_id}/pools",
        ) => {
            let list = path.rsplit('/').next().unwrap_or_default();
            Entry {
                foreign: Some((
                    Operator,
                    probe(
                        "GET",
                        format!("/api/operator/workspaces/ws_doesnotexist00000000/{list}"),
                        Body::None,
                    ),
                    404,
                )),
                ..entry(
                    probe(
                        "GET",
                        format!("/api/operator/workspaces/{}/{list}", ids.globex),
                        Body::None,
                    ),
                    |c| if c == Operator { 200 } else { 401 },
                )
            }
        }
        ("POST", "/api/operator/workspaces/{workspace_id}/budgets") => entry(
            probe(
                "POST",
                format!("/api/operator/workspaces/{}/budgets", ids.acme),
                Body::Json(json!({"scope": "member", "target": "nobody@acme.test",
                                  "period": "day", "limit": 5})),
            ),
            |c| if c == Operator { 400 } else { 401 },
        ),
        ("POST", "/api/operator/workspaces/{workspace_id}/pools") => entry(
            probe(
                "POST",
                format!("/api/operator/workspaces/{}/pools", ids.acme),
                Body::Json(json!({"scope": "api_key", "target": "key_nope", "credits": 5})),
            ),
            |c| if c == Operator { 400 } else { 401 },
        ),
        (
            "GET" | "POST" | "DELETE",
            "/api/operator/workspaces/{workspace_id}/budgets/{budget_id}"
            | "/api/operator/workspaces/{workspace_id}/pools/{pool_id}",
        ) => {
            let method = route.method;
            let (kind, own, theirs, change) = if path.contains("/budgets/") {
                (
                    "budgets",
                    &ids.acme_budget,
                    &ids.globex_budget,
                    json!({"limit": 400}),
                )
            } else {
                (
                    "pools",
                    &ids.acme_pool,
                    &ids.globex_pool,
                    json!({"overflow": true}),
                )
            };
            let body = if method == "POST" {
                Body::Json(change)
            } else {
                Body::None
            };
            // As above, a removal is probed with an id that is nobody's.
            let (own, ok) = if method == "DELETE" {
                (
                    format!("{}_notthisworkspaces", &own[..own.find('_').unwrap_or(0)]),
                    404,
                )
            } else {
                (own.clone(), 200)
            };
            Entry {
                foreign: Some((
                    Operator,
                    probe(
                        method,
                        format!("/api/operator/workspaces/{}/{kind}/{theirs}", ids.acme),
                        body.clone(),
                    ),
                    404,
                )),
                ..entry(
                    probe(
                        method,
                        format!("/api/operator/workspaces/{}/{kind}/{own}", ids.acme),
                        body,
                    ),
                    move |c| if c == Operator { ok } else { 401 },
                )
            }
        }
        ("POST", "/api/operator/workspaces/{workspace_id}/grants") => {
            let body =
                Body::Json(json!({"kind": "promotional", "credits": 1, "idempotency_key": ""}));
            Entry {
                foreign: Some((
                    Operator,
                    probe(
                        "POST",
                        "/api/operator/workspaces/ws_doesnotexist00000000/grants",
                        body.clone(),
                    ),
                    404,
                )),
                ..entry(
                    probe(
                        "POST",
                        format!("/api/operator/workspaces/{}/grants", ids.globex),
                        body,
                    ),
                    |c| if c == Operator { 201 } else { 401 },
                )
            }
        }
        // API keys: the operator's alone. Creating one, listing them, and revoking a key that
        // is not the workspace's (404: a key id from elsewhere is unknown here).
        ("POST", "/api/operator/workspaces/{workspace_id}/api_keys") => Entry {
            foreign: Some((
                Operator,
                probe(
                    "POST",
                    "/api/operator/workspaces/ws_doesnotexist00000000/api_keys",
                    Body::Json(json!({"name": "Matrix"})),
                ),
                404,
            )),
            ..entry(
                probe(
                    "POST",
                    format!("/api/operator/workspaces/{}/api_keys", ids.globex),
                    Body::Json(json!({"name": "Matrix"})),
                ),
                |c| if c == Operator { 201 } else { 401 },
            )
        },
        ("GET", "/api/operator/workspaces/{workspace_id}/api_keys") => entry(
            probe(
                "GET",
                format!("/api/operator/workspaces/{}/api_keys", ids.globex),
                Body::None,
            ),
            |c| if c == Operator { 200 } else { 401 },
        ),
        ("DELETE", "/api/operator/workspaces/{workspace_id}/api_keys/{key_id}") => entry(
            probe(
                "DELETE",
                format!(
                    "/api/operator/workspaces/{}/api_keys/key_notthisworkspaces",
                    ids.globex
                ),
                Body::None,
            ),
            |c| if c == Operator { 404 } else { 401 },
        ),
        ("POST", "/api/operator/portal_sessions") => {
            let body = |workspace: &str| {
                Body::Json(json!({
                    "workspace_id": workspace,
                    "user": {"email": "matrix@host.test"},
                    "role": "member",
                }))
            };
            Entry {
                foreign: Some((
                    Operator,
                    probe(
                        "POST",
                        "/api/operator/portal_sessions",
                        body("ws_doesnotexist00000000"),
                    ),
                    404,
                )),
                ..entry(
                    probe("POST", "/api/operator/portal_sessions", body(&ids.globex)),
                    |c| if c == Operator { 201 } else { 401 },
                )
            }
        }
        // Provisioning: the operator's alone.
        ("POST", "/api/operator/workspaces") => entry(
            probe(
                "POST",
                "/api/operator/workspaces",
                Body::Json(json!({"name": "Matrix"})),
            ),
            |c| if c == Operator { 201 } else { 401 },
        ),
        ("GET", "/api/operator/workspaces") => {
            entry(probe("GET", "/api/operator/workspaces", Body::None), |c| {
                if c == Operator {
                    200
                } else {
                    401
                }
            })
        }
        ("GET" | "POST", "/api/operator/workspaces/{workspace_id}") => {
            let body = if route.method == "POST" {
                Body::Json(json!({}))
            } else {
                Body::None
            };
            Entry {
                foreign: Some((
                    Operator,
                    probe(
                        route.method,
                        "/api/operator/workspaces/ws_doesnotexist00000000",
                        body.clone(),
                    ),
                    404,
                )),
                ..entry(
                    probe(
                        route.method,
                        format!("/api/operator/workspaces/{}", ids.globex),
                        body,
                    ),
                    |c| if c == Operator { 200 } else { 401 },
                )
            }
        }
        ("POST", "/api/operator/workspaces/{workspace_id}/members") => entry(
            probe(
                "POST",
                format!("/api/operator/workspaces/{}/members", ids.globex),
                Body::Json(json!({"email": "matrix@host.test", "role": "guest"})),
            ),
            |c| if c == Operator { 200 } else { 401 },
        ),
        ("GET", "/api/operator/workspaces/{workspace_id}/members") => entry(
            probe(
                "GET",
                format!("/api/operator/workspaces/{}/members", ids.globex),
                Body::None,
            ),
            |c| if c == Operator { 200 } else { 401 },
        ),
        ("DELETE", "/api/operator/workspaces/{workspace_id}/members/{user_id}") => entry(
            probe(
                "DELETE",
                format!(
                    "/api/operator/workspaces/{}/members/usr_notamember",
                    ids.globex
                ),
                Body::None,
            ),
            |c| if c == Operator { 404 } else { 401 },
        ),
        // A link nobody issued signs nobody in.
        ("GET", "/portal/{token}") => entry(at("/portal/ptl_neverissued"), |_| 404),
        ("ANY", "/api/{*rest}") => entry(probe("POST", "/api/nothing/here", Body::None), |_| 404),
        // Forms outside the app.
        ("POST", "/login") => entry(
            call(form(&[
                ("email", "nobody@acme.test"),
                ("password", "wrong"),
            ])),
            |_| 303,
        ),
        ("POST", "/logout") => entry(call(Body::None), |_| 303),
        ("POST", "/session/workspace") => Entry {
            foreign: Some((Member, call(form(&[("workspace_id", &ids.globex)])), 404)),
            ..entry(call(form(&[("workspace_id", &ids.acme)])), |_| 303)
        },
        // Stripe's side: signed events only, and the emulator's API for its own key only.
        ("POST", "/webhooks/stripe") => entry(call(Body::Json(json!({"id": "evt_x"}))), |_| 400),
        (_, p) if p.starts_with("/_stripe/v1/") => {
            let body = if route.method == "GET" {
                Body::None
            } else {
                Body::Form(Vec::new())
            };
            entry(
                probe(route.method, p.replace("{id}", "cus_x"), body),
                |_| 401,
            )
        }
        ("GET", "/_stripe/checkout/{id}") => {
            entry(at("/_stripe/checkout/cs_test_unknown"), |_| 404)
        }
        ("POST", "/_stripe/checkout/{id}") => entry(
            probe(
                "POST",
                "/_stripe/checkout/cs_test_unknown",
                Body::Form(vec![("card_number", "4242424242424242".into())]),
            ),
            |_| 404,
        ),
        ("GET", "/_stripe/receipts/{id}") => entry(at("/_stripe/receipts/ch_unknown"), |_| 404),
        // Operations.
        ("GET", "/healthz" | "/readyz" | "/metrics") => entry(at(path), |_| 200),
        // The API's description is public, like any API's reference.
        ("GET", "/api/openapi.json" | "/api/docs") => entry(at(path), |_| 200),
        _ => return None,
    };
    Some(e)
}

struct Callers {
    f: Fixture,
    clients: Vec<(Caller, reqwest::Client)>,
}

impl Callers {
    fn client(&self, caller: Caller) -> &reqwest::Client {
        &self.clients.iter().find(|(c, _)| *c == caller).unwrap().1
    }

    async fn send(&self, caller: Caller, probe: &Probe, origin: Option<&str>) -> u16 {
        let app = &self.f.app;
        let method = reqwest::Method::from_bytes(probe.method.as_bytes()).unwrap();
        let mut request = self.client(caller).request(method, app.url(&probe.path));
        request = match caller {
            Outsider => request.bearer_auth("tly_madeupkey0000000000000000000000000000"),
            Key => request.bearer_auth(&self.f.acme_key),
            Operator => request.bearer_auth(OPERATOR_TOKEN),
            _ => request,
        };
        if let Some(origin) = origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        request = match &probe.body {
            Body::None => request,
            Body::Json(body) => {
                let mut body = body.clone();
                if body.get("idempotency_key").is_some() {
                    body["idempotency_key"] = json!(tally::db::new_id("k"));
                }
                request.json(&body)
            }
            Body::Form(pairs) => request.form(pairs),
        };
        request.send().await.unwrap().status().as_u16()
    }
}

async fn callers() -> (Callers, Ids) {
    let app = TestApp::spawn_with(|c| {
        c.operator_token = Some(OPERATOR_TOKEN.into());
        c.studio_work = std::time::Duration::ZERO;
    })
    .await;
    let f = Fixture::with_app(app).await;
    with_packs(&f.app).await;
    let mut clients = vec![
        (Anonymous, f.app.browser()),
        (Outsider, f.app.browser()),
        (Key, TestApp::client()),
        (Operator, TestApp::client()),
    ];
    for (caller, email) in [
        (Guest, "guest@acme.test"),
        (Member, "member@acme.test"),
        (BillingAdmin, "billing@acme.test"),
        (Admin, "admin@acme.test"),
        (Owner, "owner@acme.test"),
    ] {
        clients.push((caller, f.app.sign_in(email, PASSWORD).await));
    }
    let id_of = |body: Value, field: &str| body[field].as_str().unwrap().to_owned();
    let charge = |key: &str| {
        let body = json!({"idempotency_key": tally::db::new_id("k"), "action": "a", "credits": 5});
        let key = key.to_owned();
        let f = &f;
        async move {
            f.post_with_key("/api/v1/usage", &key, &body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let reserve = |key: &str| {
        let body = json!({"idempotency_key": tally::db::new_id("k"), "action": "a", "credits": 5});
        let key = key.to_owned();
        let f = &f;
        async move {
            f.post_with_key("/api/v1/usage/reservations", &key, &body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let budget = |key: &str| {
        let body = json!({"scope": "project", "target": "Matrix", "period": "week", "limit": 500});
        let key = key.to_owned();
        let f = &f;
        async move {
            f.post_with_key("/api/v1/budgets", &key, &body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let pool = |key: &str| {
        let body = json!({"scope": "project", "target": "MatrixPool", "credits": 10});
        let key = key.to_owned();
        let f = &f;
        async move {
            f.post_with_key("/api/v1/pools", &key, &body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let owner = &clients.last().unwrap().1;
    let (acme_purchase, _) = open_team_checkout(&f.app, owner).await;
    let globex_purchase = f
        .app
        .store
        .create_purchase(
            &NewPurchase {
                workspace_id: f.globex.clone(),
                origin: PurchaseOrigin::Custom,
                pack_id: None,
                description: "Globex's own".into(),
                credits: Credits::new(5_000).unwrap(),
                bonus_credits: Credits::ZERO,
                amount_minor: 600,
                currency: "usd".into(),
                created_by: "member@globex.test".into(),
            },
            f.app.now(),
        )
        .await
        .unwrap()
        .id;
    let ids = Ids {
        acme: f.acme.to_string(),
        acme_txn: id_of(charge(&f.acme_key).await, "transaction_id"),
        acme_rsv: id_of(reserve(&f.acme_key).await, "reservation_id"),
        acme_purchase,
        globex: f.globex.to_string(),
        globex_txn: id_of(charge(&f.globex_key).await, "transaction_id"),
        globex_rsv: id_of(reserve(&f.globex_key).await, "reservation_id"),
        globex_purchase,
        acme_budget: id_of(budget(&f.acme_key).await, "id"),
        globex_budget: id_of(budget(&f.globex_key).await, "id"),
        acme_pool: id_of(pool(&f.acme_key).await, "id"),
        globex_pool: id_of(pool(&f.globex_key).await, "id"),
    };
    (Callers { f, clients }, ids)
}

#[tokio::test]
async fn every_route_answers_every_caller_as_documented() {
    let (callers, ids) = callers().await;
    let routes = tally::startup::route_list();
    let missing: Vec<_> = routes
        .iter()
        .filter(|r| rules(r, &ids).is_none())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in the authorisation matrix: {missing:?}"
    );
    let mut failures = Vec::new();

    // From another site, nothing that changes state runs for a signed-in person, and no one
    // signs in. (First, so it runs while every session is still signed in.)
    for route in routes.iter().filter(|r| r.method != "GET") {
        let entry = rules(route, &ids).unwrap();
        let mut cross = entry.probe.clone();
        if cross.method == "GET" {
            cross.method = "POST";
        }
        for caller in [Owner, Member] {
            let got = callers
                .send(caller, &cross, Some("https://evil.example"))
                .await;
            if got != 403 {
                failures.push(format!(
                    "{caller:?} from another site: {} {} → {got}, want 403",
                    cross.method, route.path
                ));
            }
        }
    }
    let sign_in = probe(
        "POST",
        "/login",
        Body::Form(vec![
            ("email", "owner@acme.test".into()),
            ("password", PASSWORD.into()),
        ]),
    );
    let got = callers
        .send(Anonymous, &sign_in, Some("https://evil.example"))
        .await;
    if got != 403 {
        failures.push(format!("a sign-in from another site → {got}, want 403"));
    }

    // Every caller, in their own workspace; sign-out last, as it ends the sessions.
    let mut ordered: Vec<&RouteEntry> = routes.iter().collect();
    ordered.sort_by_key(|r| r.path == "/logout");
    for route in ordered {
        let entry = rules(route, &ids).unwrap();
        for caller in CALLERS {
            let want = (entry.expect)(caller);
            let got = callers.send(caller, &entry.probe, None).await;
            if got != want {
                failures.push(format!(
                    "{caller:?}: {} {} → {got}, want {want}",
                    entry.probe.method, entry.probe.path
                ));
            }
        }
        if let Some((caller, foreign, want)) = &entry.foreign {
            if route.path != "/logout" {
                let got = callers.send(*caller, foreign, None).await;
                if got != *want {
                    failures.push(format!(
                        "{caller:?} with another workspace's id: {} {} → {got}, want {want}",
                        foreign.method, foreign.path
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
