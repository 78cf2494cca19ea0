//! The credit gate's throughput and latency over HTTP, beside the bare-SQL limit of the same
//! database, measured in the same run. Not a test: it prints a Markdown report.
//!
//! The HTTP load (pages and the gate) comes from wrk, which must be installed.
//!
//! `cargo bench --bench gate` (set `TALLY_BENCH_SECONDS` to change the length of each phase,
//! `TALLY_TEST_POSTGRES_URL` to point at another PostgreSQL server). For a quick look at one
//! change, `TALLY_BENCH_ONLY=sqlite` or `postgres` measures one database, and
//! `TALLY_BENCH_GATE_ONLY=1` only the gate without budgets and the database's limits.

use app::domain::{Credits, EntryType, GrantKind, WorkspaceId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::clock::{Clock, SystemClock};
use tally::config::Config;
use tally::db::{Backend, Store, StoreOptions};
use tally::ledger::{EntryMeta, NewGrant};
use tally::spend::{Enforcement, NewBudget, Period, Scope};

// The server's own allocator (src/main.rs), so the in-process server runs as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 32;
const WORKSPACES: usize = 1_000;

struct Phase {
    name: String,
    ops: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1_000.0
}

/// Runs `CLIENTS` loops of `op` for `seconds`, collecting each operation's latency.
async fn drive<F, Fut>(name: &str, seconds: f64, op: F) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    drive_with(CLIENTS, name, seconds, op).await
}

/// Runs `clients` loops of `op` for `seconds`, collecting each operation's latency.
async fn drive_with<F, Fut>(clients: usize, name: &str, seconds: f64, op: F) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (op, stop, errors) = (op.clone(), stop.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if !op(client, n).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(t.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Phase {
        name: name.to_owned(),
        ops: all.len() as u64,
        seconds: elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

async fn seed(store: &Store) -> Vec<(WorkspaceId, String)> {
    let now = SystemClock.now_ms();
    let mut out = Vec::new();
    for i in 0..WORKSPACES {
        let ws = store
            .create_workspace(&format!("Bench {i}"), now)
            .await
            .unwrap();
        let grant = NewGrant {
            kind: GrantKind::Purchased,
            credits: Credits::new(1_000_000_000).unwrap(),
            expires_at: None,
            entry_type: EntryType::Purchase,
            source: "bench".into(),
            source_ref: None,
            note: None,
            meta: EntryMeta {
                actor: "bench".into(),
                description: "bench credits".into(),
                ..EntryMeta::default()
            },
        };
        store.grant(&ws, &grant, now).await.unwrap();
        let key = store.create_api_key(&ws, "bench", now).await.unwrap();
        out.push((ws, key));
    }
    out
}

/// Removes every budget of the bench's workspaces.
async fn remove_budgets(store: &Store, targets: &[(WorkspaceId, String)]) {
    let now = SystemClock.now_ms();
    for (ws, _) in targets {
        for budget in store.budgets(ws, now).await.unwrap() {
            store.remove_budget(ws, &budget.id, now).await.unwrap();
        }
    }
}

/// Three budgets that every bench charge of each workspace meets.
async fn add_three_budgets(store: &Store, targets: &[(WorkspaceId, String)]) {
    let now = SystemClock.now_ms();
    for (ws, key) in targets {
        let key_id = store.api_key_holder(key).await.unwrap().unwrap().key_id;
        for (scope, target, period) in [
            (Scope::ApiKey, key_id.as_str(), Period::Month),
            (Scope::ApiKey, key_id.as_str(), Period::Lifetime),
            (Scope::Project, "bench", Period::Day),
        ] {
            let budget = NewBudget {
                scope,
                target: target.to_owned(),
                action: None,
                period,
                limit: Credits::new(1_000_000_000_000).unwrap(),
                enforcement: Enforcement::Hard,
                threshold_percent: 100,
            };
            store.create_budget(ws, &budget, now).await.unwrap();
        }
    }
}

/// The bare-SQL phases' tables: `rows` accounts with a large balance, and a journal.
async fn create_bench_tables(store: &Store, rows: usize) {
    let pool = store.pool();
    sqlx::query("CREATE TABLE bench_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_journal (id BIGINT NOT NULL, account BIGINT NOT NULL, amount BIGINT NOT NULL, created_at BIGINT NOT NULL)").execute(pool).await.unwrap();
    for id in 0..rows as i64 {
        sqlx::query("INSERT INTO bench_accounts (id, balance) VALUES ($1, $2)")
            .bind(id)
            .bind(1_000_000_000_i64)
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn drop_bench_tables(store: &Store) {
    for table in ["bench_journal", "bench_accounts"] {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
}

/// The bare-SQL limit: one conditional UPDATE and one INSERT per transaction.
async fn bare_sql(store: &Store, name: &str, rows: usize, seconds: f64) -> Phase {
    let pool = store.pool().clone();
    create_bench_tables(store, rows).await;
    let phase = drive(name, seconds, move |client, n| {
        let pool = pool.clone();
        async move {
            let account = ((client as u64 * 7_919 + n) % rows as u64) as i64;
            let result: Result<(), sqlx::Error> = async {
                let mut tx = pool.begin().await?;
                let updated = sqlx::query("UPDATE bench_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
                    .bind(25_i64)
                    .bind(account)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if updated == 1 {
                    sqlx::query("INSERT INTO bench_journal (id, account, amount, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(n as i64)
                        .bind(account)
                        .bind(-25_i64)
                        .bind(0_i64)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await;
            result.is_ok()
        }
    })
    .await;
    drop_bench_tables(store).await;
    phase
}

async fn gate(
    base: &str,
    name: &str,
    targets: Arc<Vec<(WorkspaceId, String)>>,
    seconds: f64,
) -> Phase {
    // Keys unique to this phase: a key seen in an earlier phase would be answered as a replay.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let keys: Vec<String> = targets.iter().map(|(_, key)| format!("{key:?}")).collect();
    // Each wrk thread walks the workspaces with its own stride and numbers its own keys.
    let script = format!(
        r#"
local keys = {{ {keys} }}
local n = 0
local count = 0
function setup(thread)
  thread:set("no", count)
  count = count + 1
end
function request()
  n = n + 1
  local key = keys[((n * 7919 + no * 104729) % #keys) + 1]
  local body = '{{"idempotency_key":"{run}-' .. no .. '-' .. n .. '","action":"bench","credits":25,"resource":{{"project":"bench"}}}}'
  return wrk.format("POST", "/api/v1/usage", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }}, body)
end
"#,
        keys = keys.join(", ")
    );
    wrk(name, base, CLIENTS, seconds, &[], Some(&script)).await
}

/// Connections for the page phases, as a browser-facing load test would use.
const PAGE_CLIENTS: usize = 16;

/// Server-rendered pages signed in as the demo workspace's owner: `path` fetched by
/// `PAGE_CLIENTS` connections.
async fn pages(base: &str, name: &str, path: &str, seconds: f64) -> Phase {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{base}/login"))
        .header(reqwest::header::ORIGIN, base)
        .form(&[
            ("email", "owner@acme.test"),
            ("password", tally::demo::DEMO_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "the demo owner signs in");
    let cookie = signed_in
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tally_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    // wrk counts statuses only: the page is checked whole once before the load.
    let page = client
        .get(format!("{base}{path}"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{path} answers the signed-in owner");
    assert!(
        page.text().await.unwrap().contains("</html>"),
        "{path} is whole"
    );
    let header = format!("Cookie: {cookie}");
    wrk(
        name,
        &format!("{base}{path}"),
        PAGE_CLIENTS,
        seconds,
        &[header],
        None,
    )
    .await
}

/// Runs wrk (two threads, `connections` connections, keep-alive) at `url` for `seconds`,
/// with `script` deciding each request when given. The load comes from a separate process,
/// as pgbench's does, so the clients' own work does not run in the server's runtime. Any
/// answer other than 2xx or 3xx, and any socket error, counts as failed.
async fn wrk(
    name: &str,
    url: &str,
    connections: usize,
    seconds: f64,
    headers: &[String],
    script: Option<&str>,
) -> Phase {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", seconds.ceil() as u64))
        .arg("--latency");
    for header in headers {
        command.arg("-H").arg(header);
    }
    if let Some(script) = script {
        let path = dir.path().join("load.lua");
        std::fs::write(&path, script).unwrap();
        command.arg("-s").arg(path);
    }
    let output = command
        .arg(url)
        .output()
        .await
        .expect("wrk runs the HTTP load (apt-get install wrk)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_wrk(name, &report).unwrap_or_else(|| panic!("unreadable wrk report:\n{report}"))
}

/// Reads wrk's report: "N requests in 8.00s", the 50 % and 99 % latencies, and the failures.
fn parse_wrk(name: &str, report: &str) -> Option<Phase> {
    let duration = |text: &str| -> Option<f64> {
        let split = text.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().ok()?;
        Some(match unit {
            "us" => number / 1_000_000.0,
            "ms" => number / 1_000.0,
            "s" => number,
            "m" => number * 60.0,
            _ => return None,
        })
    };
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (mut ops, mut elapsed, mut p50, mut p99, mut errors) = (None, None, None, None, 0);
    for line in report.lines() {
        let w = words(line);
        match w.as_slice() {
            [n, requests, in_, took, ..] if requests == "requests" && in_ == "in" => {
                ops = n.parse::<u64>().ok();
                elapsed = duration(took.trim_end_matches(','));
            }
            [p, at] if p == "50%" => p50 = duration(at),
            [p, at] if p == "99%" => p99 = duration(at),
            [non, ..] if non == "Non-2xx" => errors += w.last()?.parse::<u64>().ok()?,
            [socket, errors_word, ..] if socket == "Socket" && errors_word == "errors:" => {
                errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Some(Phase {
        name: name.to_owned(),
        ops: ops?,
        seconds: elapsed?,
        p50_ms: p50? * 1_000.0,
        p99_ms: p99? * 1_000.0,
        errors,
    })
}

/// The process's resident memory, in MB (server, client and database driver together).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// PostgreSQL's own limit as its own tool measures it: `pgbench` with `CLIENTS` connections
/// running the bare-SQL transaction (one conditional `UPDATE`, one journal `INSERT`) over
/// `rows` rows, each transaction's latency read from pgbench's log. `None` when pgbench is
/// not installed.
async fn pgbench(store: &Store, url: &str, name: &str, rows: usize, seconds: f64) -> Option<Phase> {
    create_bench_tables(store, rows).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("charge.sql");
    std::fs::write(
        &script,
        format!(
            "\\set account random(0, {})\n\
             BEGIN;\n\
             UPDATE bench_accounts SET balance = balance - 25 WHERE id = :account AND balance >= 25;\n\
             INSERT INTO bench_journal (id, account, amount, created_at) VALUES (:client_id, :account, -25, 0);\n\
             END;\n",
            rows - 1
        ),
    )
    .unwrap();
    let started = Instant::now();
    let output = tokio::process::Command::new("pgbench")
        .current_dir(dir.path())
        .args(["-n", "-l", "--log-prefix=tx", "-j", "2"])
        .arg(format!("-c{CLIENTS}"))
        .arg(format!("-T{}", seconds.ceil() as u64))
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let result = match output {
        Ok(output) if output.status.success() => {
            let mut latencies = Vec::new();
            let mut failed = 0;
            for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
                if !entry.file_name().to_string_lossy().starts_with("tx") {
                    continue;
                }
                // "client transaction latency_us script epoch_s epoch_us"; a failed one
                // says "failed" (or "skipped") in place of its latency.
                for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
                    match line.split_whitespace().nth(2).map(str::parse::<u64>) {
                        Some(Ok(us)) => latencies.push(Duration::from_micros(us)),
                        _ => failed += 1,
                    }
                }
            }
            latencies.sort();
            // pgbench's own duration, as its tps does (connections are opened before it).
            let seconds = seconds.ceil();
            Some(Phase {
                name: name.to_owned(),
                ops: latencies.len() as u64,
                seconds,
                p50_ms: percentile(&latencies, 0.50),
                p99_ms: percentile(&latencies, 0.99),
                errors: failed,
            })
        }
        Ok(output) => {
            eprintln!(
                "pgbench failed after {elapsed:.1} s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            None
        }
        Err(err) => {
            eprintln!(
                "pgbench could not run ({err}); the gate is compared with the sqlx loop only"
            );
            None
        }
    };
    drop_bench_tables(store).await;
    result
}

/// Steady charges of one workspace, paced at `STEADY_CLIENTS` × one every `STEADY_EVERY`,
/// while (with `flood`) another workspace's `FLOOD_CLIENTS` charge as fast as they can. The
/// steady workspace's latency and failures are the figures (its pace is held by the clock,
/// whatever the answers' latency); the flood's answers are counted as 200s and 503s.
const STEADY_CLIENTS: usize = 4;
const STEADY_EVERY: Duration = Duration::from_millis(20);
const FLOOD_CLIENTS: usize = 64;

async fn steady_beside_flood(
    base: &str,
    name: &str,
    steady_key: String,
    flood_key: Option<String>,
    seconds: f64,
) -> (Phase, Option<(u64, u64, u64)>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(STEADY_CLIENTS + FLOOD_CLIENTS)
        .build()
        .unwrap();
    let url = format!("{base}/api/v1/usage");
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let flooders: Vec<_> = match &flood_key {
        None => Vec::new(),
        Some(key) => (0..FLOOD_CLIENTS)
            .map(|c| {
                let (client, url, key, stop, counts) =
                    (client.clone(), url.clone(), key.clone(), stop.clone(), counts.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let body = serde_json::json!({"idempotency_key": format!("flood-{run}-{c}-{n}"), "action": "bench", "credits": 1});
                        let slot = match client.post(&url).bearer_auth(&key).json(&body).send().await {
                            Ok(r) if r.status() == 200 => 0,
                            Ok(r) if r.status() == 503 => 1,
                            _ => 2,
                        };
                        counts[slot].fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect(),
    };
    // The flood gets going before the steady workspace is measured.
    if flood_key.is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let steady: Vec<_> = (0..STEADY_CLIENTS)
        .map(|c| {
            let (client, url, key, stop, errors) =
                (client.clone(), url.clone(), steady_key.clone(), stop.clone(), errors.clone());
            tokio::spawn(async move {
                // Open loop: each tick sends its charge whether or not the last one has been
                // answered, so a slow answer shows as latency instead of lowering the pace.
                let mut sent = Vec::new();
                let mut tick = tokio::time::interval(STEADY_EVERY);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let body = serde_json::json!({"idempotency_key": format!("steady-{run}-{c}-{n}"), "action": "bench", "credits": 1});
                    let (client, url, key, errors) =
                        (client.clone(), url.clone(), key.clone(), errors.clone());
                    sent.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let ok = matches!(client.post(&url).bearer_auth(&key).json(&body).send().await, Ok(r) if r.status() == 200);
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        t.elapsed()
                    }));
                    n += 1;
                }
                let mut latencies = Vec::with_capacity(sent.len());
                for charge in sent {
                    latencies.push(charge.await.unwrap());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for task in steady {
        all.extend(task.await.unwrap());
    }
    for task in flooders {
        let _ = task.await;
    }
    all.sort();
    let phase = Phase {
        name: name.to_owned(),
        ops: all.len() as u64,
        seconds: elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        errors: errors.load(Ordering::Relaxed),
    };
    let flood = flood_key.map(|_| {
        (
            counts[0].load(Ordering::Relaxed),
            counts[1].load(Ordering::Relaxed),
            counts[2].load(Ordering::Relaxed),
        )
    });
    (phase, flood)
}

/// Two runs of one phase as one: their operations over their time, their latencies averaged.
fn mean(a: &Phase, b: &Phase) -> Phase {
    Phase {
        name: format!("{} (mean of two)", a.name),
        ops: a.ops + b.ops,
        seconds: a.seconds + b.seconds,
        p50_ms: (a.p50_ms + b.p50_ms) / 2.0,
        p99_ms: (a.p99_ms + b.p99_ms) / 2.0,
        errors: a.errors + b.errors,
    }
}

async fn bench_backend(label: &str, url: &str, seconds: f64) -> Vec<Phase> {
    let store = Store::connect(
        url,
        &StoreOptions {
            max_connections: 16,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    tally::demo::seed(&store, SystemClock.now_ms())
        .await
        .unwrap();
    let targets = seed(&store).await;
    let hot = Arc::new(vec![targets[0].clone()]);
    let all = Arc::new(targets);

    // The server's defaults, but for the gate's shards, which a run may set to compare.
    let mut config = Config::from_lookup(|name| {
        (name == "TALLY_GATE_SHARDS")
            .then(|| std::env::var(name).ok())
            .flatten()
    })
    .unwrap();
    config.database_url = url.to_owned();
    config.site_addr = "127.0.0.1:0".parse().unwrap();
    config.store.max_connections = 16;
    let app = tally::startup::Application::build(config, store.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr());
    let server = tokio::spawn(app.run_until_stopped());
    let at_rest = rss_mb();

    let gate_only = std::env::var("TALLY_BENCH_GATE_ONLY").is_ok_and(|v| v == "1");
    if gate_only {
        let spread = format!("{label}: gate over HTTP, {WORKSPACES} workspaces");
        let hot_name = format!("{label}: gate over HTTP, one hot workspace");
        let mut phases = vec![
            gate(&base, &spread, all.clone(), seconds).await,
            gate(&base, &hot_name, hot.clone(), seconds).await,
        ];
        server.abort();
        phases.extend(limits(&store, label, url, seconds).await);
        store.close().await;
        return phases;
    }
    // Server-rendered pages, signed in as the demo owner (whose workspace has the demo's
    // month of history), before the gate phases grow the database.
    let mut phases = vec![
        pages(
            &base,
            &format!("{label}: Billing page, {PAGE_CLIENTS} connections"),
            "/billing",
            seconds,
        )
        .await,
        pages(
            &base,
            &format!("{label}: Billing history page, {PAGE_CLIENTS} connections"),
            "/billing/history",
            seconds,
        )
        .await,
    ];

    let (alone, _) = steady_beside_flood(
        &base,
        &format!("{label}: one workspace at a steady 200/s, alone"),
        all[1].1.clone(),
        None,
        seconds,
    )
    .await;
    let (beside, flood) = steady_beside_flood(
        &base,
        &format!("{label}: the same, while another workspace floods the gate"),
        all[2].1.clone(),
        Some(all[3].1.clone()),
        seconds,
    )
    .await;
    if let Some((ok, busy, other)) = flood {
        eprintln!("{label}: the flooding workspace got {ok} charges through, {busy} answered 503 overloaded, {other} other");
    }
    phases.extend([alone, beside]);
    // The gate with and without three budgets on every charge (the key's monthly and
    // lifetime budgets and the project's daily one, limits far above what a run spends), in
    // the order without, with, with, without: the database grows as the run goes on, and the
    // means of each pair sit at the same average point of it.
    let spread = format!("{label}: gate over HTTP, {WORKSPACES} workspaces");
    let hot_name = format!("{label}: gate over HTTP, one hot workspace");
    let with = ", three budgets per charge";
    let pair = |suffix: &'static str| {
        let (base, all, hot) = (base.clone(), all.clone(), hot.clone());
        let (spread, hot_name) = (format!("{spread}{suffix}"), format!("{hot_name}{suffix}"));
        async move {
            [
                gate(&base, &spread, all, seconds).await,
                gate(&base, &hot_name, hot, seconds).await,
            ]
        }
    };
    let first = pair("").await;
    add_three_budgets(&store, &all).await;
    let second = pair(with).await;
    let third = pair(with).await;
    remove_budgets(&store, &all).await;
    let fourth = pair("").await;
    for i in 0..2 {
        let without = mean(&first[i], &fourth[i]);
        let budgeted = mean(&second[i], &third[i]);
        eprintln!(
            "{}: with three budgets per charge, {:.0} % of the throughput without",
            without.name,
            100.0 * budgeted.ops as f64 / budgeted.seconds / (without.ops as f64 / without.seconds)
        );
        phases.push(without);
        phases.push(budgeted);
    }
    eprintln!(
        "{label}: resident memory {at_rest:.0} MB at rest, {:.0} MB after the load (the bench process: server, clients and driver)",
        rss_mb()
    );
    server.abort();
    phases.extend(limits(&store, label, url, seconds).await);
    store.close().await;
    phases
}

/// The database's own limits: the bare-SQL loop over as many rows as workspaces and on one
/// row, and on PostgreSQL pgbench likewise.
async fn limits(store: &Store, label: &str, url: &str, seconds: f64) -> Vec<Phase> {
    let mut phases = Vec::new();
    phases.push(
        bare_sql(
            store,
            &format!("{label}: bare SQL, {WORKSPACES} rows"),
            WORKSPACES,
            seconds,
        )
        .await,
    );
    phases.push(bare_sql(store, &format!("{label}: bare SQL, one row"), 1, seconds).await);
    if store.backend() == Backend::Postgres {
        let spread = format!("{label}: pgbench, {WORKSPACES} rows");
        phases.extend(pgbench(store, url, &spread, WORKSPACES, seconds).await);
        let hot = format!("{label}: pgbench, one row");
        phases.extend(pgbench(store, url, &hot, 1, seconds).await);
    }
    phases
}

fn main() {
    let seconds: f64 = std::env::var("TALLY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut phases = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let only = std::env::var("TALLY_BENCH_ONLY").unwrap_or_default();
        if only != "postgres" {
            phases.extend(
                bench_backend(
                    "SQLite",
                    &format!("sqlite://{}/bench.db", dir.path().display()),
                    seconds,
                )
                .await,
            );
        }

        let admin_url = std::env::var("TALLY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let admin = if only == "sqlite" {
            Err("skipped (TALLY_BENCH_ONLY=sqlite)".to_owned())
        } else {
            Store::connect(
                &admin_url,
                &StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
        };
        match admin {
            Ok(admin) => {
                assert_eq!(admin.backend(), Backend::Postgres);
                let name = format!("tally_bench_{}", std::process::id());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(admin.pool())
                    .await
                    .unwrap();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url)
                    .to_owned();
                phases
                    .extend(bench_backend("PostgreSQL", &format!("{base}/{name}"), seconds).await);
                sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await
                    .unwrap();
            }
            Err(err) => eprintln!("PostgreSQL not reachable, measured SQLite only: {err}"),
        }

        println!("| phase | ops | ops/s | p50 ms | p99 ms | failed |");
        println!("|---|---:|---:|---:|---:|---:|");
        for p in &phases {
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
                p.name,
                p.ops,
                p.ops as f64 / p.seconds,
                p.p50_ms,
                p.p99_ms,
                p.errors
            );
        }
        println!();
        let rate = |name: &str| {
            phases
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.ops as f64 / p.seconds)
        };
        let gate = |label: &str, which: &str| {
            rate(&format!("{label}: gate over HTTP, {which} (mean of two)"))
                .or_else(|| rate(&format!("{label}: gate over HTTP, {which}")))
        };
        let spread = format!("{WORKSPACES} workspaces");
        let comparisons = [
            (
                "SQLite",
                gate("SQLite", &spread),
                rate(&format!("SQLite: bare SQL, {WORKSPACES} rows")),
                "the bare-SQL loop over as many rows",
            ),
            (
                "SQLite",
                gate("SQLite", "one hot workspace"),
                rate("SQLite: bare SQL, one row"),
                "the bare-SQL loop on one row",
            ),
            (
                "PostgreSQL",
                gate("PostgreSQL", &spread),
                rate(&format!("PostgreSQL: pgbench, {WORKSPACES} rows")),
                "pgbench over as many rows",
            ),
            (
                "PostgreSQL",
                gate("PostgreSQL", "one hot workspace"),
                rate("PostgreSQL: pgbench, one row"),
                "pgbench on one row",
            ),
        ];
        for (label, gate, limit, what) in comparisons {
            if let (Some(gate), Some(limit)) = (gate, limit) {
                println!(
                    "- {label}: the gate ({}) made {:.2} × {what}.",
                    if what.contains("one row") {
                        "one hot workspace"
                    } else {
                        "across workspaces"
                    },
                    gate / limit
                );
            }
        }
    });
}
