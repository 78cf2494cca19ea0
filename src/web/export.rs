use crate::api::{ApiError, Caller};
use crate::ledger::views::{history, MAX_PAGE};
use crate::state::AppState;
use app::billing::{HistoryFilter, Transaction};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::HashMap;

/// The most rows one export holds; a larger history is exported by date range.
const MAX_EXPORT_ROWS: usize = 100_000;

/// `GET /billing/history.csv`: every movement the filters select, newest first, streamed a
/// page at a time, so an export of any size holds one page in memory.
#[utoipa::path(get, path = "/billing/history.csv", tag = "billing", operation_id = "export_history",
    params(
        ("type" = Option<String>, Query, pattern = r"^$|^(purchase|auto_reload|grant|consumption|refund|expiry|adjustment)$", description = "Only movements of this type; empty for all."),
        ("from" = Option<String>, Query, pattern = r"^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "From this UTC day (YYYY-MM-DD), inclusive; empty for no bound."),
        ("to" = Option<String>, Query, pattern = r"^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "To this UTC day (YYYY-MM-DD), inclusive, not before `from`; empty for no bound."),
    ),
    responses(
        (status = 200, description = "Every movement the filters select, newest first, as CSV (at most 100,000 rows).", content_type = "text/csv", body = String),
        (status = 400, description = "A malformed filter (`invalid_request`).", body = crate::api::ErrorAnswer),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = crate::api::ErrorAnswer),
        (status = 403, description = "Guests, and members shown only their project's pool, may not export (`forbidden`).", body = crate::api::ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn history_csv(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_whole_balance()?;
    let filter = HistoryFilter::from_query(
        params.get("type").map(String::as_str),
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
    )
    .map_err(ApiError::Invalid)?;
    // The first page is read before answering, so a failure is still a clean error.
    let (first, next) = history(
        &mut state.store.reads().await?,
        &caller.workspace.id,
        &filter,
        None,
        MAX_PAGE,
    )
    .await?;
    let mut head = String::from(
        "id,created_at,type,amount,balance_after,description,action,model,project,session\n",
    );
    head.extend(first.iter().map(csv_row));
    let rows = first.len();
    let name = format!("tally-credits-{}.csv", caller.workspace.id);
    let pages = futures_util::stream::unfold(Some((next, rows)), move |cursor| {
        let (state, workspace, filter) =
            (state.clone(), caller.workspace.id.clone(), filter.clone());
        async move {
            let (Some(cursor), rows) = cursor? else {
                return None;
            };
            if rows >= MAX_EXPORT_ROWS {
                return None;
            }
            // A connection per page, not one for the whole download: a slow reader would hold it.
            let page = match state.store.reads().await {
                Ok(mut reads) => {
                    history(&mut reads, &workspace, &filter, Some(&cursor), MAX_PAGE).await
                }
                Err(err) => Err(err.into()),
            };
            match page {
                Ok((page, next)) => {
                    let chunk: String = page.iter().map(csv_row).collect();
                    Some((Ok(chunk), Some((next, rows + page.len()))))
                }
                Err(err) => {
                    // The answer has begun: cutting it short is all that is left.
                    tracing::error!(error = %err, "a CSV export stopped part way");
                    Some((Err(std::io::Error::other("the export stopped")), None))
                }
            }
        }
    });
    // Fused: a body reader may poll again after the end (the compression layer does), which
    // an unfused `unfold` answers with a panic.
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) })
        .chain(pages)
        .fuse();
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn csv_row(t: &Transaction) -> String {
    let fields = [
        t.id.clone(),
        t.created_at.to_rfc3339(),
        t.entry_type.as_str().to_owned(),
        t.amount.to_string(),
        t.balance_after.get().to_string(),
        text_field(&t.description),
        text_field(t.resource.action.as_deref().unwrap_or("")),
        text_field(t.resource.model.as_deref().unwrap_or("")),
        text_field(t.resource.project.as_deref().unwrap_or("")),
        text_field(t.resource.session.as_deref().unwrap_or("")),
    ];
    let mut line = fields.map(|f| quote(&f)).join(",");
    line.push('\n');
    line
}

/// Text that a spreadsheet would run as a formula is prefixed with an apostrophe.
fn text_field(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(text_field("plain"), "plain");
    }
}
