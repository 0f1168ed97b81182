//! Drawing on RGB8 pictures on the CPU: a 3 x 5 pixel font for labels, colour bars, query
//! markers, small bar charts and the contact sheet.

use super::Colormap;
use crate::{budget, Result};
use image::{Rgb, RgbImage};

/// How many times its height a contact sheet's tile may be wide.
const TILE_ASPECT: f64 = 4.0;

/// Glyphs of the 3 x 5 font: 15 bits, rows top to bottom, 3 bits per row (left = high bit).
/// Letters are capitals; anything missing draws as '?'.
const GLYPHS: &[(char, u16)] = &[
    ('0', 0b111_101_101_101_111),
    ('1', 0b010_110_010_010_111),
    ('2', 0b111_001_111_100_111),
    ('3', 0b111_001_111_001_111),
    ('4', 0b101_101_111_001_001),
    ('5', 0b111_100_111_001_111),
    ('6', 0b111_100_111_101_111),
    ('7', 0b111_001_001_010_010),
    ('8', 0b111_101_111_101_111),
    ('9', 0b111_101_111_001_111),
    ('A', 0b010_101_111_101_101),
    ('B', 0b110_101_110_101_110),
    ('C', 0b011_100_100_100_011),
    ('D', 0b110_101_101_101_110),
    ('E', 0b111_100_110_100_111),
    ('F', 0b111_100_110_100_100),
    ('G', 0b011_100_101_101_011),
    ('H', 0b101_101_111_101_101),
    ('I', 0b111_010_010_010_111),
    ('J', 0b001_001_001_101_010),
    ('K', 0b101_101_110_101_101),
    ('L', 0b100_100_100_100_111),
    ('M', 0b101_111_111_101_101),
    ('N', 0b110_101_101_101_101),
    ('O', 0b010_101_101_101_010),
    ('P', 0b110_101_110_100_100),
    ('Q', 0b010_101_101_110_011),
    ('R', 0b110_101_110_101_101),
    ('S', 0b011_100_010_001_110),
    ('T', 0b111_010_010_010_010),
    ('U', 0b101_101_101_101_111),
    ('V', 0b101_101_101_101_010),
    ('W', 0b101_101_111_111_101),
    ('X', 0b101_101_010_101_101),
    ('Y', 0b101_101_010_010_010),
    ('Z', 0b111_001_010_100_111),
    ('.', 0b000_000_000_000_010),
    ('-', 0b000_000_111_000_000),
    ('_', 0b000_000_000_000_111),
    (':', 0b000_010_000_010_000),
    ('%', 0b101_001_010_100_101),
    (',', 0b000_000_000_010_100),
    ('(', 0b001_010_010_010_001),
    (')', 0b100_010_010_010_100),
    ('/', 0b001_001_010_100_100),
    ('+', 0b000_010_111_010_000),
    ('=', 0b000_111_000_111_000),
    ('?', 0b111_001_010_000_010),
    (' ', 0),
];

/// White, black and the label background.
pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const PAPER: Rgb<u8> = Rgb([250, 250, 250]);
const INK: Rgb<u8> = Rgb([30, 30, 30]);

/// Width in pixels of `text` drawn at `scale` (4 x 6 cells per glyph, times the scale).
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 4 * scale
}

fn put(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, colour);
    }
}

fn fill(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
    for dy in 0..h as i64 {
        for dx in 0..w as i64 {
            put(img, x + dx, y + dy, colour);
        }
    }
}

/// Draws `text` with its top-left corner at (x, y); pixels outside the picture are dropped.
pub fn text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    for (i, ch) in text.chars().enumerate() {
        let ch = ch.to_ascii_uppercase();
        let bits = GLYPHS.iter().find(|(c, _)| *c == ch).or_else(|| GLYPHS.iter().find(|(c, _)| *c == '?'));
        let bits = bits.expect("the font has '?'").1;
        let left = x + (i as u32 * 4 * scale) as i64;
        for row in 0..5 {
            for col in 0..3 {
                if bits >> (14 - (row * 3 + col)) & 1 == 1 {
                    let (px, py) = (left + (col * scale) as i64, y + (row * scale) as i64);
                    fill(img, px, py, scale, scale, colour);
                }
            }
        }
    }
}

/// A number in at most about six characters: 0.734, 12.5, 3.1e-4.
pub fn short(v: f32) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (0.01..1000.0).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// `overlay` with a colour bar to its right: the colormap from `hi` (top) to `lo` (bottom),
/// labelled with both values.
pub fn with_colour_bar(overlay: &RgbImage, colormap: Colormap, lo: f32, hi: f32) -> RgbImage {
    let scale = if overlay.height() >= 200 { 2 } else { 1 };
    let (top, bottom) = (short(hi), short(lo));
    let label = text_width(&top, scale).max(text_width(&bottom, scale));
    let (gap, bar) = (8 * scale, 8 * scale);
    let width = overlay.width() + gap + bar + gap / 2 + label + gap;
    let mut out = RgbImage::from_pixel(width, overlay.height(), PAPER);
    image::imageops::replace(&mut out, overlay, 0, 0);
    let x0 = (overlay.width() + gap) as i64;
    let (y0, span) = (6 * scale, overlay.height().saturating_sub(12 * scale).max(1));
    for dy in 0..span {
        let t = 1.0 - dy as f64 / (span.max(2) - 1) as f64;
        fill(&mut out, x0, (y0 + dy) as i64, bar, 1, Rgb(colormap.rgb8(t)));
    }
    let tx = x0 + (bar + gap / 2) as i64;
    text(&mut out, tx, y0 as i64, &top, scale, INK);
    text(&mut out, tx, (y0 + span) as i64 - 5 * scale as i64, &bottom, scale, INK);
    out
}

/// Marks the query pixel at (`fx`, `fy`), fractions of the width and height: a white ring
/// with a black outline and a centre dot, visible on any colormap.
pub fn marker(img: &mut RgbImage, fx: f64, fy: f64) {
    let (cx, cy) = (fx * img.width() as f64, fy * img.height() as f64);
    let r = (img.width().min(img.height()) as f64 / 40.0).max(4.0);
    let reach = (r + 3.0) as i64;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let d = ((dx * dx + dy * dy) as f64).sqrt();
            let ring = (d - r).abs();
            let colour = match () {
                _ if ring <= 1.0 || d <= 1.5 => WHITE,
                _ if ring <= 2.2 || d <= 2.5 => BLACK,
                _ => continue,
            };
            put(img, cx as i64 + dx, cy as i64 + dy, colour);
        }
    }
}

/// A bar chart of `rows` (each a list of stacked values in [0, 1], drawn bottom up) in a
/// `width` x `height` picture, each segment in the colour `colour(segment, value)` gives.
pub fn bars(rows: &[Vec<f32>], width: u32, height: u32, colour: impl Fn(usize, f32) -> [u8; 3]) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, PAPER);
    let (pad, plot_h) = (4u32, height.saturating_sub(8).max(1));
    let step = (width - 2 * pad) as f64 / rows.len().max(1) as f64;
    for (i, row) in rows.iter().enumerate() {
        let x0 = pad as f64 + i as f64 * step;
        let bar_w = ((step * 0.8).max(1.0)) as u32;
        let mut base = 0.0f64;
        for (s, &v) in row.iter().enumerate() {
            let v = v.clamp(0.0, 1.0) as f64;
            let (y_top, y_bottom) = ((base + v) * plot_h as f64, base * plot_h as f64);
            let h = (y_top.round() - y_bottom.round()) as u32;
            let y = (pad + plot_h) as i64 - y_top.round() as i64;
            fill(&mut img, x0 as i64, y, bar_w, h, Rgb(colour(s, v as f32)));
            base += v;
        }
    }
    fill(&mut img, 0, (pad + plot_h) as i64, width, 1, INK);
    img
}

/// One contact-sheet tile: a picture scaled to `height` with `label` above it.
pub struct Tile {
    /// The caption.
    pub label: String,
    /// The picture (scaled to the row height when the sheet is made).
    pub image: RgbImage,
}

/// The tiles side by side, each scaled to `height` (narrower ones: at most [`TILE_ASPECT`]
/// times as wide), captions above, on a light background; within [`budget::PICTURE_BYTES`].
pub fn contact_sheet(tiles: &[Tile], height: u32) -> Result<RgbImage> {
    let (pad, caption) = (8u32, 16u32);
    // Each tile fits a box `height` high and TILE_ASPECT times as wide, its aspect kept: a
    // 1024 x 1 photo gives a 768 x 1 tile, not a 196,608-pixel-wide one.
    let max_width = height as f64 * TILE_ASPECT;
    let scaled: Vec<RgbImage> = tiles
        .iter()
        .map(|t| {
            let (w, h) = (t.image.width() as f64, t.image.height() as f64);
            let scale = (height as f64 / h).min(max_width / w);
            let size = |v: f64| ((v * scale).round() as u32).max(1);
            image::imageops::resize(&t.image, size(w), size(h), image::imageops::FilterType::Triangle)
        })
        .collect();
    let widths: Vec<u32> = scaled.iter().zip(tiles).map(|(s, t)| s.width().max(text_width(&t.label, 2))).collect();
    let width = pad + widths.iter().map(|w| w + pad).sum::<u32>();
    let bytes = 3 * width as u64 * (height + caption + 2 * pad) as u64;
    budget::check(&format!("a contact sheet of {} pictures", tiles.len()), bytes, budget::PICTURE_BYTES)?;
    let mut sheet = RgbImage::from_pixel(width, height + caption + 2 * pad, WHITE);
    let mut x = pad;
    for ((img, tile), w) in scaled.iter().zip(tiles).zip(&widths) {
        text(&mut sheet, x as i64, pad as i64, &tile.label, 2, INK);
        image::imageops::replace(&mut sheet, img, x as i64, (pad + caption) as i64);
        x += w + pad;
    }
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(0.000312), "3.1e-4");
        assert_eq!(short(-12.25), "-12.25");
    }

    #[test]
    fn text_and_bars_draw_inside_the_picture() {
        let mut img = RgbImage::from_pixel(20, 10, WHITE);
        text(&mut img, 1, 1, "1a?", 1, BLACK);
        text(&mut img, 18, 8, "clipped", 2, BLACK); // off the edge: no panic
        assert_eq!(img.get_pixel(2, 1), &BLACK); // the top of '1'
        let chart = bars(&[vec![1.0], vec![0.25, 0.75]], 40, 30, |s, _| [s as u8 * 200, 0, 0]);
        assert_eq!(chart.dimensions(), (40, 30));
        let sheet = contact_sheet(&[Tile { label: "x".into(), image: img }], 30).unwrap();
        assert_eq!(sheet.height(), 30 + 16 + 16);
    }
}
