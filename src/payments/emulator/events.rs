//! Events and their delivery: each change is recorded as a Stripe event and posted, signed,
//! to Tally's own `/webhooks/stripe` and to every endpoint registered with
//! `POST /v1/webhook_endpoints` (each with its own signing secret), retried with growing
//! pauses as Stripe retries.
//!
//! Registered endpoints must be on this machine (loopback): they are test receivers, like a
//! forwarding command line at Stripe, and the emulator makes no calls beyond the machine.

use super::error::EmuError;
use super::request::Call;
use super::{objects, Emu, Emulator, EmulatorState, Kind};
use crate::clock::Clock;
use crate::db::new_id;
use crate::routing::RouteBook;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .get("/v1/events", list_events)
        .get("/v1/events/{id}", get_event)
        .post("/v1/webhook_endpoints", create_webhook_endpoint)
        .get("/v1/webhook_endpoints", list_webhook_endpoints)
        .get("/v1/webhook_endpoints/{id}", get_webhook_endpoint)
        .delete("/v1/webhook_endpoints/{id}", delete_webhook_endpoint)
}

/// Where one event goes, and the secret it is signed with there.
struct Receiver {
    url: String,
    secret: String,
}

impl Emulator {
    /// Records an event about `object` and delivers it after the configured delay.
    /// `previous` is what an update changed (`data.previous_attributes`).
    pub(super) async fn emit(
        &self,
        event_type: &str,
        object: &Value,
        previous: Option<Value>,
    ) -> Result<(), EmuError> {
        self.emit_after(0, event_type, object, previous).await
    }

    /// As [`Emulator::emit`], one delay later: for an event Stripe sends after the ones
    /// about the same change (a completed checkout after its payment).
    pub(super) async fn emit_late(
        &self,
        event_type: &str,
        object: &Value,
        previous: Option<Value>,
    ) -> Result<(), EmuError> {
        self.emit_after(1, event_type, object, previous).await
    }

    async fn emit_after(
        &self,
        delay_steps: u32,
        event_type: &str,
        object: &Value,
        previous: Option<Value>,
    ) -> Result<(), EmuError> {
        let id = new_id("evt");
        let receivers = self.receivers(event_type).await?;
        let event = objects::event(objects::EventFields {
            id: &id,
            event_type,
            object,
            previous_attributes: previous,
            pending_webhooks: receivers.len(),
            created: self.now_secs(),
        });
        self.save(&id, Kind::Event, None, &event).await?;
        let payload = event.to_string();
        let delay = self.config.delivery_delay * (delay_steps + 1);
        for receiver in receivers {
            let (http, clock, payload) = (self.http.clone(), self.clock.clone(), payload.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                deliver(&http, &receiver, &payload, clock.as_ref()).await;
            });
        }
        Ok(())
    }

    /// Tally's own endpoint, then every registered one that takes `event_type`.
    async fn receivers(&self, event_type: &str) -> Result<Vec<Receiver>, EmuError> {
        let mut receivers = vec![Receiver {
            url: self.config.webhook_url.clone(),
            secret: self.config.webhook_secret.clone(),
        }];
        for endpoint in self.all(Kind::WebhookEndpoint, None).await? {
            let takes = endpoint["enabled_events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e == "*" || e == event_type));
            let secret = self
                .load(
                    Kind::Note,
                    &secret_id(endpoint["id"].as_str().unwrap_or_default()),
                )
                .await?;
            if let (true, Some(url), Some(secret)) = (
                takes && endpoint["status"] == "enabled",
                endpoint["url"].as_str(),
                secret.as_ref().and_then(|s| s["secret"].as_str()),
            ) {
                receivers.push(Receiver {
                    url: url.to_owned(),
                    secret: secret.to_owned(),
                });
            }
        }
        Ok(receivers)
    }
}

fn secret_id(endpoint_id: &str) -> String {
    format!("note_secret_{endpoint_id}")
}

/// Posts one signed event, retrying with growing pauses as Stripe does (a few times here).
async fn deliver(http: &reqwest::Client, to: &Receiver, payload: &str, clock: &dyn Clock) {
    for attempt in 0..6u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt)).await;
        }
        let signature = stripe_webhook::Webhook::generate_test_header(
            payload,
            &to.secret,
            Some(clock.now_ms() / 1000),
        );
        let sent = http
            .post(&to.url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(payload.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, "test-mode event delivery refused")
            }
            Err(err) => tracing::warn!(error = %err, attempt, "test-mode event delivery failed"),
        }
    }
}

async fn get_event(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::Event, &id).await?))
}

async fn list_events(call: Call) -> Emu {
    let event_type = call.params.get("type").map(str::to_owned);
    Ok(Json(
        call.emu
            .page("/v1/events", Kind::Event, None, &call.params, |e| {
                event_type
                    .as_deref()
                    .is_none_or(|t| match t.strip_suffix('*') {
                        Some(prefix) => e["type"].as_str().is_some_and(|x| x.starts_with(prefix)),
                        None => e["type"] == t,
                    })
            })
            .await?,
    ))
}

/// A receiver's address: http or https on this machine.
fn loopback_url(url: &str) -> Result<String, EmuError> {
    let parsed = url::Url::parse(url)
        .map_err(|_| EmuError::bad_param("url_invalid", "url", format!("Invalid URL: {url}")))?;
    let local = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if matches!(parsed.scheme(), "http" | "https") && local {
        Ok(parsed.to_string())
    } else {
        Err(EmuError::bad_param(
            "url_invalid",
            "url",
            "In test mode a webhook endpoint must be an http or https address on this machine (127.0.0.1, ::1 or localhost).",
        ))
    }
}

async fn create_webhook_endpoint(call: Call) -> Emu {
    call.once(|| async {
        let (emu, params) = (&call.emu, &call.params);
        let url = loopback_url(params.required("url")?)?;
        let events: Vec<String> = params
            .list("enabled_events")
            .into_iter()
            .map(str::to_owned)
            .collect();
        if events.is_empty() {
            return Err(EmuError::missing_param("enabled_events"));
        }
        let id = new_id("we");
        let secret = crate::accounts::tokens::new_secret("whsec_");
        let mut endpoint = objects::webhook_endpoint(objects::EndpointFields {
            id: &id,
            url: &url,
            enabled_events: &events,
            description: params.get("description"),
            metadata: &params.map("metadata"),
            created: emu.now_secs(),
        });
        emu.save(&id, Kind::WebhookEndpoint, None, &endpoint)
            .await?;
        emu.save(
            &secret_id(&id),
            Kind::Note,
            None,
            &json!({"secret": secret}),
        )
        .await?;
        // Stripe shows the signing secret once, in the answer to the create call.
        endpoint["secret"] = json!(secret);
        Ok(Json(endpoint))
    })
    .await
}

async fn list_webhook_endpoints(call: Call) -> Emu {
    Ok(Json(
        call.emu
            .page(
                "/v1/webhook_endpoints",
                Kind::WebhookEndpoint,
                None,
                &call.params,
                |_| true,
            )
            .await?,
    ))
}

async fn get_webhook_endpoint(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::WebhookEndpoint, &id).await?))
}

async fn delete_webhook_endpoint(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let emu = &call.emu;
        emu.must_load(Kind::WebhookEndpoint, &id).await?;
        emu.remove(Kind::WebhookEndpoint, &id).await?;
        emu.remove(Kind::Note, &secret_id(&id)).await?;
        Ok(Json(
            json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
        ))
    })
    .await
}
