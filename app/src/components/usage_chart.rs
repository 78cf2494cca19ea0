use crate::billing::{UsageBreakdown, UsageReport};
use crate::domain::Credits;
use leptos::either::Either;
use leptos::prelude::*;

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
    let shown = |v: i64| unit.figure(Credits::new(v).unwrap_or_default());
    let keys = report.keys.clone();
    let has_other = keys.last().is_some_and(|k| k == "Other") && keys.len() > 1;
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
    let grid = [0, max / 2, max]
        .into_iter()
        .map(|v| {
            view! {
                <g class="grid">
                    <line x1=LEFT y1=y(v) x2=WIDTH y2=y(v)></line>
                    <text x=LEFT - 6 y=y(v) + 4 text-anchor="end">{shown(v)}</text>
                </g>
            }
        })
        .collect_view();
    let bars = report
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let x = LEFT + i as i64 * slot + (slot - bar) / 2;
            let date = crate::format::day_month(&day.date);
            let mut base = 0;
            let segments = day
                .parts
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| {
                    let top = y(base + v);
                    let height = y(base) - top;
                    base += v;
                    let label = format!("{date} · {}: {}", keys[k], unit.amount(Credits::new(*v).unwrap_or_default()));
                    view! { <rect x=x y=top width=bar height=height.max(1) fill=color(k, keys.len(), has_other)><title>{label}</title></rect> }
                })
                .collect_view();
            let tick = (report.days.len() - 1 - i).is_multiple_of(7).then(|| {
                view! { <text class="tick" x=x + bar / 2 y=HEIGHT - 8 text-anchor="middle">{date.clone()}</text> }
            });
            view! { <g>{segments}{tick}</g> }
        })
        .collect_view();
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
    let rows = report
        .days
        .iter()
        .rev()
        .filter(|d| d.total > 0)
        .map(|d| {
            let cells = d.parts.iter().map(|v| view! { <td class="num">{shown(*v)}</td> }).collect_view();
            view! { <tr><th scope="row">{crate::format::day(&d.date)}</th><td class="num">{shown(d.total)}</td>{cells}</tr> }
        })
        .collect_view();
    let summary = format!(
        "{} used in the last 30 days",
        unit.amount(Credits::new(report.total).unwrap_or_default())
    );
    Either::Right(view! {
        <section class="card" aria-labelledby="usage-heading">
            {header}
            <p class="muted" data-testid="usage-total">{summary.clone()}</p>
            <svg class="usage-chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=format!("Bar chart: {summary}, by day. The table below has the numbers.")>
                {grid}
                {bars}
            </svg>
            <ul class="legend">{legend}</ul>
            <details class="usage-table">
                <summary>"Show the numbers"</summary>
                <div class="table-scroll">
                    <table class="numbers">
                        <caption class="visually-hidden">"Credits used per day"</caption>
                        <thead><tr><th scope="col">"Day"</th><th scope="col" class="num">"Total"</th>{head_cells}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            </details>
        </section>
    })
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn the_axis_rounds_up_to_a_round_number() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(180), 200);
        assert_eq!(nice_ceiling(1_200), 2_000);
    }
}
