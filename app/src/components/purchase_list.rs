//! The purchases and their receipts.

use super::{CopySupportDetails, PurchaseStatusBadge};
use crate::domain::{PurchaseStatus, WorkspaceId};
use crate::format;
use crate::purchases::PurchaseView;
use leptos::prelude::*;

/// Purchases and their receipts.
#[component]
pub fn PurchaseList(
    purchases: Vec<PurchaseView>,
    workspace_id: WorkspaceId,
    workspace_name: String,
) -> impl IntoView {
    if purchases.is_empty() {
        return view! {
            <section id="purchases" class="card" aria-labelledby="purchases-heading">
                <h2 id="purchases-heading">"Purchases"</h2>
                <p class="empty">"No purchases yet. Packs you buy show here with their receipts."</p>
            </section>
        }
        .into_any();
    }
    let unit = format::unit();
    let rows = purchases
        .into_iter()
        .map(|p| {
            let details = p.support_details(&workspace_id, &workspace_name);
            let href = format!("/billing/purchases/{}", p.id);
            view! {
                <tr data-testid="purchase-row">
                    <td>{format::date_time(&p.created_at)}</td>
                    <td><a href=href>{p.description.clone()}</a>
                        {p.failure_reason.clone().filter(|_| !matches!(p.status, PurchaseStatus::Succeeded)).map(|r| view! { <div class="muted small">{r}</div> })}
                    </td>
                    <td class="num">{format!("{} {}", p.amount, p.amount.currency().as_str().to_ascii_uppercase())}</td>
                    <td class="num">{unit.figure(p.total_credits())}</td>
                    <td><PurchaseStatusBadge status=p.status/></td>
                    <td>{p.payment_method.clone().unwrap_or_else(|| "—".into())}</td>
                    <td>
                        {p.receipt_url.clone().map(|url| view! { <a href=url target="_blank" rel="noopener">"Receipt"</a> })}
                        " "
                        <CopySupportDetails details/>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="purchases" class="card" aria-labelledby="purchases-heading">
            <h2 id="purchases-heading">"Purchases"</h2>
            <div class="table-scroll">
                <table class="numbers purchases-table">
                    <caption class="visually-hidden">"Credit purchases, newest first, with receipts"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Date"</th>
                            <th scope="col">"Item"</th>
                            <th scope="col" class="num">"Amount"</th>
                            <th scope="col" class="num">"Credits"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Paid with"</th>
                            <th scope="col">"Receipt"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
