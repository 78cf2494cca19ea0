//! Configuration from the environment (and `.env` when present). Every variable is listed
//! in docs/DEPLOY.md; the defaults run the embedded mode with no set-up.

use crate::db::StoreOptions;
use app::domain::MAX_CREDITS;
use app::domain::{
    BuyingPolicy, CreditUnit, Credits, CustomAmountTerms, Money, Storefront, TermsError, UnitError,
};
use std::net::SocketAddr;
use std::time::Duration;

/// The default database: a SQLite file under `./data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tally.db";

/// Everything Tally reads from its environment.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub site_addr: SocketAddr,
    /// Where the built site (`pkg/`, assets) is served from.
    pub site_root: String,
    /// The build's hash file, naming the bundle's files after their contents
    /// (`TALLY_HASH_FILE`; by default `hash.txt` beside the server binary, where
    /// `cargo leptos build` writes it).
    pub hash_file: std::path::PathBuf,
    pub store: StoreOptions,
    /// Mark cookies `Secure`: by default when `TALLY_PUBLIC_URL` is https.
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
    /// `TALLY_TEST_MODE=1`: simulated payments were chosen on purpose, for a deployment whose
    /// public address is https (a staging site). Without it such a deployment must have
    /// Stripe's keys.
    pub test_mode: bool,
    /// How long after a one-shot charge the product's server may refund it.
    pub refund_window: Duration,
    /// Where notification webhooks may go, and which extra CAs they trust.
    pub outbound: crate::outbound::OutboundConfig,
    /// The proxies whose `X-Forwarded-For`/`Forwarded` are believed.
    pub trusted_proxies: crate::web::client_addr::TrustedProxies,
    /// Password verifications at once (about the number of cores), and how long a sign-in
    /// waits for one before it is told to come back (429).
    pub sign_in_concurrency: usize,
    pub sign_in_wait: Duration,
    /// Charge batches in flight at once on PostgreSQL (`TALLY_GATE_SHARDS`, default 1, and at
    /// most one fewer than the pool's connections; SQLite has one writer, so one).
    pub gate_shards: usize,
    /// How this deployment sells credits: custom-amount terms and who may buy.
    pub storefront: Storefront,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "(hidden)");
        // Secrets are never printed; a database URL may carry a password.
        f.debug_struct("Config")
            .field("database_url", &redact_password(&self.database_url))
            .field("site_addr", &self.site_addr)
            .field("site_root", &self.site_root)
            .field("hash_file", &self.hash_file)
            .field("store", &self.store)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_ttl", &self.session_ttl)
            .field("studio_work", &self.studio_work)
            .field("stripe_secret_key", &hidden(&self.stripe_secret_key))
            .field(
                "stripe_webhook_secret",
                &hidden(&self.stripe_webhook_secret),
            )
            .field("stripe_api_base", &self.stripe_api_base)
            .field("public_url", &self.public_url)
            .field("emulator_event_delay", &self.emulator_event_delay)
            .field("operator_token", &hidden(&self.operator_token))
            .field("test_mode", &self.test_mode)
            .field("refund_window", &self.refund_window)
            .field("outbound", &self.outbound.policy)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("sign_in_concurrency", &self.sign_in_concurrency)
            .field("sign_in_wait", &self.sign_in_wait)
            .field("gate_shards", &self.gate_shards)
            .finish()
    }
}

/// Charge batches in flight at once on PostgreSQL unless `TALLY_GATE_SHARDS` says. With the
/// server and the database on two cores, one batch at a time made the most charges across
/// workspaces, with the lowest p99: each batch is then about twice as large, and a batch's
/// statements cost the database about as much whatever their size (docs/BENCHMARKS.md). A
/// database on a larger machine of its own may take more.
const DEFAULT_GATE_SHARDS: u64 = 1;

/// A database URL with any password replaced.
fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("hidden"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
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
        let flag = |name: &'static str| match get(name).as_deref().map(str::trim) {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(ConfigError {
                name,
                value: other.into(),
                reason: "expected true or false",
            }),
        };
        let mut config = Config {
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            site_addr,
            site_root: get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".to_owned()),
            hash_file: get("TALLY_HASH_FILE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(default_hash_file),
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
                idle_check_after: Duration::from_millis(parse_num(
                    "TALLY_DB_IDLE_CHECK_MS",
                    5_000,
                    0,
                    3_600_000,
                )?),
            },
            secure_cookies: flag("TALLY_SECURE_COOKIES")?,
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
            test_mode: flag("TALLY_TEST_MODE")?,
            refund_window: Duration::from_secs(
                3_600 * parse_num("TALLY_REFUND_WINDOW_HOURS", 24, 1, 24 * 30)?,
            ),
            outbound: crate::outbound::OutboundConfig {
                policy: crate::outbound::AddressPolicy {
                    allow_private: flag("TALLY_OUTBOX_ALLOW_PRIVATE")?,
                },
                extra_ca_pem: match get("TALLY_OUTBOX_CA_FILE") {
                    None => None,
                    Some(path) => Some(std::fs::read(path.trim()).map_err(|_| ConfigError {
                        name: "TALLY_OUTBOX_CA_FILE",
                        value: path.clone(),
                        reason: "cannot read that file",
                    })?),
                },
            },
            trusted_proxies: match get("TALLY_TRUSTED_PROXIES") {
                None => Default::default(),
                Some(list) => crate::web::client_addr::TrustedProxies::parse(&list).map_err(
                    |_| ConfigError {
                        name: "TALLY_TRUSTED_PROXIES",
                        value: list.clone(),
                        reason: "expected CIDR blocks separated by commas, such as 127.0.0.1/32,10.0.0.0/8",
                    },
                )?,
            },
            sign_in_concurrency: parse_num(
                "TALLY_SIGN_IN_CONCURRENCY",
                std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
                1,
                256,
            )? as usize,
            sign_in_wait: Duration::from_millis(parse_num("TALLY_SIGN_IN_WAIT_MS", 1_000, 0, 30_000)?),
            gate_shards: parse_num("TALLY_GATE_SHARDS", DEFAULT_GATE_SHARDS, 1, 64)? as usize,
            storefront: storefront(&get, &parse_num)?,
        };
        // A site served over https looks like production: simulated payments there must be
        // a choice, never the quiet result of a missing key.
        let public_https = config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        // Served over https, the session cookie is Secure unless the operator says otherwise.
        if public_https && get("TALLY_SECURE_COOKIES").is_none() {
            config.secure_cookies = true;
        }
        if public_https && config.stripe_secret_key.is_none() && !config.test_mode {
            return Err(ConfigError {
                name: "TALLY_PUBLIC_URL",
                value: config.public_url.clone().unwrap_or_default(),
                reason: "an https site needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET; set TALLY_TEST_MODE=1 to run it with simulated payments on purpose",
            });
        }
        Ok(config)
    }
}

/// Where cargo-leptos writes the hash file: beside the running server binary.
fn default_hash_file() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_default()
        .join("hash.txt")
}

/// Reads the storefront: `TALLY_CUSTOM_STEP`, `TALLY_CUSTOM_MIN` and `TALLY_CUSTOM_MAX` (credits),
/// `TALLY_CUSTOM_STEP_PRICE` (one step's price in dollars), `TALLY_BUYING_POLICY`,
/// `TALLY_UPGRADE_URL`, and the unit amounts are shown in: `TALLY_BALANCE_UNIT` (`credits`
/// or a currency code) with `TALLY_CREDIT_VALUE` (one credit in the currency's minor units).
fn storefront(
    get: &impl Fn(&str) -> Option<String>,
    parse_num: &impl Fn(&'static str, u64, u64, u64) -> Result<u64, ConfigError>,
) -> Result<Storefront, ConfigError> {
    let standard = CustomAmountTerms::standard();
    let amount = |name: &'static str, default: Credits| -> Result<Credits, ConfigError> {
        let n = parse_num(name, default.get() as u64, 1, MAX_CREDITS as u64)?;
        Credits::new(n as i64).map_err(|_| ConfigError {
            name,
            value: n.to_string(),
            reason: "expected a whole number of credits",
        })
    };
    let step = amount("TALLY_CUSTOM_STEP", standard.increment)?;
    let min = amount("TALLY_CUSTOM_MIN", standard.min)?;
    let max = amount("TALLY_CUSTOM_MAX", standard.max)?;
    let currency = standard.price_per_increment.currency().clone();
    let price = match get("TALLY_CUSTOM_STEP_PRICE") {
        None => standard.price_per_increment.clone(),
        Some(value) => Money::parse_major(&value, &currency).map_err(|_| ConfigError {
            name: "TALLY_CUSTOM_STEP_PRICE",
            value,
            reason: "expected a price in dollars such as 1.20",
        })?,
    };
    let custom = CustomAmountTerms::new(step, min, max, price).map_err(|e| ConfigError {
        name: "TALLY_CUSTOM_MIN",
        value: format!("{min} to {max} in steps of {step}"),
        reason: match e {
            TermsError::MinAboveMax => "the minimum must not be above TALLY_CUSTOM_MAX",
            TermsError::NotWholeSteps => {
                "TALLY_CUSTOM_MIN and TALLY_CUSTOM_MAX must be whole multiples of TALLY_CUSTOM_STEP"
            }
            TermsError::FreeStep => "TALLY_CUSTOM_STEP_PRICE must be above zero",
        },
    })?;
    let buying = match get("TALLY_BUYING_POLICY") {
        None => BuyingPolicy::AnyWorkspace,
        Some(value) => BuyingPolicy::parse(value.trim()).map_err(|_| ConfigError {
            name: "TALLY_BUYING_POLICY",
            value,
            reason: "expected any_workspace or paid_plans_only",
        })?,
    };
    let upgrade_url = match get("TALLY_UPGRADE_URL") {
        None => None,
        Some(value) => {
            let url = url::Url::parse(value.trim()).map_err(|_| ConfigError {
                name: "TALLY_UPGRADE_URL",
                value: value.clone(),
                reason: "expected an http:// or https:// address",
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError {
                    name: "TALLY_UPGRADE_URL",
                    value,
                    reason: "expected an http:// or https:// address",
                });
            }
            Some(url.to_string())
        }
    };
    let value = parse_num(
        "TALLY_CREDIT_VALUE",
        1,
        1,
        CreditUnit::MAX_MINOR_PER_CREDIT as u64,
    )?;
    let unit_name = get("TALLY_BALANCE_UNIT").unwrap_or_else(|| "credits".to_owned());
    let unit = CreditUnit::parse(&unit_name, value as i64).map_err(|e| ConfigError {
        name: "TALLY_BALANCE_UNIT",
        value: unit_name.clone(),
        reason: match e {
            UnitError::BadUnit => "expected credits or a currency code such as usd",
            UnitError::BadValue => "TALLY_CREDIT_VALUE must be a whole number of minor units",
        },
    })?;
    Ok(Storefront {
        custom,
        buying,
        upgrade_url,
        unit,
    })
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
        let beside_the_binary = std::env::current_exe().unwrap().with_file_name("hash.txt");
        assert_eq!(config.hash_file, beside_the_binary);
        let chosen = self::config(&[("TALLY_HASH_FILE", "/srv/tally/hash.txt")]).unwrap();
        assert_eq!(
            chosen.hash_file,
            std::path::PathBuf::from("/srv/tally/hash.txt")
        );
    }

    #[test]
    fn the_storefront_follows_its_variables_and_names_a_bad_one() {
        let standard = config(&[]).unwrap().storefront;
        assert_eq!(standard, Storefront::default());
        let shop = config(&[
            ("TALLY_CUSTOM_STEP", "10"),
            ("TALLY_CUSTOM_MIN", "20"),
            ("TALLY_CUSTOM_MAX", "500"),
            ("TALLY_CUSTOM_STEP_PRICE", "0.10"),
            ("TALLY_BUYING_POLICY", "paid_plans_only"),
            ("TALLY_UPGRADE_URL", "https://app.example.com/plans"),
        ])
        .unwrap()
        .storefront;
        assert_eq!(shop.custom.increment.get(), 10);
        assert_eq!(
            shop.custom
                .price(Credits::new(30).unwrap())
                .unwrap()
                .amount_minor(),
            30
        );
        assert_eq!(shop.buying, BuyingPolicy::PaidPlansOnly);
        assert_eq!(
            shop.upgrade_url.as_deref(),
            Some("https://app.example.com/plans")
        );
        assert_eq!(shop.unit, CreditUnit::Credits);
        let dollars = config(&[("TALLY_BALANCE_UNIT", "USD")]).unwrap().storefront;
        assert_eq!(dollars.unit, CreditUnit::parse("usd", 1).unwrap());
        let nickels = config(&[("TALLY_BALANCE_UNIT", "usd"), ("TALLY_CREDIT_VALUE", "5")])
            .unwrap()
            .storefront;
        assert_eq!(nickels.unit.figure(Credits::new(3).unwrap()), "$0.15");
        for (name, value) in [
            ("TALLY_CUSTOM_MIN", "25"),
            ("TALLY_CUSTOM_STEP", "0"),
            ("TALLY_CUSTOM_STEP_PRICE", "free"),
            ("TALLY_BUYING_POLICY", "everyone"),
            ("TALLY_UPGRADE_URL", "javascript:alert(1)"),
            ("TALLY_BALANCE_UNIT", "dollars"),
            ("TALLY_CREDIT_VALUE", "0"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn gate_shards_default_to_one_and_refuse_zero() {
        assert_eq!(config(&[]).unwrap().gate_shards, 1);
        assert_eq!(
            config(&[("TALLY_GATE_SHARDS", "3")]).unwrap().gate_shards,
            3
        );
        let err = config(&[("TALLY_GATE_SHARDS", "0")]).unwrap_err();
        assert!(err.to_string().contains("TALLY_GATE_SHARDS"), "{err}");
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

    #[test]
    fn an_https_site_without_stripe_keys_needs_test_mode_chosen() {
        let https = ("TALLY_PUBLIC_URL", "https://billing.example.com");
        let err = config(&[https]).unwrap_err();
        assert!(err.to_string().contains("TALLY_TEST_MODE=1"), "{err}");
        assert!(
            config(&[https, ("TALLY_TEST_MODE", "1")])
                .unwrap()
                .test_mode
        );
        assert!(config(&[https, ("STRIPE_SECRET_KEY", "sk_live_x")]).is_ok());
        assert!(config(&[("TALLY_PUBLIC_URL", "http://127.0.0.1:3000")]).is_ok());
        assert!(config(&[("TALLY_TEST_MODE", "maybe")]).is_err());
    }

    #[test]
    fn cookies_are_secure_by_default_behind_https() {
        let https = [
            ("TALLY_PUBLIC_URL", "https://billing.example.com"),
            ("TALLY_TEST_MODE", "1"),
        ];
        assert!(config(&https).unwrap().secure_cookies);
        let mut off = https.to_vec();
        off.push(("TALLY_SECURE_COOKIES", "false"));
        assert!(
            !config(&off).unwrap().secure_cookies,
            "an explicit choice wins"
        );
        assert!(
            !config(&[("TALLY_PUBLIC_URL", "http://127.0.0.1:3000")])
                .unwrap()
                .secure_cookies
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = config(&[
            ("STRIPE_SECRET_KEY", "sk_live_supersecret"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_supersecret"),
            ("TALLY_OPERATOR_TOKEN", "operator-token-supersecret-123"),
            (
                "DATABASE_URL",
                "postgres://tally:dbsupersecret@db.internal/tally",
            ),
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
        assert!(printed.contains("(hidden)"));
        assert!(printed.contains("db.internal"));
    }

    #[test]
    fn refunds_are_allowed_for_a_day_unless_configured() {
        assert_eq!(
            config(&[]).unwrap().refund_window,
            Duration::from_secs(86_400)
        );
        let two = config(&[("TALLY_REFUND_WINDOW_HOURS", "2")]).unwrap();
        assert_eq!(two.refund_window, Duration::from_secs(7_200));
        assert!(config(&[("TALLY_REFUND_WINDOW_HOURS", "0")]).is_err());
    }
}
