//! SVG charts of the weights that are not pictures: CBAM channel attention (one bar per
//! channel) and SK branch attention (per channel, the share of each branch, stacked).

use super::Colormap;
use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 740.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 240.0;

/// Colours told apart at a glance for the branches (colorous' Tableau 10).
pub fn branch_colour(i: usize) -> [u8; 3] {
    let c = colorous::TABLEAU10[i % colorous::TABLEAU10.len()];
    [c.r, c.g, c.b]
}

/// `s` with the characters HTML and SVG give meaning to escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The frame: title, the 0 / 0.5 / 1 axis and the channel axis label.
fn frame(title: &str, channels: usize) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    );
    for v in [0.0, 0.5, 1.0] {
        let y = BOTTOM - v * (BOTTOM - TOP);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ccc\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v}</text>",
            LEFT - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">channel (0 .. {})</text>",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 24.0,
        channels.saturating_sub(1)
    );
    s
}

/// Channel attention weights (sigmoid outputs in [0, 1]) as one bar per channel, coloured
/// by `colormap` at the bar's height; the title gives mean, min and max.
pub fn channel_svg(title: &str, weights: &[f32], colormap: Colormap) -> String {
    let n = weights.len().max(1);
    let mean = weights.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (min, max) = weights.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let mut s = frame(&format!("{title}: mean {mean:.3}, min {min:.3}, max {max:.3}"), weights.len());
    let step = (RIGHT - LEFT) / n as f64;
    for (c, &v) in weights.iter().enumerate() {
        let h = v.clamp(0.0, 1.0) as f64 * (BOTTOM - TOP);
        let _ = writeln!(
            s,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{}\"><title>channel {c}: \
             {v:.4}</title></rect>",
            LEFT + c as f64 * step,
            BOTTOM - h,
            (step * 0.85).max(0.5),
            hex(colormap.rgb8(v as f64))
        );
    }
    s + "</svg>\n"
}

/// Branch attention `weights` [M][C] (softmax over the M branches, so each channel's column
/// sums to 1) as stacked bars, with a legend naming each branch and how many channels give
/// it the largest weight.
pub fn branch_svg(title: &str, weights: &[Vec<f32>], branch_names: &[String]) -> String {
    let channels = weights.first().map_or(0, Vec::len);
    let mut s = frame(title, channels);
    let mut preferred = vec![0usize; weights.len()];
    for c in 0..channels {
        let best = (0..weights.len()).max_by(|&a, &b| weights[a][c].total_cmp(&weights[b][c])).unwrap_or(0);
        preferred[best] += 1;
    }
    let mut x = LEFT;
    for (m, name) in branch_names.iter().enumerate().take(weights.len()) {
        let label = format!("{name}: preferred by {} of {channels}", preferred[m]);
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"32\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"41\">{}</text>",
            hex(branch_colour(m)),
            x + 14.0,
            escape(&label)
        );
        x += 14.0 + 7.0 * label.len() as f64 + 16.0;
    }
    let step = (RIGHT - LEFT) / channels.max(1) as f64;
    for c in 0..channels {
        let mut base = 0.0;
        for (m, row) in weights.iter().enumerate() {
            let h = row[c].clamp(0.0, 1.0) as f64 * (BOTTOM - TOP);
            let _ = writeln!(
                s,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{}\"><title>channel {c}, \
                 {}: {:.4}</title></rect>",
                LEFT + c as f64 * step,
                BOTTOM - base - h,
                (step * 0.85).max(0.5),
                hex(branch_colour(m)),
                escape(branch_names.get(m).map_or("branch", String::as_str)),
                row[c]
            );
            base += h;
        }
    }
    s + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_hold_a_bar_per_value_and_escape_text() {
        let svg = channel_svg("a<b", &[0.25, 1.0, 0.5], Colormap::Gray);
        assert_eq!(svg.matches("<rect").count(), 1 + 3);
        assert!(svg.contains("a&lt;b: mean 0.583, min 0.250, max 1.000"), "{svg}");
        let names = vec!["k3".to_string(), "k5".to_string()];
        let svg = branch_svg("sk", &[vec![0.9, 0.2], vec![0.1, 0.8]], &names);
        assert!(svg.contains("k3: preferred by 1 of 2") && svg.contains("k5: preferred by 1 of 2"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 4);
    }
}
