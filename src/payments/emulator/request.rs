//! One API request to the emulator, as every handler receives it: checked for Tally's key,
//! its parameters parsed (query and form body alike, as Stripe reads them), and run at most
//! once per `Idempotency-Key`.

use super::error::EmuError;
use super::{Emu, Emulator, EmulatorState, Kind};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Stripe's largest accepted request body is far above anything the emulator is sent; this
/// bound only keeps a runaway client from filling memory.
const MAX_BODY: usize = 256 * 1024;

/// Stripe's default and largest page sizes.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

/// A Stripe form body (`metadata[key]=value`, `line_items[0][quantity]=1`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, key: &str) -> Result<&str, EmuError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| EmuError::missing_param(key))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, EmuError> {
        self.get(key)
            .map(|v| v.parse::<i64>().map_err(|_| EmuError::bad_integer(key)))
            .transpose()
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    /// The map under `prefix[...]`, e.g. `metadata`.
    pub fn map(&self, prefix: &str) -> BTreeMap<String, String> {
        let start = format!("{prefix}[");
        self.0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&start)
                    .and_then(|rest| rest.strip_suffix(']'))
                    .filter(|key| !key.contains('['))
                    .map(|key| (key.to_owned(), v.clone()))
            })
            .collect()
    }

    /// Values of a list parameter such as `expand[]` or `expand[0]`.
    pub fn list(&self, name: &str) -> Vec<&str> {
        let bracket = format!("{name}[");
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.starts_with(&bracket))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The indices of an array of objects (`line_items[0][…]`, `line_items[1][…]`), in order.
    pub fn indices(&self, name: &str) -> Vec<usize> {
        let bracket = format!("{name}[");
        let mut found: Vec<usize> = self
            .0
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(&bracket)?;
                rest[..rest.find(']')?].parse().ok()
            })
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Whether `expand[]` names `field`.
    pub fn expands(&self, field: &str) -> bool {
        self.list("expand").contains(&field)
    }

    /// A list page's `limit` (1 to 100, 10 when absent).
    pub fn limit(&self) -> Result<usize, EmuError> {
        match self.int("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => Ok(n as usize),
            Some(_) => Err(EmuError::bad_param(
                "parameter_invalid_integer",
                "limit",
                "This value must be between 1 and 100.",
            )),
        }
    }

    /// A digest of the parameters in a stable order, to tell a retried request from a
    /// different one under the same idempotency key.
    fn fingerprint(&self) -> String {
        let mut pairs: Vec<_> = self.0.iter().collect();
        pairs.sort();
        let mut digest = Sha256::new();
        for (k, v) in pairs {
            digest.update(k.as_bytes());
            digest.update([0]);
            digest.update(v.as_bytes());
            digest.update([0]);
        }
        format!("{:x}", digest.finalize())
    }
}

/// An authorised request to the emulator's API.
pub(crate) struct Call {
    pub emu: Arc<Emulator>,
    pub params: Params,
    method: Method,
    path: String,
    idempotency_key: Option<String>,
}

impl FromRequest<EmulatorState> for Call {
    type Rejection = EmuError;

    async fn from_request(request: Request, state: &EmulatorState) -> Result<Self, EmuError> {
        let emu = authorised(state, request.headers())?;
        let idempotency_key = request
            .headers()
            .get("idempotency-key")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mut params: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|_| EmuError::invalid("The request body is too large or unreadable."))?;
        params.extend(url::form_urlencoded::parse(&body).into_owned());
        Ok(Call {
            emu,
            params: Params(params),
            method,
            path,
            idempotency_key,
        })
    }
}

/// The emulator, for a request that carries its API key as `Authorization: Bearer …`; any
/// other key (or none) gets Stripe's 401.
fn authorised(state: &EmulatorState, headers: &HeaderMap) -> Result<Arc<Emulator>, EmuError> {
    let emu = state.clone().ok_or_else(EmuError::off)?;
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(key) if crate::accounts::tokens::same_secret(key, &emu.config.api_key) => Ok(emu),
        Some(_) => Err(EmuError::unauthorised("Invalid API Key provided.")),
        None => Err(EmuError::unauthorised(
            "You did not provide an API key. Provide it in the Authorization header as a Bearer token.",
        )),
    }
}

impl Call {
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// `POST /v1/customers`: what Stripe calls the endpoint a key was first used on.
    fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Runs `run` once per idempotency key, as Stripe does: a retry with the same key and
    /// parameters gets the first answer (a decline included: the card is not charged
    /// again); the same key with other parameters, or on another endpoint, is refused with
    /// `idempotency_error`. A request refused before it ran (a missing or bad parameter)
    /// leaves nothing stored, so it can be corrected and retried under the same key. Runs
    /// under the emulator's write lock, so two requests racing with one key get one object.
    pub async fn once<F, Fut>(&self, run: F) -> Emu
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Emu>,
    {
        let _guard = self.emu.writes.lock().await;
        let Some(key) = &self.idempotency_key else {
            return run().await;
        };
        let stored_id = format!("idem_{key}");
        let fingerprint = self.params.fingerprint();
        if let Some(stored) = self.emu.load(Kind::Idempotency, &stored_id).await? {
            if stored["endpoint"] != self.endpoint().as_str() {
                return Err(EmuError::idempotency(format!(
                    "Keys for idempotent requests can only be used for the endpoint they were first \
                     used for ('{}', not '{}'). Use a new key for a different request.",
                    stored["endpoint"].as_str().unwrap_or_default(),
                    self.endpoint()
                )));
            }
            if stored["fingerprint"] != fingerprint.as_str() {
                return Err(EmuError::idempotency(format!(
                    "Keys for idempotent requests can only be used with the parameters they were \
                     first used with. Use a key other than '{key}' for a different request."
                )));
            }
            return replay(&stored);
        }
        let answer = run().await;
        let (status, body) = match &answer {
            Ok(Json(body)) => (200, body.clone()),
            // A decline ran (and was recorded at the bank): it is the key's answer too.
            Err(err) if err.status().as_u16() == 402 => (402, err.body.clone()),
            Err(_) => return answer,
        };
        let record = json!({
            "endpoint": self.endpoint(),
            "fingerprint": fingerprint,
            "status": status,
            "body": body,
        });
        self.emu
            .save(&stored_id, Kind::Idempotency, None, &record)
            .await?;
        answer
    }
}

/// Answers with a stored outcome: an error body keeps its status.
fn replay(stored: &Value) -> Emu {
    let body = stored["body"].clone();
    match stored["status"].as_u64() {
        Some(200) => Ok(Json(body)),
        Some(status) => Err(EmuError {
            status: axum::http::StatusCode::from_u16(status as u16)
                .unwrap_or(axum::http::StatusCode::PAYMENT_REQUIRED),
            body,
        }),
        None => Ok(Json(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_form_keys_are_read_as_maps_lists_and_arrays() {
        let params = Params(vec![
            ("metadata[purchase_id]".into(), "pur_1".into()),
            ("metadata[workspace_id]".into(), "ws_1".into()),
            (
                "payment_intent_data[metadata][purchase_id]".into(),
                "pur_1".into(),
            ),
            ("expand[0]".into(), "latest_charge".into()),
            ("expand[]".into(), "payment_method".into()),
            ("amount".into(), "1200".into()),
            ("line_items[1][quantity]".into(), "2".into()),
            ("line_items[0][quantity]".into(), "1".into()),
            ("line_items[1][price_data][currency]".into(), "usd".into()),
        ]);
        let metadata = params.map("metadata");
        assert_eq!(metadata.len(), 2);
        assert_eq!(metadata["purchase_id"], "pur_1");
        assert_eq!(
            params.map("payment_intent_data[metadata]")["purchase_id"],
            "pur_1"
        );
        assert_eq!(
            params.list("expand"),
            vec!["latest_charge", "payment_method"]
        );
        assert!(params.expands("payment_method"));
        assert_eq!(params.indices("line_items"), vec![0, 1]);
        assert_eq!(params.int("amount").unwrap(), Some(1200));
        assert!(params.int("metadata[purchase_id]").is_err());
    }

    #[test]
    fn the_fingerprint_ignores_order_but_not_values() {
        let a = Params(vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        let b = Params(vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
        let c = Params(vec![("a".into(), "1".into()), ("b".into(), "3".into())]);
        // "a=1b" + "=" would collide without a separator.
        let d = Params(vec![("a".into(), "1b".into())]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_ne!(a.fingerprint(), d.fingerprint());
    }

    #[test]
    fn a_page_holds_ten_by_default_and_at_most_a_hundred() {
        assert_eq!(Params::default().limit().unwrap(), 10);
        let limit = |n: &str| Params(vec![("limit".into(), n.into())]).limit();
        assert_eq!(limit("100").unwrap(), 100);
        assert!(limit("0").is_err());
        assert!(limit("101").is_err());
        assert!(limit("ten").is_err());
    }
}
