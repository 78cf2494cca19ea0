//! A purchase's status as a badge.

use crate::domain::PurchaseStatus;
use leptos::prelude::*;

/// The status of a purchase as a badge.
#[component]
pub fn PurchaseStatusBadge(status: PurchaseStatus) -> impl IntoView {
    let class = match status {
        PurchaseStatus::Succeeded => "badge badge-good",
        PurchaseStatus::Open | PurchaseStatus::Processing => "badge badge-info",
        PurchaseStatus::Failed | PurchaseStatus::Reversed => "badge badge-bad",
        PurchaseStatus::Canceled => "badge",
    };
    view! { <span class=class data-testid="purchase-status">{status.label()}</span> }
}
