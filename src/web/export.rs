use crate::api::{ApiError, Caller};
use crate::billing::{history, MAX_PAGE};
use crate::startup::AppState;
use app::billing::{HistoryFilter, Transaction};
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// The most rows one export holds; a larger history is exported by date range.
const MAX_EXPORT_ROWS: usize = 100_000;

/// `GET /billing/history.csv`: every movement the filters select, newest first.
pub async fn history_csv(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_billing_reader()?;
    let filter = HistoryFilter::from_query(
        params.get("type").map(String::as_str),
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
    )
    .map_err(ApiError::Invalid)?;
    let mut out = String::from(
        "id,created_at,type,amount,balance_after,description,action,model,project,session\n",
    );
    let mut cursor: Option<String> = None;
    let mut rows = 0;
    loop {
        let (page, next) = history(
            &state.store,
            &caller.workspace,
            &filter,
            cursor.as_deref(),
            MAX_PAGE,
        )
        .await?;
        rows += page.len();
        for t in &page {
            out.push_str(&csv_row(t));
        }
        match next {
            Some(next) if rows < MAX_EXPORT_ROWS => cursor = Some(next),
            _ => break,
        }
    }
    let name = format!("tally-credits-{}.csv", caller.workspace.id);
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
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
