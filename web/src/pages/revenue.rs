//! The publisher dashboard's revenue: the totals and an inline SVG bar chart of the net revenue
//! of each of the last 30 days (`publisherRevenue`), fetched again on each live sale.

use std::time::Duration;

use leptos::prelude::*;

use crate::api;
use crate::api::queries::{PublisherRevenue, publisher_revenue};
use crate::components::{Loading, Mounted};
use crate::pages::notice::load_error;
use crate::state::format_minor;

type Figures = publisher_revenue::PublisherRevenuePublisherRevenue;
type Day = publisher_revenue::PublisherRevenuePublisherRevenueDays;

/// The chart's period.
const DAYS: i64 = 30;
/// Billing credits a sale moments after the order completes (when the live feed reports it):
/// ask again after these delays too.
const AFTER_SALE: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(6)];

// The chart's drawing area, in SVG user units (it scales to the width of its box).
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;
/// The left gutter, for the amounts of the grid lines.
const GUTTER: f64 = 112.0;
const SIDE: f64 = 8.0;

/// The revenue figures and chart; `sale_tick` is bumped by the dashboard's `salesFeed`.
#[component]
pub fn Revenue(sale_tick: RwSignal<u32>) -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    Effect::new(move |previous: Option<u32>| {
        let tick = sale_tick.get();
        if previous.is_some_and(|p| p != tick) {
            for delay in AFTER_SALE {
                set_timeout(
                    move || {
                        reload.try_update(|v| *v += 1);
                    },
                    delay,
                );
            }
        }
        tick
    });
    let revenue = LocalResource::new(move || {
        sale_tick.track();
        reload.track();
        async move {
            api::request::<PublisherRevenue>(publisher_revenue::Variables { days: DAYS })
                .await
                .map(|data| data.publisher_revenue)
        }
    });
    view! {
        <section class="revenue" aria-labelledby="revenue-title">
            <h2 id="revenue-title">"Revenue"</h2>
            <Transition fallback=|| view! { <Loading label="Loading your revenue…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(revenue).await {
                        Ok(figures) => view! { <RevenueFigures figures /> }.into_any(),
                        Err(error) => load_error(&error, reload).into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RevenueFigures(figures: Figures) -> impl IntoView {
    let currency = figures
        .days
        .first()
        .map(|d| d.net.currency.clone())
        .unwrap_or_else(|| "EUR".to_owned());
    let period_net: i64 = figures.days.iter().map(|d| d.net.amount_minor).sum();
    let period_sales: i64 = figures.days.iter().map(|d| d.sales).sum();
    let quiet = figures.days.iter().all(|d| d.sales == 0 && d.refunds == 0);
    let stat = |label: &'static str, value: String| {
        view! {
            <div class="stat">
                <dt>{label}</dt>
                <dd>{value}</dd>
            </div>
        }
    };
    view! {
        <dl class="stats" aria-label="Revenue totals">
            {stat("Net, last 30 days", format_minor(period_net, &currency))}
            {stat("Sales, last 30 days", period_sales.to_string())}
            {stat("Net, all time", figures.net.formatted)}
            {stat("Platform fee, all time", figures.fee.formatted)}
            {stat("Refunded, all time", figures.refunded.formatted)}
            {stat("Sales, all time", figures.sales.to_string())}
            {stat("Refunds, all time", figures.refunds.to_string())}
        </dl>
        <figure class="chart">
            <figcaption id="revenue-chart-caption">"Net revenue per day, last 30 days (UTC)"</figcaption>
            {quiet.then(|| view! { <p class="muted">"No sales or refunds in the last 30 days."</p> })}
            {chart(&figures.days, &currency)}
            <details class="chart__table">
                <summary>"Show the days as a table"</summary>
                <table class="table">
                    <caption class="visually-hidden">"Net revenue per day"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Day"</th>
                            <th scope="col" class="num">"Sales"</th>
                            <th scope="col" class="num">"Refunds"</th>
                            <th scope="col" class="num">"Net"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {figures.days.into_iter().rev().map(|d| view! {
                            <tr>
                                <th scope="row">{d.day}</th>
                                <td class="num">{d.sales}</td>
                                <td class="num">{d.refunds}</td>
                                <td class="num">{d.net.formatted}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        </figure>
    }
}

/// A grid line's amount, short enough for the gutter: `49.30 EUR`, `12.3k EUR`.
fn axis_amount(minor: i64, currency: &str) -> String {
    if minor.abs() >= 100_000 {
        format!("{:.1}k {currency}", minor as f64 / 100_000.0)
    } else {
        format_minor(minor, currency)
    }
}

/// "12 sales, 1 refund".
fn counts(day: &Day) -> String {
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut text = plural(day.sales, "sale", "sales");
    if day.refunds > 0 {
        text.push_str(", ");
        text.push_str(&plural(day.refunds, "refund", "refunds"));
    }
    text
}

/// The bar chart: one bar per day (below the zero line when refunds outweighed sales), grid
/// lines with their amounts, a date under every seventh day. Each bar names its day and amount.
fn chart(days: &[Day], currency: &str) -> impl IntoView + use<> {
    let top_value = days
        .iter()
        .map(|d| d.net.amount_minor)
        .max()
        .unwrap_or(0)
        .max(0);
    let bottom_value = days
        .iter()
        .map(|d| d.net.amount_minor)
        .min()
        .unwrap_or(0)
        .min(0);
    let span = (top_value - bottom_value).max(1) as f64;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let y = move |value: i64| TOP + (top_value - value) as f64 / span * plot_height;
    let zero = y(0);
    let slot = (WIDTH - GUTTER - SIDE) / days.len().max(1) as f64;
    let bar_width = (slot * 0.7).max(1.0);
    let last = days.len().saturating_sub(1);

    let mut grid = vec![(0_i64, "chart__zero")];
    if top_value > 0 {
        grid.push((top_value, "chart__grid"));
    }
    if bottom_value < 0 {
        grid.push((bottom_value, "chart__grid"));
    }
    let grid = grid
        .into_iter()
        .map(|(value, class)| {
            let at = y(value);
            view! {
                <g aria-hidden="true">
                    <line class=class x1=GUTTER.to_string() x2=(WIDTH - SIDE).to_string() y1=format!("{at:.1}") y2=format!("{at:.1}") />
                    <text class="chart__label" x=(GUTTER - 6.0).to_string() y=format!("{at:.1}") text-anchor="end" dominant-baseline="middle">
                        {axis_amount(value, currency)}
                    </text>
                </g>
            }
        })
        .collect_view();

    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let value = day.net.amount_minor;
            let x = GUTTER + slot * i as f64 + (slot - bar_width) / 2.0;
            let (bar_top, height) = if value >= 0 {
                (y(value), zero - y(value))
            } else {
                (zero, y(value) - zero)
            };
            // A day with money moving stays visible however small it is.
            let height = if value != 0 { height.max(1.5) } else { height };
            let label = format!("{}: {} ({})", day.day, day.net.formatted, counts(day));
            let class = if value < 0 {
                "chart__bar chart__bar--negative"
            } else {
                "chart__bar"
            };
            // Every seventh day and the last one (unless it would touch the one before).
            let tick = ((i % 7 == 0 && last - i >= 4) || i == last).then(|| {
                view! {
                    <text class="chart__label" x=format!("{:.1}", x + bar_width / 2.0) y=(HEIGHT - 8.0).to_string() text-anchor="middle" aria-hidden="true">
                        {day.day.get(5..).unwrap_or(&day.day).to_owned()}
                    </text>
                }
            });
            view! {
                <rect
                    class=class
                    x=format!("{x:.1}")
                    y=format!("{bar_top:.1}")
                    width=format!("{bar_width:.1}")
                    height=format!("{height:.1}")
                    role="img"
                    aria-label=label.clone()
                >
                    <title>{label.clone()}</title>
                </rect>
                {tick}
            }
        })
        .collect_view();

    view! {
        <svg
            class="chart__svg"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            role="group"
            aria-labelledby="revenue-chart-caption"
        >
            {grid}
            {bars}
        </svg>
    }
}
