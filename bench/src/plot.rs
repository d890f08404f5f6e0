//! The SVG plots: e2e latency percentiles per server, and fan-out throughput against the
//! number of consumers.

use std::path::Path;

use plotters::prelude::*;

use crate::measure::PERCENTILES;
use crate::suite::{Plan, Results};

const SERVERS: [&str; 5] =
    ["restmq-memory", "restmq-embedded", "restmq-redis", "nchan-memory", "nchan-redis"];
const COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

/// Writes `latency.svg` and `fanout.svg` into `dir`.
pub fn write_all(dir: &Path, results: &Results, plan: &Plan) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let rate = plan.e2e_rates.iter().find(|&&r| r == 5_000).or(plan.e2e_rates.last()).copied().unwrap_or(0);
    latency(&dir.join("latency.svg"), results, rate)?;
    fanout(&dir.join("fanout.svg"), results, plan)?;
    Ok(())
}

/// Latency percentiles (log µs) of the e2e run at `rate` msg/s, one line per server.
fn latency(path: &Path, results: &Results, rate: u64) -> anyhow::Result<()> {
    let scenario = format!("e2e {rate}");
    let lines: Vec<(&str, [f64; 5])> =
        SERVERS.iter().filter_map(|t| results.median(&scenario, t).map(|s| (*t, s.lat_us))).collect();
    let top = lines.iter().flat_map(|(_, l)| l.iter().copied()).fold(10.0, f64::max) * 2.0;
    let root = SVGBackend::new(path, (820, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("POST-to-WebSocket latency at {rate} msg/s (median of runs)");
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..4.2f64, (10f64..top).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| label(*x))
        .y_desc("latency (µs, log)")
        .draw()?;
    for (i, (name, lat)) in lines.iter().enumerate() {
        let color = COLORS[SERVERS.iter().position(|s| s == name).unwrap_or(i) % COLORS.len()];
        let points: Vec<(f64, f64)> = lat.iter().enumerate().map(|(x, y)| (x as f64, y.max(10.0))).collect();
        chart.draw_series(PointSeries::of_element(points.clone(), 4, color.filled(), &|c, s, st| {
            Circle::new(c, s, st)
        }))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The percentile name at an integer x, nothing between them.
fn label(x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 0.01 && (0.0..5.0).contains(&i) {
        PERCENTILES[i as usize].to_owned()
    } else {
        String::new()
    }
}

/// Deliveries per second against consumers (log x), one line per server.
fn fanout(path: &Path, results: &Results, plan: &Plan) -> anyhow::Result<()> {
    let lines: Vec<(&str, Vec<(f64, f64)>)> = SERVERS
        .iter()
        .map(|t| {
            let points = plan
                .fanout
                .iter()
                .filter_map(|c| results.median(&format!("fanout {c}"), t).map(|s| (*c as f64, s.rate)))
                .collect();
            (*t, points)
        })
        .filter(|(_, p): &(&str, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    let top = lines.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(1.0, f64::max) * 1.15;
    let (lo, hi) =
        (*plan.fanout.first().unwrap_or(&1) as f64 * 0.8, *plan.fanout.last().unwrap_or(&10) as f64 * 1.25);
    let root = SVGBackend::new(path, (820, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Fan-out: deliveries per second vs WebSocket consumers", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("consumers (log)")
        .y_desc("deliveries/s")
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()?;
    for (name, points) in lines {
        let color = COLORS[SERVERS.iter().position(|s| *s == name).unwrap_or(0)];
        chart.draw_series(PointSeries::of_element(points.clone(), 4, color.filled(), &|c, s, st| {
            Circle::new(c, s, st)
        }))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
