//! The examples in docs/integration/ run as INTEGRATION.md says, against a running Tally:
//! the gate from curl, Node and Python, and the webhook checks in Node and Python.

use crate::fixture::Fixture;
use crate::support::buying::balance;
use std::process::Output;

fn example(name: &str) -> String {
    format!("{}/docs/integration/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn run(program: &str, script: &str, env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(program)
        .arg(example(script))
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"))
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn the_gate_examples_charge_hold_settle_and_refund() {
    let f = Fixture::new().await;
    let env = [
        ("TALLY_URL", f.app.base.as_str()),
        ("TALLY_API_KEY", f.acme_key.as_str()),
    ];
    let start = balance(&f.app, &f.acme).await;

    let curl = run("bash", "gate.sh", &env).await;
    assert!(curl.status.success(), "{}", said(&curl));
    assert!(said(&curl).starts_with("charged:"), "{}", said(&curl));
    assert_eq!(balance(&f.app, &f.acme).await, start - 25);

    let node = run("node", "gate.mjs", &env).await;
    assert!(node.status.success(), "{}", said(&node));
    let settled: serde_json::Value = serde_json::from_slice(&node.stdout).unwrap();
    assert_eq!(
        (settled["held"].as_i64(), settled["charged"].as_i64()),
        (Some(100), Some(60))
    );
    assert_eq!(balance(&f.app, &f.acme).await, start - 25 - 60);

    let python = run("python3", "gate.py", &env).await;
    assert!(python.status.success(), "{}", said(&python));
    let refunded: serde_json::Value = serde_json::from_slice(&python.stdout).unwrap();
    assert_eq!(
        (refunded["charged"].as_i64(), refunded["refunded"].as_i64()),
        (Some(40), Some(40))
    );
    assert_eq!(balance(&f.app, &f.acme).await, start - 25 - 60);
}

#[tokio::test]
async fn the_webhook_examples_accept_tallys_signature_and_nothing_else() {
    let secret = "whsec_example_secret";
    let body = r#"{"id":"ntf_1","kind":"low_balance","workspace_id":"ws_acmeai0demo0000001"}"#;
    let now = chrono::Utc::now().timestamp();
    let good = tally::notifications::outbox::signature(secret, now, body);
    let stale = tally::notifications::outbox::signature(secret, now - 600, body);
    let other = tally::notifications::outbox::signature("another secret", now, body);
    for (program, script) in [
        ("node", "verify-webhook.mjs"),
        ("python3", "verify_webhook.py"),
    ] {
        let check = |signature: String, body: String| async move {
            run(
                program,
                script,
                &[
                    ("TALLY_SECRET", secret),
                    ("TALLY_SIGNATURE", &signature),
                    ("TALLY_BODY", &body),
                ],
            )
            .await
        };
        let ok = check(good.clone(), body.to_owned()).await;
        assert!(ok.status.success(), "{script}: {}", said(&ok));
        for (case, signature, text) in [
            (
                "a changed body",
                good.clone(),
                body.replace("low_balance", "credits_granted"),
            ),
            ("an old signature", stale.clone(), body.to_owned()),
            ("another secret", other.clone(), body.to_owned()),
            ("no signature", String::new(), body.to_owned()),
        ] {
            let refused = check(signature, text).await;
            assert!(!refused.status.success(), "{script} accepted {case}");
        }
    }
}
