//! SVG charts: the live view's sparkline of messages per second, and line charts of numeric
//! series with their latest values.

use yew::prelude::*;

use crate::state::series::{bounds, svg_path, Series};

const PALETTE: [&str; 8] =
    ["#c0392b", "#2471a3", "#1e8449", "#b9770e", "#7d3c98", "#138d75", "#5d6d7e", "#d35400"];

#[derive(Properties, PartialEq)]
pub struct SparklineProps {
    /// Messages per second, oldest first.
    pub counts: Vec<u32>,
}

#[function_component(Sparkline)]
pub fn sparkline(props: &SparklineProps) -> Html {
    let (w, h) = (240.0, 36.0);
    let top = props.counts.iter().copied().max().unwrap_or(0).max(1);
    let points = props.counts.iter().enumerate().map(|(i, &c)| (i as f64, f64::from(c)));
    let span = (0.0, (props.counts.len().max(2) - 1) as f64);
    let line = svg_path(points, span, (0.0, f64::from(top)), (w, h - 2.0));
    let area = format!("{line} L{w} {h} L0 {h} Z");
    let label = format!("messages per second over the last {} s, peak {top}", props.counts.len());
    html! {
        <svg class="sparkline" viewBox={format!("0 -2 {w} {h}")} preserveAspectRatio="none" role="img" aria-label={label}>
            <path class="area" d={area} />
            <path class="line" d={line} />
        </svg>
    }
}

#[derive(Properties, PartialEq)]
pub struct LineChartProps {
    /// The group's name (`cpu`, `memory` …).
    pub title: String,
    /// The lines: full series name, label and points.
    pub lines: Vec<(String, String, Series)>,
    /// The time span shown, in ms.
    pub span: (f64, f64),
}

#[function_component(LineChart)]
pub fn line_chart(props: &LineChartProps) -> Html {
    let (w, h) = (320.0, 120.0);
    let (lo, hi) = bounds(props.lines.iter().map(|(_, _, s)| s));
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let paths = props.lines.iter().enumerate().map(|(i, (name, _, series))| {
        let d = svg_path(series.points.iter().copied(), props.span, (lo, hi), (w, h));
        html! { <path key={name.clone()} d={d} stroke={color(i)} /> }
    });
    let legend = props.lines.iter().enumerate().map(|(i, (name, label, series))| {
        html! {
            <li key={name.clone()} data-series={name.clone()}>
                <span class="swatch" style={format!("background:{}", color(i))}></span>
                { label }{ " " }<b>{ series.latest().map(format_value).unwrap_or_default() }</b>
            </li>
        }
    });
    html! {
        <figure class="chart" data-group={props.title.clone()}>
            <figcaption>{ &props.title }<span class="range">{ format!("{} – {}", format_value(lo), format_value(hi)) }</span></figcaption>
            <svg viewBox={format!("0 0 {w} {h}")} preserveAspectRatio="none" role="img" aria-label={format!("{} over time", props.title)}>
                { for paths }
            </svg>
            <ul class="legend">{ for legend }</ul>
        </figure>
    }
}

/// A value for a legend: short, with thousands as k/M/G.
fn format_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
