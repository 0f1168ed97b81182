//! The report as a hand-written SVG: time per workload on a log scale (with
//! the compared report's time beside each bar), and a roofline with every
//! timed kernel as a point.

use super::report::{format_ms, Report, Row, Status};
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 330.0; // room for the labels
const RIGHT: f64 = 40.0;
const BAR_ROW: f64 = 20.0;
const ROOF_HEIGHT: f64 = 420.0;
const GLIMPSE: &str = "#3465a4";
const OTHER: &str = "#f57900";

/// Text safe inside SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Powers of ten spanning `lo..hi` (positive values).
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let a = lo.max(1e-9).log10().floor() as i32;
    let b = hi.max(lo * 10.0).log10().ceil() as i32;
    (a, b.max(a + 1))
}

/// The SVG document for `report`, with `other`'s times beside it when given.
pub fn svg(report: &Report, other: Option<&Report>) -> String {
    let rows: Vec<&Row> = report.workloads.iter().filter(|r| r.status == Status::Ok && r.median_ms.is_some()).collect();
    let bars_height = 70.0 + BAR_ROW * rows.len().max(1) as f64;
    let height = bars_height + ROOF_HEIGHT + 110.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!("glimpse bench on {} ({}), {}", report.adapter.name, report.adapter.backend, report.date);
    let _ = writeln!(s, r#"<text x="10" y="18" font-size="14" font-weight="bold">{}</text>"#, esc(&title));
    if report.adapter.device_type == "Cpu" {
        let _ = writeln!(
            s,
            r#"<text x="10" y="34">A CPU adapter: these times compare variants; they are not GPU speed.</text>"#
        );
    }
    bars(&mut s, &rows, other, 50.0);
    roofline(&mut s, report, &rows, bars_height + 40.0);
    s += "</svg>\n";
    s
}

/// Horizontal bars of the median time (log scale), min..max as a whisker.
fn bars(s: &mut String, rows: &[&Row], other: Option<&Report>, top: f64) {
    let matched: Vec<Option<f64>> =
        rows.iter().map(|r| other.and_then(|o| o.find(r)).and_then(|o| o.median_ms)).collect();
    let all = rows.iter().filter_map(|r| r.median_ms).chain(matched.iter().flatten().copied());
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if rows.is_empty() {
        let _ = writeln!(s, r#"<text x="10" y="{}">no workload was timed</text>"#, top + 20.0);
        return;
    }
    let (d0, d1) = decades(lo, hi);
    let x = |v: f64| LEFT + (WIDTH - LEFT - RIGHT) * (v.log10() - d0 as f64) / (d1 - d0) as f64;
    let bottom = top + 20.0 + BAR_ROW * rows.len() as f64;
    let legend = match other {
        Some(o) => {
            format!("median time per run, ms (log scale); blue: glimpse, orange: {} ({})", o.tool, o.adapter.name)
        }
        None => "median time per run, ms (log scale); whiskers: min..max".to_string(),
    };
    let _ = writeln!(s, r#"<text x="10" y="{top}" font-weight="bold">{}</text>"#, esc(&legend));
    for d in d0..=d1 {
        let (xv, label) = (x(10f64.powi(d)), format_ms(Some(10f64.powi(d))));
        let _ = writeln!(s, r##"<line x1="{xv:.1}" y1="{}" x2="{xv:.1}" y2="{bottom}" stroke="#ddd"/>"##, top + 8.0);
        let _ = writeln!(s, r#"<text x="{xv:.1}" y="{}" text-anchor="middle">{label}</text>"#, bottom + 14.0);
    }
    for (i, (r, o)) in rows.iter().zip(&matched).enumerate() {
        let y = top + 14.0 + BAR_ROW * i as f64;
        let label = format!("{} {} {}", r.name, r.shape, r.variant);
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, LEFT - 6.0, y + 11.0, esc(&label));
        let h = if o.is_some() { 7.0 } else { 12.0 };
        let median = r.median_ms.expect("filtered to timed rows");
        let x0 = x(10f64.powi(d0));
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{h}" fill="{GLIMPSE}"/>"#,
            x(median) - x0
        );
        if let (Some(min), Some(max)) = (r.min_ms, r.max_ms) {
            let yc = y + h / 2.0;
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{yc:.1}" x2="{:.1}" y2="{yc:.1}" stroke="black"/>"#,
                x(min),
                x(max)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x(median) + 4.0,
            y + h - 1.0,
            format_ms(Some(median))
        );
        if let Some(t) = o {
            let y2 = y + h + 1.0;
            let _ =
                writeln!(s, r#"<rect x="{x0:.1}" y="{y2:.1}" width="{:.1}" height="{h}" fill="{OTHER}"/>"#, x(*t) - x0);
            let _ =
                writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, x(*t) + 4.0, y2 + h - 1.0, format_ms(Some(*t)));
        }
    }
}

/// GFLOP/s against FLOP per byte, both log scale: the bandwidth slope and the
/// compute roof from this run's ceilings, and each timed workload as a point.
fn roofline(s: &mut String, report: &Report, rows: &[&Row], top: f64) {
    let points: Vec<(&Row, f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((*r, r.intensity.filter(|&a| a > 0.0)?, r.gflops.filter(|&g| g > 0.0)?)))
        .collect();
    let (bw, peak) = (report.ceilings.stream_gbps, report.ceilings.gemm_gflops);
    let _ = writeln!(
        s,
        r#"<text x="10" y="{top}" font-weight="bold">roofline: GFLOP/s against FLOP/byte (log-log); stream {} GB/s, best GEMM {} GFLOP/s</text>"#,
        bw.map_or("?".into(), |b| format!("{b:.1}")),
        peak.map_or("?".into(), |p| format!("{p:.1}"))
    );
    let ai = points.iter().map(|p| p.1);
    let (a0, a1) = decades(ai.clone().fold(f64::MAX, f64::min).min(0.1), ai.fold(0.0, f64::max).max(100.0));
    let rates = points.iter().map(|p| p.2).chain(peak);
    let (g0, g1) = decades(rates.clone().fold(f64::MAX, f64::min).min(0.1), rates.fold(0.0, f64::max) * 1.5);
    let (plot_top, plot_bottom) = (top + 20.0, top + ROOF_HEIGHT);
    let x = |a: f64| LEFT + (WIDTH - LEFT - RIGHT) * (a.log10() - a0 as f64) / (a1 - a0) as f64;
    let y = |g: f64| plot_bottom - (plot_bottom - plot_top) * (g.log10() - g0 as f64) / (g1 - g0) as f64;
    for d in a0..=a1 {
        let xv = x(10f64.powi(d));
        let _ = writeln!(s, r##"<line x1="{xv:.1}" y1="{plot_top}" x2="{xv:.1}" y2="{plot_bottom}" stroke="#ddd"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{xv:.1}" y="{}" text-anchor="middle">{}</text>"#,
            plot_bottom + 14.0,
            10f64.powi(d)
        );
    }
    for d in g0..=g1 {
        let yv = y(10f64.powi(d));
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{yv:.1}" x2="{}" y2="{yv:.1}" stroke="#ddd"/>"##, WIDTH - RIGHT);
        let _ =
            writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, yv + 4.0, 10f64.powi(d));
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">FLOP per byte</text>"#,
        (LEFT + WIDTH) / 2.0,
        plot_bottom + 30.0
    );
    if let (Some(bw), Some(peak)) = (bw, peak) {
        // The roof: min(peak, intensity x bandwidth), drawn as a polyline through the ridge point.
        let (start, ridge, end) = (10f64.powi(a0), peak / bw, 10f64.powi(a1));
        let pts: Vec<String> = [start, ridge.clamp(start, end), end]
            .iter()
            .map(|&a| format!("{:.1},{:.1}", x(a), y((a * bw).min(peak).max(10f64.powi(g0)))))
            .collect();
        let _ = writeln!(s, r#"<polyline points="{}" fill="none" stroke="black" stroke-width="2"/>"#, pts.join(" "));
    }
    for (r, a, g) in points {
        let (px, py) = (x(a), y(g));
        let _ = writeln!(s, r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{GLIMPSE}"/>"#);
        let label = format!("{} {}", r.name, if r.variant == "auto" { "" } else { &r.variant });
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{:.1}" font-size="9">{}</text>"#, px + 5.0, py - 3.0, esc(label.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_decades_span_the_range() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(decades(0.05, 30.0), (-2, 2));
        assert_eq!(decades(1.0, 1.0), (0, 1));
    }
}
