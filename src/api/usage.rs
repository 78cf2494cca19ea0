//! The credit gate over HTTP: `POST /api/v1/usage` and the reservation endpoints.

use super::json::ApiJson;
use super::{ApiError, Caller, ErrorAnswer, ErrorCode, Principal};
use crate::clock::to_datetime;
use crate::ledger::rules::Shortfall;
use crate::ledger::{EntryMeta, IdempotencyKey, NewHold, Refusal, Resolution};
use crate::spend::{LimitHit, Period, Scope};
use crate::state::AppState;
use app::domain::{BillingManagers, CreditUnit, Credits, Money, RecoveryAction, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a hold lasts unless the request says otherwise, and the bounds it may say.
const DEFAULT_HOLD_SECONDS: i64 = 15 * 60;
const MAX_HOLD_SECONDS: i64 = 24 * 60 * 60;
const MAX_TEXT: usize = 200;

/// The body of a charge or a reservation.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"idempotency_key": "gen_42", "action": "image.generate", "credits": 25, "actor": "member@acme.test", "resource": {"project": "launch"}}))]
pub struct UsageBody {
    /// The caller's id for this action (1 to 255 printable characters): the same key with
    /// the same body answers the first outcome again; with another body, 409.
    #[schema(min_length = 1, max_length = 255)]
    idempotency_key: String,
    /// What the action is (`image.generate`), shown in the history.
    #[schema(min_length = 1, max_length = 200)]
    action: String,
    /// The cost in credits. Send this or `units` with a `model`.
    #[serde(default)]
    #[schema(minimum = 1)]
    credits: Option<i64>,
    /// Units of the model's rate (tokens, images, seconds), priced by the rate table.
    #[serde(default)]
    #[schema(minimum = 1)]
    units: Option<i64>,
    /// The model, shown in the history and needed to price `units`.
    #[serde(default)]
    #[schema(max_length = 200)]
    model: Option<String>,
    #[serde(default)]
    resource: Option<ResourceBody>,
    /// API keys only: the person the product acts for (their email), which decides the
    /// recovery offered when credits run out.
    #[serde(default)]
    #[schema(max_length = 200)]
    actor: Option<String>,
    /// Reservations only: how long the hold lasts (60 s to 24 h; default 15 min).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 86400)]
    hold_seconds: Option<i64>,
}

/// What the action belongs to, for the history and its filters.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    #[serde(default)]
    #[schema(max_length = 200)]
    project: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    session: Option<String>,
}

/// A charge made (or, for a repeated key, the charge made the first time).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChargeAnswer {
    /// The journal entry, to refund it if the AI work fails.
    #[schema(example = "txn_01j9z3k8q4")]
    pub transaction_id: String,
    pub charged: i64,
    /// Spendable credits after the charge.
    pub balance: i64,
    /// The balance in money where the deployment shows amounts in money; `null` otherwise.
    #[schema(required = true)]
    pub balance_money: Option<Money>,
}

/// Credits held for an action in progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReservationAnswer {
    #[schema(example = "rsv_01j9z3k8q4")]
    pub reservation_id: String,
    pub held: i64,
    /// When the hold lapses by itself (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub balance: i64,
    /// The balance in money where the deployment shows amounts in money; `null` otherwise.
    #[schema(required = true)]
    pub balance_money: Option<Money>,
}

/// How a reservation ended: settled (`charged` present) or released.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResolutionAnswer {
    /// Present when the reservation was settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charged: Option<i64>,
    /// Held credits returned to the balance.
    pub released: i64,
    pub balance: i64,
    /// The balance in money where the deployment shows amounts in money; `null` otherwise.
    #[schema(required = true)]
    pub balance_money: Option<Money>,
}

/// A charge given back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundAnswer {
    /// The refund's own journal entry.
    pub transaction_id: String,
    pub refunded: i64,
    pub balance: i64,
    /// The balance in money where the deployment shows amounts in money; `null` otherwise.
    #[schema(required = true)]
    pub balance_money: Option<Money>,
}

/// The body of a settle.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    /// The actual cost (0 up to the amount held; more is charged if the balance allows).
    #[schema(minimum = 0)]
    credits: i64,
}

/// A usage request after parsing: everything the ledger needs, and nothing unchecked.
struct UsageRequest {
    key: IdempotencyKey,
    credits: Credits,
    meta: EntryMeta,
    /// The actor's role in the workspace, for the insufficient-credits recovery.
    role: Option<Role>,
    hold_seconds: i64,
}

fn text(field: &str, value: Option<String>, required: bool) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        None if required => Err(ApiError::Invalid(format!("{field} is required"))),
        Some(v) if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) => {
            Err(ApiError::Invalid(format!(
                "{field} must be at most {MAX_TEXT} printable characters"
            )))
        }
        other => Ok(other),
    }
}

impl UsageRequest {
    #[tracing::instrument(skip_all)]
    async fn parse(
        state: &AppState,
        caller: &Caller,
        body: UsageBody,
        scope: &'static str,
    ) -> Result<UsageRequest, ApiError> {
        let request_hash = {
            let canonical =
                serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
            Sha256::digest(&canonical)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let key = body.idempotency_key;
        if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
            return Err(ApiError::Invalid(
                "idempotency_key must have 1 to 255 printable characters".into(),
            ));
        }
        let action = text("action", Some(body.action), true)?;
        let model = text("model", body.model, false)?;
        let credits = match (body.credits, body.units) {
            (Some(credits), None) => Credits::positive(credits)
                .map_err(|e| ApiError::Invalid(format!("credits: {e}")))?,
            (None, Some(units)) => {
                let Some(model) = model.as_deref() else {
                    return Err(ApiError::Invalid("units need a model to price them".into()));
                };
                let rate = state
                    .store
                    .rate(model)
                    .await?
                    .ok_or_else(|| ApiError::Invalid(format!("no rate for model {model}")))?;
                rate.price(units)
                    .map_err(|e| ApiError::Invalid(format!("units: {e}")))?
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::Invalid("send credits or units, not both".into()))
            }
            (None, None) => return Err(ApiError::Invalid("credits is required".into())),
        };
        let (project, session) = match body.resource {
            Some(r) => (
                text("resource.project", r.project, false)?,
                text("resource.session", r.session, false)?,
            ),
            None => (None, None),
        };
        // People act as themselves; services name the person they act for, if any.
        let (actor, role, member_id, api_key_id) = match &caller.principal {
            Principal::Person {
                user_id,
                email,
                role,
            } => {
                if !role.can_spend_credits() {
                    return Err(ApiError::Forbidden);
                }
                (email.clone(), Some(*role), Some(user_id.clone()), None)
            }
            Principal::ApiKey { key_id } => match text("actor", body.actor, false)? {
                Some(actor) => {
                    let member = state
                        .store
                        .actor_member(&caller.workspace.id, &actor)
                        .await?;
                    let (member_id, role) = member.unzip();
                    (actor, role, member_id, Some(key_id.clone()))
                }
                None => ("api".to_owned(), None, None, Some(key_id.clone())),
            },
        };
        let hold_seconds = match body.hold_seconds {
            None => DEFAULT_HOLD_SECONDS,
            Some(s) if (60..=MAX_HOLD_SECONDS).contains(&s) => s,
            Some(_) => {
                return Err(ApiError::Invalid(format!(
                    "hold_seconds must be from 60 to {MAX_HOLD_SECONDS}"
                )))
            }
        };
        Ok(UsageRequest {
            key: IdempotencyKey {
                scope,
                key,
                request_hash,
            },
            credits,
            meta: EntryMeta {
                actor,
                description: action.clone().unwrap_or_default(),
                action,
                model,
                project,
                session,
                payment_ref: None,
                member_id,
                api_key_id,
            },
            role,
            hold_seconds,
        })
    }
}

fn answer(status: StatusCode, body: impl Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The 402 answer: what was missing, why, and what this person can do about it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InsufficientAnswer {
    pub error: Shortage,
}

/// Why an action was refused for credits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Shortage {
    /// Always `insufficient_credits`.
    pub code: ErrorCode,
    pub message: String,
    pub reason: ShortageReason,
    /// Spendable credits now.
    pub balance: i64,
    /// The balance in money where the deployment shows amounts in money; `null` otherwise.
    #[schema(required = true)]
    pub balance_money: Option<Money>,
    /// Credits held by actions in progress.
    pub held: i64,
    /// What the action needs.
    pub required: i64,
    pub recovery: Recovery,
}

/// Whether the credits are gone or only held.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShortageReason {
    OutOfCredits,
    /// The credits exist but are reserved by actions in progress.
    HeldByActionsInProgress,
}

/// What the actor can do next, by their role in the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recovery {
    /// The actor's role (`unknown` when an API key names nobody of the workspace).
    #[schema(example = "member")]
    pub role: String,
    pub actions: Vec<RecoveryAction>,
}

/// The 402 answer for `shortfall`, with the recovery for `role` under `policy`.
pub fn insufficient(
    shortfall: &Shortfall,
    role: Option<Role>,
    policy: BillingManagers,
    unit: &CreditUnit,
) -> InsufficientAnswer {
    let amount = |n: i64| unit.amount(Credits::new(n.max(0)).unwrap_or_default());
    // Holds are not exhaustion: say so when the credits exist but are reserved.
    let held_back = shortfall.available + shortfall.held >= shortfall.required;
    let (reason, message) = if held_back {
        (
            ShortageReason::HeldByActionsInProgress,
            "Credits are held by AI actions in progress; try again when they finish.".to_owned(),
        )
    } else {
        (
            ShortageReason::OutOfCredits,
            format!(
                "This action needs {} and the workspace has {}.",
                amount(shortfall.required),
                amount(shortfall.available)
            ),
        )
    };
    let (role_name, actions) = match role {
        Some(role) => (role.as_str(), role.recovery_actions(policy)),
        None => ("unknown", RecoveryAction::FOR_UNKNOWN),
    };
    InsufficientAnswer {
        error: Shortage {
            code: ErrorCode::InsufficientCredits,
            message,
            reason,
            balance: shortfall.available,
            balance_money: money(unit, shortfall.available),
            held: shortfall.held,
            required: shortfall.required,
            recovery: Recovery {
                role: role_name.to_owned(),
                actions: actions.to_vec(),
            },
        },
    }
}

/// The 402 answer when a budget refused: which limit fired, and what the actor can do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverBudgetAnswer {
    pub error: OverBudget,
}

/// Why an action was refused by a budget below the workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverBudget {
    /// Always `budget_exceeded`.
    pub code: ErrorCode,
    pub message: String,
    /// What the action needs.
    pub required: i64,
    pub limit: LimitFired,
    pub recovery: Recovery,
}

/// The limit that fired.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitFired {
    /// `budget` (credits per period) or `frequency_cap` (actions per period).
    #[schema(example = "budget")]
    pub kind: String,
    pub scope: Scope,
    /// For a frequency cap: the action it counts (`limit` and `used` are then actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The budget (`bud_…`).
    pub id: String,
    pub period: Period,
    pub limit: i64,
    /// Charged and held in this period already.
    pub used: i64,
    /// When the period ends and the budget starts again (absent for a lifetime budget).
    #[schema(format = DateTime)]
    pub resets_at: Option<String>,
}

/// The 402 answer for a budget's refusal, with the recovery for `role` under `policy`.
pub fn over_budget(
    hit: &LimitHit,
    role: Option<Role>,
    policy: BillingManagers,
    unit: &CreditUnit,
) -> OverBudgetAnswer {
    let resets_at = hit
        .resets_at
        .map(|t| to_datetime(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let message = hit.sentence(unit);
    let (role_name, actions) = match role {
        Some(role) => (role.as_str(), role.budget_recovery(policy)),
        None => ("unknown", RecoveryAction::FOR_UNKNOWN),
    };
    OverBudgetAnswer {
        error: OverBudget {
            code: if hit.action.is_some() {
                ErrorCode::RateLimited
            } else {
                ErrorCode::BudgetExceeded
            },
            message,
            required: hit.required,
            limit: LimitFired {
                kind: if hit.action.is_some() {
                    "frequency_cap"
                } else {
                    "budget"
                }
                .into(),
                scope: hit.scope,
                action: hit.action.clone(),
                id: hit.budget_id.clone(),
                period: hit.period,
                limit: hit.limit,
                used: hit.used,
                resets_at,
            },
            recovery: Recovery {
                role: role_name.to_owned(),
                actions: actions.to_vec(),
            },
        },
    }
}

/// The gate's 402 answer: out of credits, or over a budget.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RefusalAnswer {
    Insufficient(InsufficientAnswer),
    OverBudget(OverBudgetAnswer),
}

/// The answer for any refusal of the gate: 402 for credits and budgets; 429 with
/// `Retry-After` (seconds until the cap's period ends) for a frequency cap.
fn refused(
    refusal: &Refusal,
    role: Option<Role>,
    policy: BillingManagers,
    now: crate::clock::Millis,
    unit: &CreditUnit,
) -> Response {
    match refusal {
        Refusal::Credits(shortfall) => answer(
            StatusCode::PAYMENT_REQUIRED,
            RefusalAnswer::Insufficient(insufficient(shortfall, role, policy, unit)),
        ),
        Refusal::Budget(hit) if hit.action.is_some() => {
            let body = axum::Json(over_budget(hit, role, policy, unit));
            match hit.resets_at {
                Some(at) => {
                    // Whole seconds, rounded up, so a retry at that moment finds a new period.
                    let seconds = ((at - now).max(0) + 999) / 1_000;
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(axum::http::header::RETRY_AFTER, seconds.to_string())],
                        body,
                    )
                        .into_response()
                }
                None => (StatusCode::TOO_MANY_REQUESTS, body).into_response(),
            }
        }
        Refusal::Budget(hit) => answer(
            StatusCode::PAYMENT_REQUIRED,
            RefusalAnswer::OverBudget(over_budget(hit, role, policy, unit)),
        ),
    }
}

/// `POST /api/v1/usage`: charge a known cost at once.
///
/// Charges the workspace before the AI work starts, exactly once per idempotency key; the
/// same key and body answer the first outcome again.
#[utoipa::path(post, path = "/api/v1/usage", tag = "credit gate", operation_id = "charge",
    request_body = UsageBody,
    responses(
        (status = 200, description = "Charged (or the first charge of this key).", body = ChargeAnswer),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer),
        (status = 402, description = "Not enough credits (`insufficient_credits`), or a budget's limit (`budget_exceeded`): nothing was charged; what is missing or which limit fired, and what the actor can do.", body = RefusalAnswer),
        (status = 429, description = "A frequency cap on this action (`rate_limited`): nothing was charged; `Retry-After` says in how many seconds its period ends.", body = OverBudgetAnswer,
            headers(("Retry-After" = u64, description = "Seconds until the cap's period ends (absent for a lifetime cap)."))),
        (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 409, description = "The idempotency key was used with another body (`idempotency_conflict`).", body = ErrorAnswer), (status = 503, description = "The gate is busy (`overloaded`, with `Retry-After`); nothing was charged.", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn charge(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<UsageBody>,
) -> Result<Response, ApiError> {
    let request = UsageRequest::parse(&state, &caller, body, "usage").await?;
    let policy = caller.workspace.billing_managers;
    let role = request.role;
    let outcome = state
        .batcher
        .charge(
            &caller.workspace.id,
            request.key,
            request.credits,
            request.meta,
        )
        .await?;
    Ok(match outcome {
        Ok(receipt) => answer(
            StatusCode::OK,
            ChargeAnswer {
                transaction_id: receipt.entry_id,
                charged: -receipt.amount,
                balance: receipt.available,
                balance_money: money(unit(&state), receipt.available),
            },
        ),
        Err(refusal) => refused(&refusal, role, policy, state.clock.now_ms(), unit(&state)),
    })
}

/// `POST /api/v1/usage/reservations`: hold an estimate.
///
/// Holds credits for an action whose cost is known only afterwards; settle or release it
/// when the work ends (or it lapses after `hold_seconds`).
#[utoipa::path(post, path = "/api/v1/usage/reservations", tag = "credit gate", operation_id = "reserve",
    request_body = UsageBody,
    responses(
        (status = 201, description = "Held (or the first hold of this key).", body = ReservationAnswer),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer),
        (status = 402, description = "Not enough credits (`insufficient_credits`), or a budget's limit (`budget_exceeded`): nothing was held.", body = RefusalAnswer),
        (status = 429, description = "A frequency cap on this action (`rate_limited`): nothing was held; `Retry-After` says in how many seconds its period ends.", body = OverBudgetAnswer,
            headers(("Retry-After" = u64, description = "Seconds until the cap's period ends (absent for a lifetime cap)."))),
        (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 409, description = "The idempotency key was used with another body (`idempotency_conflict`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn reserve(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<UsageBody>,
) -> Result<Response, ApiError> {
    let request = UsageRequest::parse(&state, &caller, body, "reservation").await?;
    let policy = caller.workspace.billing_managers;
    let role = request.role;
    let now = state.clock.now_ms();
    let hold = NewHold {
        credits: request.credits,
        expires_at: now + request.hold_seconds * 1_000,
        meta: request.meta,
    };
    let outcome = state
        .store
        .reserve_once(&caller.workspace.id, &request.key, &hold, now)
        .await?;
    Ok(match outcome {
        Ok(receipt) => answer(
            StatusCode::CREATED,
            ReservationAnswer {
                reservation_id: receipt.reservation_id,
                held: receipt.held,
                expires_at: to_datetime(receipt.expires_at)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                balance: receipt.available,
                balance_money: money(unit(&state), receipt.available),
            },
        ),
        Err(refusal) => refused(&refusal, role, policy, state.clock.now_ms(), unit(&state)),
    })
}

fn reservation_id(id: &str) -> Result<&str, ApiError> {
    super::fields::id("rsv", id)
}

/// Credits come back only through the product's server: it knows whether the provider work
/// failed. A person's session (whatever the role) may not settle, release or refund.
fn require_api_key(caller: &Caller) -> Result<(), ApiError> {
    match &caller.principal {
        Principal::ApiKey { .. } => Ok(()),
        Principal::Person { .. } => Err(ApiError::ApiKeyRequired),
    }
}

/// The answer to a settle or a release: the first resolution, whichever call repeats it.
fn resolved(r: &Resolution, unit: &CreditUnit) -> Response {
    answer(
        StatusCode::OK,
        ResolutionAnswer {
            charged: r.settled.then_some(r.charged),
            released: r.released,
            balance: r.available,
            balance_money: money(unit, r.available),
        },
    )
}

/// The unit this deployment shows amounts in.
fn unit(state: &AppState) -> &CreditUnit {
    &state.config.storefront.unit
}

/// A balance in money, where amounts are shown in money.
pub fn money(unit: &CreditUnit, balance: i64) -> Option<Money> {
    unit.money(Credits::new(balance.max(0)).unwrap_or_default())
}

/// `POST /api/v1/usage/reservations/{id}/settle`: charge the actual cost.
///
/// Charges what the work cost and returns the rest of the hold. Product servers only (a
/// workspace API key); a repeat answers the first resolution.
#[utoipa::path(post, path = "/api/v1/usage/reservations/{id}/settle", tag = "credit gate", operation_id = "settle",
    params(("id" = String, Path, description = "The reservation (`rsv_…`).")),
    request_body = SettleBody,
    responses(
        (status = 200, description = "Settled (or the reservation's first resolution).", body = ResolutionAnswer),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
        (status = 409, description = "The reservation lapsed (`reservation_expired`) or was released (`reservation_resolved`).", body = ErrorAnswer),
    ),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all)]
pub async fn settle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SettleBody>,
) -> Result<Response, ApiError> {
    require_api_key(&caller)?;
    let id = reservation_id(&id)?;
    let actual =
        Credits::new(body.credits).map_err(|e| ApiError::Invalid(format!("credits: {e}")))?;
    let resolution = state
        .store
        .settle(&caller.workspace.id, id, actual, state.clock.now_ms())
        .await?;
    Ok(resolved(&resolution, unit(&state)))
}

/// `POST /api/v1/usage/reservations/{id}/release`: the provider work failed; charge nothing.
///
/// Returns the whole hold. Product servers only (a workspace API key); a repeat answers the
/// first resolution.
#[utoipa::path(post, path = "/api/v1/usage/reservations/{id}/release", tag = "credit gate", operation_id = "release",
    params(("id" = String, Path, description = "The reservation (`rsv_…`).")),
    responses(
        (status = 200, description = "Released (or the reservation's first resolution).", body = ResolutionAnswer),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
        (status = 409, description = "The reservation was settled already (`reservation_resolved`).", body = ErrorAnswer),
    ),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all)]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_api_key(&caller)?;
    let id = reservation_id(&id)?;
    let resolution = state
        .store
        .release(&caller.workspace.id, id, state.clock.now_ms())
        .await?;
    Ok(resolved(&resolution, unit(&state)))
}

/// `POST /api/v1/usage/{transaction_id}/refund`: the AI operation of a one-shot charge failed;
/// give its credits back. Asking again returns the same refund.
///
/// Product servers only (a workspace API key), within the refund window.
#[utoipa::path(post, path = "/api/v1/usage/{transaction_id}/refund", tag = "credit gate", operation_id = "refund",
    params(("transaction_id" = String, Path, description = "The charge (`txn_…`).")),
    responses(
        (status = 200, description = "Refunded (or the first refund of this charge).", body = RefundAnswer),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
        (status = 409, description = "Not refundable: not a charge, or past the refund window (`not_refundable`).", body = ErrorAnswer),
    ),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all)]
pub async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_api_key(&caller)?;
    let id = super::fields::id("txn", &id)?;
    let now = state.clock.now_ms();
    let window = i64::try_from(state.config.refund_window.as_millis()).unwrap_or(i64::MAX);
    let refund = state
        .store
        .refund(
            &caller.workspace.id,
            id,
            "api",
            now,
            now.saturating_sub(window),
        )
        .await?;
    Ok(answer(
        StatusCode::OK,
        RefundAnswer {
            transaction_id: refund.entry_id,
            refunded: refund.refunded,
            balance: refund.available,
            balance_money: money(unit(&state), refund.available),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn held_credits_are_reported_apart_from_an_empty_balance() {
        let held = Shortfall {
            available: 10,
            held: 40,
            required: 25,
        };
        let body = serde_json::to_value(insufficient(
            &held,
            Some(Role::Member),
            BillingManagers::Admins,
            &CreditUnit::Credits,
        ))
        .unwrap();
        assert_eq!(body["error"]["reason"], "held_by_actions_in_progress");
        assert_eq!(body["error"]["recovery"]["actions"], json!(["ask_admin"]));
        let empty = Shortfall {
            available: 10,
            held: 0,
            required: 25,
        };
        let body = serde_json::to_value(insufficient(
            &empty,
            None,
            BillingManagers::Admins,
            &CreditUnit::Credits,
        ))
        .unwrap();
        assert_eq!(body["error"]["code"], "insufficient_credits");
        assert_eq!(body["error"]["reason"], "out_of_credits");
        assert_eq!(
            (
                body["error"]["balance"].as_i64(),
                body["error"]["required"].as_i64()
            ),
            (Some(10), Some(25))
        );
        assert_eq!(
            body["error"]["recovery"],
            json!({"role": "unknown", "actions": ["ask_owner"]})
        );
    }
}
