//! SVG charts: the live view's sparkline of messages per second, and line charts of numeric
//! series with axes, units, gaps and a legend of their latest values.

use yew::prelude::*;

use crate::model::{
    axis::{clock_label, gapped_path, time_ticks, Unit, PALETTE},
    series::{bounds, svg_path, Series},
};

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
    /// What the values measure.
    #[prop_or(Unit::Plain)]
    pub unit: Unit,
    /// Two samples further apart than this (ms) are not joined.
    #[prop_or(10_000.0)]
    pub max_gap_ms: f64,
}

/// A line chart: value axis from 0 (percentages 0–100) with its unit, a time axis with clock
/// labels, gaps left open, and a legend with each line's latest value.
#[function_component(LineChart)]
pub fn line_chart(props: &LineChartProps) -> Html {
    let (w, h, left, bottom) = (360.0, 150.0, 56.0, 18.0);
    let (pw, ph) = (w - left - 4.0, h - bottom - 6.0);
    let (lo, hi) = props.unit.range(bounds(props.lines.iter().map(|(_, _, s)| s)));
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let paths = props.lines.iter().enumerate().map(|(i, (name, _, series))| {
        let d = gapped_path(series.points.iter().copied(), props.span, (lo, hi), (pw, ph), props.max_gap_ms);
        html! { <path key={name.clone()} d={d} stroke={color(i)} /> }
    });
    let offset_min = -js_sys::Date::new_0().get_timezone_offset();
    let (t0, t1) = props.span;
    let seconds = t1 - t0 < 600_000.0;
    let ticks = time_ticks(t0, t1).into_iter().map(|t| {
        let x = (t - t0) / (t1 - t0).max(1.0) * pw;
        html! {
            <g>
                <line class="grid" x1={format!("{x:.1}")} x2={format!("{x:.1}")} y1="0" y2={ph.to_string()} />
                <text class="tick" x={format!("{x:.1}")} y={(ph + 14.0).to_string()} text-anchor="middle">{ clock_label(t, offset_min, seconds) }</text>
            </g>
        }
    });
    let legend = props.lines.iter().enumerate().map(|(i, (name, label, series))| {
        html! {
            <li key={name.clone()} data-series={name.clone()}>
                <span class="swatch" style={format!("background:{}", color(i))}></span>
                { label.trim_start_matches('@') }{ " " }<b>{ series.latest().map(|v| props.unit.format(v)).unwrap_or_default() }</b>
            </li>
        }
    });
    let label = format!("{} over time, {} to {}", props.title, props.unit.format(lo), props.unit.format(hi));
    html! {
        <figure class="chart" data-group={props.title.clone()}>
            <figcaption>{ &props.title }</figcaption>
            <svg viewBox={format!("0 0 {w} {h}")} role="img" aria-label={label}>
                <g transform={format!("translate({left} 4)")}>
                    <line class="axis" x1="0" x2={pw.to_string()} y1={ph.to_string()} y2={ph.to_string()} />
                    <line class="grid" x1="0" x2={pw.to_string()} y1="0" y2="0" />
                    <text class="tick" x="-4" y="4" text-anchor="end">{ props.unit.format(hi) }</text>
                    <text class="tick" x="-4" y={ph.to_string()} text-anchor="end">{ props.unit.format(lo) }</text>
                    { for ticks }
                    { for paths }
                </g>
            </svg>
            <ul class="legend">{ for legend }</ul>
        </figure>
    }
}
