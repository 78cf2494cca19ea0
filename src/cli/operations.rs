//! `tally serve`, `tally audit` and `tally demo`.

use super::Context;
use crate::startup::Application;
use anyhow::{bail, Context as _};

/// Serves the site, the API and the background jobs until stopped.
pub(super) async fn serve(ctx: Context) -> anyhow::Result<()> {
    let Context {
        store,
        config,
        clock,
        ..
    } = ctx;
    let outbound = crate::outbound::Outbound::new(&config.outbound)?;
    let unit = config.storefront.unit.clone();
    let app = Application::build(config, store.clone(), clock.clone()).await?;
    crate::jobs::spawn_background_jobs(store, clock, Some(app.payments()), outbound, unit);
    eprintln!("Tally is serving on http://{}", app.addr());
    app.run_until_stopped()
        .await
        .context("the server stopped with an error")
}

/// Re-derives every workspace's balance from its journal; fails when any drifts.
pub(super) async fn audit(ctx: &Context) -> anyhow::Result<()> {
    let store = &ctx.store;
    let ids = store.workspace_ids().await?;
    let mut drifted = 0;
    for id in &ids {
        let audit = store.audit(id).await?;
        if !audit.balanced() {
            drifted += 1;
            eprintln!("DRIFT {id}: {audit:?}");
        }
    }
    if drifted > 0 {
        bail!("{drifted} of {} workspaces do not balance", ids.len());
    }
    eprintln!(
        "All {} workspaces balance: journal, lots, holds and running balances agree.",
        ids.len()
    );
    Ok(())
}

/// Creates (or refreshes) the demo data.
pub(super) async fn demo(ctx: &Context) -> anyhow::Result<()> {
    let demo = crate::demo::seed(&ctx.store, ctx.now).await?;
    eprintln!("{}", demo.describe());
    Ok(())
}
