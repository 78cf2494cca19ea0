use crate::billing::Transaction;
use crate::format;
use leptos::either::Either;
use leptos::prelude::*;

/// Movements with their running balance, newest first. A table on wide screens; each row
/// stacks into a block at phone width (see the CSS), keeping its labels.
#[component]
pub fn TransactionTable(
    transactions: Vec<Transaction>,
    #[prop(into)] caption: String,
    #[prop(into)] empty: String,
) -> impl IntoView {
    if transactions.is_empty() {
        return Either::Left(view! { <p class="empty" data-testid="no-transactions">{empty}</p> });
    }
    let unit = format::unit();
    Either::Right(view! {
        <table class="transactions" data-testid="transactions">
            <caption class="visually-hidden">{caption}</caption>
            <thead>
                <tr>
                    <th scope="col">"Date"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"Description"</th>
                    <th scope="col" class="num">"Amount"</th>
                    <th scope="col" class="num">"Balance after"</th>
                </tr>
            </thead>
            <tbody>
                {transactions
                    .into_iter()
                    .map(|t| {
                        let detail = [t.resource.model.clone(), t.resource.project.clone()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" · ");
                        let direction = if t.amount >= 0 { "credit" } else { "debit" };
                        view! {
                            <tr data-id=t.id.clone() data-type=t.entry_type.as_str()>
                                <td data-label="Date">
                                    <time datetime=t.created_at.to_rfc3339()>{format::date_time(&t.created_at)}</time>
                                </td>
                                <td data-label="Type">
                                    <span class=format!("type-tag type-{}", t.entry_type.as_str())>{t.entry_type.label()}</span>
                                </td>
                                <td data-label="Description">
                                    {t.description.clone()}
                                    {(!detail.is_empty()).then(|| view! { <span class="muted detail">{detail}</span> })}
                                </td>
                                <td data-label="Amount" class=format!("num amount {direction}")>{unit.signed(t.amount)}</td>
                                <td data-label="Balance after" class="num balance-after">{unit.figure(t.balance_after)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    })
}
