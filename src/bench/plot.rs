//! The report as a hand-written SVG: time per workload on a log scale (with
//! the compared report's time beside each bar), and a roofline with every
//! timed kernel as a point.

use super::report::{Report, Row, Status};
use super::table::format_ms;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 330.0; // room for the labels
const RIGHT: f64 = 40.0;
const BAR_ROW: f64 = 20.0;
const ROOF_HEIGHT: f64 = 420.0;
const GLIMPSE: &str = "#3465a4";
const OTHER: &str = "#f57900";
/// Average advance of a character, as a share of the font size (sans-serif, mixed text):
/// labels are sized with it to stay inside the picture and apart from each other.
const CHAR_WIDTH: f64 = 0.6;

/// Width in pixels of `text` at `font_size`.
fn text_width(text: &str, font_size: f64) -> f64 {
    text.chars().count() as f64 * font_size * CHAR_WIDTH
}

/// `text` cut to fit `width` pixels at `font_size`, ending in an ellipsis when cut.
fn fit(text: &str, width: f64, font_size: f64) -> String {
    let most = (width / (font_size * CHAR_WIDTH)).floor() as usize;
    if text.chars().count() <= most {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(most.saturating_sub(1)).collect();
    cut.push('\u{2026}');
    cut
}

/// A label's box: left, top, right, bottom.
type Box4 = [f64; 4];

fn overlaps(a: &Box4, b: &Box4) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

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
        let shown = fit(&label, LEFT - 16.0, 11.0);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>"#,
            LEFT - 6.0,
            y + 11.0,
            esc(&label),
            esc(&shown)
        );
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
        bar_time(s, x(median), y + h - 1.0, median);
        if let Some(t) = o {
            let y2 = y + h + 1.0;
            let _ =
                writeln!(s, r#"<rect x="{x0:.1}" y="{y2:.1}" width="{:.1}" height="{h}" fill="{OTHER}"/>"#, x(*t) - x0);
            bar_time(s, x(*t), y2 + h - 1.0, *t);
        }
    }
}

/// A bar's time after its end, or inside it (white, right-aligned) where it would run past
/// the picture's right edge.
fn bar_time(s: &mut String, end: f64, y: f64, ms: f64) {
    let text = format_ms(Some(ms));
    if end + 4.0 + text_width(&text, 11.0) <= WIDTH - 2.0 {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{y:.1}">{text}</text>"#, end + 4.0);
    } else {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{y:.1}" text-anchor="end" fill="white">{text}</text>"#, end - 4.0);
    }
}

/// The roofline's corners as (FLOP per byte, GFLOP/s) for intensities `a_lo..a_hi` and rates
/// from `g_lo`: the memory roof, GFLOP/s = bandwidth (GB/s) x intensity, from where it enters
/// the plot (at `a_lo`, or through the bottom edge at g_lo / bandwidth) up to the ridge at
/// peak / bandwidth, then the compute roof at `peak` to `a_hi`.
pub(crate) fn roof(bandwidth: f64, peak: f64, a_lo: f64, a_hi: f64, g_lo: f64) -> Vec<(f64, f64)> {
    let ridge = peak / bandwidth;
    let enter = a_lo.max(g_lo / bandwidth);
    let mut points = Vec::new();
    if enter < ridge.min(a_hi) {
        points.push((enter, enter * bandwidth));
    }
    if ridge >= a_hi {
        points.push((a_hi, a_hi * bandwidth));
        return points;
    }
    points.push((ridge.max(a_lo), peak));
    points.push((a_hi, peak));
    points
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
    // Labels placed so far (the roof's and the points'), kept apart.
    let mut placed: Vec<Box4> = Vec::new();
    if let (Some(bw), Some(peak)) = (bw, peak) {
        let corners = roof(bw, peak, 10f64.powi(a0), 10f64.powi(a1), 10f64.powi(g0));
        let pts: Vec<String> = corners.iter().map(|&(a, g)| format!("{:.1},{:.1}", x(a), y(g))).collect();
        let _ = writeln!(s, r#"<polyline points="{}" fill="none" stroke="black" stroke-width="2"/>"#, pts.join(" "));
        let compute = format!("compute roof {peak:.1} GFLOP/s");
        let (cx, cy) = (WIDTH - RIGHT - 4.0, y(peak) - 5.0);
        let _ = writeln!(s, r#"<text x="{cx:.1}" y="{cy:.1}" text-anchor="end" font-size="10">{compute}</text>"#);
        placed.push([cx - text_width(&compute, 10.0), cy - 10.0, cx, cy + 2.0]);
        if let Some(&(a, g)) = corners.first().filter(|&&(_, g)| g < peak) {
            let memory = format!("memory roof {bw:.1} GB/s x FLOP/byte");
            let (mx, my) = (x(a) + 6.0, y(g) - 6.0);
            if mx + text_width(&memory, 10.0) <= WIDTH - 2.0 {
                let _ = writeln!(s, r#"<text x="{mx:.1}" y="{my:.1}" font-size="10">{memory}</text>"#);
                placed.push([mx, my - 10.0, mx + text_width(&memory, 10.0), my + 2.0]);
            }
        }
    }
    let mut unlabelled = 0;
    for (r, a, g) in points {
        let (px, py) = (x(a), y(g));
        let label = format!("{} {}", r.name, if r.variant == "auto" { "" } else { &r.variant });
        let label = label.trim();
        let _ = writeln!(
            s,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{GLIMPSE}"><title>{}</title></circle>"#,
            esc(label)
        );
        // Right of the point, else left, above or below: the first place inside the plot that
        // no other label covers; none free, the label is left out (the point keeps its title).
        let w = text_width(label, 9.0);
        let spot = [(px + 5.0, py - 3.0), (px + 5.0, py + 11.0), (px - 5.0 - w, py - 3.0), (px - 5.0 - w, py + 11.0)]
            .into_iter()
            .map(|(lx, ly)| [lx, ly - 9.0, lx + w, ly + 1.0])
            .find(|b| {
                b[0] >= LEFT
                    && b[2] <= WIDTH - 2.0
                    && b[1] >= plot_top
                    && b[3] <= plot_bottom
                    && !placed.iter().any(|p| overlaps(p, b))
            });
        match spot {
            Some(b) => {
                let _ =
                    writeln!(s, r#"<text x="{:.1}" y="{:.1}" font-size="9">{}</text>"#, b[0], b[3] - 1.0, esc(label));
                placed.push(b);
            }
            None => unlabelled += 1,
        }
    }
    if unlabelled > 0 {
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-size="10">{unlabelled} crowded point(s) left unlabelled (their names show on hover)</text>"#,
            plot_bottom + 44.0
        );
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

    #[test]
    fn the_memory_roof_is_bandwidth_times_intensity_up_to_the_ridge() {
        // 50 GB/s, 400 GFLOP/s: the ridge at 8 FLOP/byte.
        let corners = roof(50.0, 400.0, 0.01, 1000.0, 0.1);
        assert_eq!(corners.len(), 3, "{corners:?}");
        // Enters through the bottom edge (0.1 GFLOP/s at 0.002 FLOP/byte is left of the plot).
        assert_eq!(corners[0], (0.01, 0.5));
        assert_eq!(corners[1], (8.0, 400.0));
        assert_eq!(corners[2], (1000.0, 400.0));
        for &(a, g) in &corners[..2] {
            assert!((g - 50.0 * a).abs() < 1e-9, "({a}, {g}) is off the memory roof");
        }
        // A bottom edge above the roof's start: it enters there, still on bandwidth x intensity.
        let corners = roof(50.0, 400.0, 0.01, 1000.0, 10.0);
        assert_eq!(corners[0], (0.2, 10.0));
        // The ridge past the plot: only the memory roof, to the right edge.
        assert_eq!(roof(1.0, 1e6, 0.1, 100.0, 0.01), vec![(0.1, 0.1), (100.0, 100.0)]);
        // The ridge left of the plot: only the compute roof.
        assert_eq!(roof(1000.0, 10.0, 0.1, 100.0, 0.01), vec![(0.1, 10.0), (100.0, 10.0)]);
    }

    #[test]
    fn labels_fit_the_picture_and_do_not_overlap() {
        assert_eq!(fit("short", 100.0, 10.0), "short");
        let cut = fit(&"x".repeat(100), 60.0, 10.0);
        assert!(cut.ends_with('\u{2026}') && cut.chars().count() == 10, "{cut}");
        assert!(overlaps(&[0.0, 0.0, 10.0, 10.0], &[5.0, 5.0, 15.0, 15.0]));
        assert!(!overlaps(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]));
    }
}
