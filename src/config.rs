//! Configuration from the environment (and `.env` when present). Every variable is listed
//! in docs/DEPLOY.md; the defaults run the embedded mode with no set-up.

use crate::store::StoreOptions;
use std::net::SocketAddr;
use std::time::Duration;

/// The default database: a SQLite file under `./data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tally.db";

/// Everything Tally reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub site_addr: SocketAddr,
    /// Where the built site (`pkg/`, assets) is served from.
    pub site_root: String,
    pub store: StoreOptions,
    /// Mark cookies `Secure` (set when served over HTTPS, e.g. behind a TLS proxy).
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    /// How long the Studio's simulated provider work takes.
    pub studio_work: Duration,
    /// Stripe's secret key; without one, the embedded test-mode emulator takes payments.
    pub stripe_secret_key: Option<String>,
    /// The signing secret of the Stripe webhook endpoint (required with a secret key).
    pub stripe_webhook_secret: Option<String>,
    /// Where the Stripe API is (Stripe's own unless set; tests point it at a fake Stripe).
    pub stripe_api_base: Option<String>,
    /// The site's public address (`https://billing.example.com`), for links back from
    /// Stripe's payment page. Without it, links use the address the browser used.
    pub public_url: Option<String>,
    /// How late the test-mode emulator sends its events.
    pub emulator_event_delay: Duration,
    /// The bearer token of the operator API (`/api/operator/…`); without one it is off.
    pub operator_token: Option<String>,
}

/// A configuration value that does not parse; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}={value:?}: {reason}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    reason: &'static str,
}

impl Config {
    /// Reads the configuration, loading `.env` first when there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let parse_num =
            |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                match get(name) {
                    None => Ok(default),
                    Some(value) => match value.trim().parse::<u64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(ConfigError {
                            name,
                            value,
                            reason: "expected a whole number in range",
                        }),
                    },
                }
            };
        let site_addr = match get("LEPTOS_SITE_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(value) => value.trim().parse().map_err(|_| ConfigError {
                name: "LEPTOS_SITE_ADDR",
                value,
                reason: "expected HOST:PORT such as 127.0.0.1:3000",
            })?,
        };
        let secure_cookies = match get("TALLY_SECURE_COOKIES").as_deref().map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(ConfigError {
                    name: "TALLY_SECURE_COOKIES",
                    value: other.into(),
                    reason: "expected true or false",
                })
            }
        };
        Ok(Config {
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            site_addr,
            site_root: get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".to_owned()),
            store: StoreOptions {
                max_connections: parse_num("TALLY_DB_MAX_CONNECTIONS", 10, 1, 1_000)? as u32,
                acquire_timeout: Duration::from_millis(parse_num(
                    "TALLY_DB_ACQUIRE_TIMEOUT_MS",
                    10_000,
                    1,
                    600_000,
                )?),
                statement_timeout: Duration::from_millis(parse_num(
                    "TALLY_DB_STATEMENT_TIMEOUT_MS",
                    10_000,
                    1,
                    600_000,
                )?),
            },
            secure_cookies,
            session_ttl: Duration::from_secs(86_400 * parse_num("TALLY_SESSION_DAYS", 30, 1, 365)?),
            studio_work: Duration::from_millis(parse_num("TALLY_STUDIO_WORK_MS", 400, 0, 60_000)?),
            stripe_secret_key: get("STRIPE_SECRET_KEY").map(|v| v.trim().to_owned()),
            stripe_webhook_secret: get("STRIPE_WEBHOOK_SECRET").map(|v| v.trim().to_owned()),
            stripe_api_base: get("STRIPE_API_BASE").map(|v| v.trim().to_owned()),
            public_url: match get("TALLY_PUBLIC_URL") {
                None => None,
                Some(value) => {
                    let trimmed = value.trim().trim_end_matches('/').to_owned();
                    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
                        return Err(ConfigError {
                            name: "TALLY_PUBLIC_URL",
                            value,
                            reason: "expected an http:// or https:// address",
                        });
                    }
                    Some(trimmed)
                }
            },
            emulator_event_delay: Duration::from_millis(parse_num(
                "TALLY_TEST_MODE_EVENT_DELAY_MS",
                300,
                0,
                60_000,
            )?),
            operator_token: match get("TALLY_OPERATOR_TOKEN") {
                None => None,
                Some(value) if value.trim().len() < 24 => {
                    return Err(ConfigError {
                        name: "TALLY_OPERATOR_TOKEN",
                        value: "(hidden)".into(),
                        reason: "use at least 24 characters",
                    })
                }
                Some(value) => Some(value.trim().to_owned()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_run_the_embedded_mode() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.site_addr.to_string(), "127.0.0.1:3000");
        assert!(!config.secure_cookies);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("TALLY_DB_MAX_CONNECTIONS", "lots")]).unwrap_err();
        assert!(
            err.to_string().contains("TALLY_DB_MAX_CONNECTIONS"),
            "{err}"
        );
        let err = config(&[("LEPTOS_SITE_ADDR", "localhost")]).unwrap_err();
        assert!(err.to_string().contains("LEPTOS_SITE_ADDR"), "{err}");
        assert!(config(&[("TALLY_SECURE_COOKIES", "maybe")]).is_err());
        let err = config(&[("TALLY_PUBLIC_URL", "billing.example.com")]).unwrap_err();
        assert!(err.to_string().contains("TALLY_PUBLIC_URL"), "{err}");
    }
}
