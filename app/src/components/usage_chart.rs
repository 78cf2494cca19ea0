use crate::billing::{UsageBreakdown, UsageReport};
use crate::domain::{CreditUnit, Credits};
use crate::format::push_escaped;
use leptos::either::Either;
use leptos::prelude::*;
use std::fmt::Write;

/// Colours of the chart's series, in the order of the report's keys ("Other" last is grey).
const PALETTE: [&str; 6] = [
    "#3a2fd1", "#18a17a", "#e39b1b", "#d14a6b", "#2b8fd6", "#8a8799",
];
const WIDTH: i64 = 720;
const HEIGHT: i64 = 220;
const LEFT: i64 = 52;
const BOTTOM: i64 = 26;
const TOP: i64 = 10;

/// The smallest "round" number at or above `n` for the y axis: 1, 2 or 5 times a power of 10.
fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= n {
                return step * m;
            }
        }
        step *= 10;
    }
}

fn color(index: usize, keys: usize, has_other: bool) -> &'static str {
    if has_other && index == keys - 1 {
        PALETTE[5]
    } else {
        PALETTE[index % 5]
    }
}

/// Credits used per day over the last 30 days, stacked by action or model: an SVG drawn on the
/// server, with the same numbers in a table for screen readers and for reading exact values.
#[component]
pub fn UsageChart(report: UsageReport) -> impl IntoView {
    let by = report.by;
    let toggle = move |target: UsageBreakdown, label: &'static str| {
        let current = by == target;
        view! {
            <a
                href=format!("/billing?usage_by={}#usage-heading", target.as_str())
                class="segment"
                class:active=current
                aria-current=if current { "true" } else { "false" }
            >
                {label}
            </a>
        }
    };
    let header = view! {
        <div class="card-head">
            <h2 id="usage-heading">"Usage, last 30 days"</h2>
            <nav class="segmented" aria-label="Break usage down">
                {toggle(UsageBreakdown::Action, "By action")}
                {toggle(UsageBreakdown::Model, "By model")}
            </nav>
        </div>
    };
    if report.total == 0 {
        return Either::Left(view! {
            <section class="card" aria-labelledby="usage-heading">
                {header}
                <p class="empty">"No AI usage in the last 30 days. Credits used by AI actions will be charted here by day."</p>
            </section>
        });
    }
    let unit = crate::format::unit();
    let keys = &report.keys;
    let has_other = has_other(keys);
    let plot = plot_markup(&report, &unit);
    let legend = keys
        .iter()
        .enumerate()
        // An SVG swatch: its colour is an attribute, not an inline style the CSP refuses.
        .map(|(k, key)| view! { <li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill=color(k, keys.len(), has_other)/></svg>{key.clone()}</li> })
        .collect_view();
    let head_cells = keys
        .iter()
        .map(|k| view! { <th scope="col" class="num">{k.clone()}</th> })
        .collect_view();
    let rows = table_rows_markup(&report, &unit);
    let summary = format!(
        "{} used in the last 30 days",
        unit.amount(Credits::new(report.total).unwrap_or_default())
    );
    Either::Right(view! {
        <section class="card" aria-labelledby="usage-heading">
            {header}
            <p class="muted" data-testid="usage-total">{summary.clone()}</p>
            <svg class="usage-chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=format!("Bar chart: {summary}, by day. The table below has the numbers.") inner_html=plot></svg>
            <ul class="legend">{legend}</ul>
            <details class="usage-table">
                <summary>"Show the numbers"</summary>
                <div class="table-scroll">
                    <table class="numbers">
                        <caption class="visually-hidden">"Credits used per day"</caption>
                        <thead><tr><th scope="col">"Day"</th><th scope="col" class="num">"Total"</th>{head_cells}</tr></thead>
                        <tbody inner_html=rows></tbody>
                    </table>
                </div>
            </details>
        </section>
    })
}

/// Whether the last key gathers the smaller ones ("Other", drawn grey).
fn has_other(keys: &[String]) -> bool {
    keys.last().is_some_and(|k| k == "Other") && keys.len() > 1
}

/// An amount as the chart's axis and table show it.
fn shown(unit: &CreditUnit, value: i64) -> String {
    unit.figure(Credits::new(value).unwrap_or_default())
}

// The plot and the numbers' rows are written as markup in one string: a few hundred small
// elements the browser never updates, which as views cost the Billing page's server a fifth
// of its time. Every text in them goes through `push_escaped` (the chart's keys are actions
// and models the host product named).

/// The chart's inside: the grid lines with their figures, then one group of stacked bars per
/// day (each bar titled with its day, key and amount) and a date under every seventh.
fn plot_markup(report: &UsageReport, unit: &CreditUnit) -> String {
    let keys = &report.keys;
    let has_other = has_other(keys);
    let max = nice_ceiling(
        report
            .days
            .iter()
            .map(|d| d.total)
            .max()
            .unwrap_or(1)
            .max(1),
    );
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - 8) / report.days.len().max(1) as i64;
    let bar = (slot * 7 / 10).max(2);
    let y = |value: i64| TOP + plot_h - value * plot_h / max;
    let mut svg = String::with_capacity(4096 + report.days.len() * 160);
    for v in [0, max / 2, max] {
        let _ = write!(
            svg,
            r#"<g class="grid"><line x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}"></line><text x="{x}" y="{ty}" text-anchor="end">"#,
            y = y(v),
            x = LEFT - 6,
            ty = y(v) + 4,
        );
        push_escaped(&mut svg, &shown(unit, v));
        svg.push_str("</text></g>");
    }
    let last = report.days.len().saturating_sub(1);
    for (i, day) in report.days.iter().enumerate() {
        let x = LEFT + i as i64 * slot + (slot - bar) / 2;
        let date = crate::format::day_month(&day.date);
        svg.push_str("<g>");
        let mut base = 0;
        for (k, v) in day.parts.iter().enumerate().filter(|(_, v)| **v > 0) {
            let top = y(base + v);
            let height = (y(base) - top).max(1);
            base += v;
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{top}" width="{bar}" height="{height}" fill="{fill}"><title>"#,
                fill = color(k, keys.len(), has_other),
            );
            push_escaped(&mut svg, &date);
            svg.push_str(" · ");
            push_escaped(&mut svg, keys.get(k).map_or("", String::as_str));
            svg.push_str(": ");
            push_escaped(&mut svg, &unit.amount(Credits::new(*v).unwrap_or_default()));
            svg.push_str("</title></rect>");
        }
        if (last - i).is_multiple_of(7) {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{mid}" y="{ty}" text-anchor="middle">"#,
                mid = x + bar / 2,
                ty = HEIGHT - 8,
            );
            push_escaped(&mut svg, &date);
            svg.push_str("</text>");
        }
        svg.push_str("</g>");
    }
    svg
}

/// The numbers table's rows: each day with use, newest first, its total and each key's part.
fn table_rows_markup(report: &UsageReport, unit: &CreditUnit) -> String {
    let mut rows = String::with_capacity(report.days.len() * (80 + report.keys.len() * 32));
    for day in report.days.iter().rev().filter(|d| d.total > 0) {
        rows.push_str(r#"<tr><th scope="row">"#);
        push_escaped(&mut rows, &crate::format::day(&day.date));
        rows.push_str(r#"</th><td class="num">"#);
        push_escaped(&mut rows, &shown(unit, day.total));
        rows.push_str("</td>");
        for v in &day.parts {
            rows.push_str(r#"<td class="num">"#);
            push_escaped(&mut rows, &shown(unit, *v));
            rows.push_str("</td>");
        }
        rows.push_str("</tr>");
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_rounds_up_to_a_round_number() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(180), 200);
        assert_eq!(nice_ceiling(1_200), 2_000);
    }

    fn report(keys: &[&str], days: &[(u32, &[i64])]) -> UsageReport {
        UsageReport {
            by: UsageBreakdown::Action,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            days: days
                .iter()
                .map(|(d, parts)| crate::billing::UsageDay {
                    date: chrono::NaiveDate::from_ymd_opt(2026, 11, *d).unwrap(),
                    total: parts.iter().sum(),
                    parts: parts.to_vec(),
                })
                .collect(),
            total: days.iter().flat_map(|(_, p)| p.iter()).sum(),
        }
    }

    #[test]
    fn a_key_the_host_named_is_shown_as_text_not_markup() {
        let key = r#"<img src=x onerror="alert('x')">&"#;
        let r = report(&[key], &[(1, &[5]), (2, &[0])]);
        let plot = plot_markup(&r, &CreditUnit::Credits);
        assert!(!plot.contains("<img"), "{plot}");
        assert!(plot.contains(
            "<title>1 Nov · &lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;: 5 credits</title>"
        ), "{plot}");
    }

    #[test]
    fn each_part_of_a_day_is_a_bar_stacked_on_the_one_before() {
        let r = report(&["a", "b"], &[(1, &[3, 0]), (2, &[2, 4])]);
        let plot = plot_markup(&r, &CreditUnit::Credits);
        // One bar per part above zero, none for the empty part.
        assert_eq!(plot.matches("<rect ").count(), 3, "{plot}");
        // The plot is 184 high with its base at y = 194: 2 of 10 reaches 194 - 36 = 158 and
        // the 4 stacked on it 194 - 110 = 84.
        assert!(
            plot.contains(r#"y="158" width="231" height="36""#),
            "{plot}"
        );
        assert!(plot.contains(r#"y="84" width="231" height="74""#), "{plot}");
        assert!(
            plot.contains("<title>2 Nov · b: 4 credits</title>"),
            "{plot}"
        );
        // The axis: 0, half and the top.
        assert_eq!(plot.matches(r#"<g class="grid">"#).count(), 3);
    }

    #[test]
    fn the_numbers_list_each_day_with_use_newest_first() {
        let r = report(&["a", "b"], &[(1, &[1_500, 0]), (2, &[0, 0]), (3, &[2, 4])]);
        let rows = table_rows_markup(&r, &CreditUnit::Credits);
        assert_eq!(
            rows,
            concat!(
                r#"<tr><th scope="row">3 Nov 2026</th><td class="num">6</td><td class="num">2</td><td class="num">4</td></tr>"#,
                r#"<tr><th scope="row">1 Nov 2026</th><td class="num">1,500</td><td class="num">1,500</td><td class="num">0</td></tr>"#,
            )
        );
    }
}
