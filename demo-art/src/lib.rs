//! The demo catalog's pictures, drawn by code: a cover (600×900) and screenshots (1280×720),
//! each different and labelled with the title. Colours and shapes come
//! from a hash of the title, so a product looks the same on every machine and every run.
//!
//! The scene (gradient sky, sun, stars or clouds, layered ridges) is drawn at a quarter of the
//! size and scaled up, which keeps it soft and cheap; the title is set on top at full size in
//! an 8×8 bitmap font (`font8x8`, public domain). A crate of its own so that it is built
//! optimised in the dev profile too (the api's `seed-demo` draws 640 pictures).

use image::{Rgb, RgbImage};

/// Cover size (portrait, like a box).
pub const COVER: (u32, u32) = (600, 900);
/// Screenshot size.
pub const SCREENSHOT: (u32, u32) = (1280, 720);
/// Screenshots per product (the label of screenshot `n` says `n/SCREENSHOTS`).
pub const SCREENSHOTS: usize = 3;
/// The scene is drawn this many times smaller than the picture.
const SCENE_SCALE: u32 = 4;

/// FNV-1a: a stable hash of the title (the product's id differs on every machine).
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64: a tiny deterministic generator, the same everywhere. The pictures, the demo
/// catalog of the seed and the tests' fuzzer draw from it.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0 .. n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// A number in `0.0 .. 1.0`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

/// HSL (hue in degrees, saturation and lightness 0–1) to RGB.
fn hsl(h: f32, s: f32, l: f32) -> [f32; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn px(c: [f32; 3]) -> Rgb<u8> {
    Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8))
}

fn blend(img: &mut RgbImage, x: u32, y: u32, c: [f32; 3], alpha: f32) {
    let p = img.get_pixel_mut(x, y);
    let old = p.0.map(f32::from);
    *p = px(mix(old, c, alpha));
}

/// One product's look: its hues, kept across its cover and screenshots.
struct Palette {
    hue: f32,
    accent: f32,
    night: bool,
}

impl Palette {
    fn of(title: &str) -> Palette {
        let h = hash(title);
        Palette {
            hue: (h % 360) as f32,
            accent: ((h >> 16) % 120 + 120) as f32,
            night: (h >> 32).is_multiple_of(3),
        }
    }
}

/// The scene at `w × h` (already divided by [`SCENE_SCALE`]), variant `n` of the product.
fn scene(p: &Palette, w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let (wf, hf) = (w as f32, h as f32);
    let (sky_top, sky_low) = if p.night {
        (
            hsl(p.hue + 200.0, 0.55, 0.10),
            hsl(p.hue + 160.0, 0.60, 0.35),
        )
    } else {
        (hsl(p.hue, 0.65, 0.55), hsl(p.hue + 40.0, 0.80, 0.80))
    };
    let horizon = rng.range(0.45, 0.7);
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let t = y as f32 / hf / horizon + 0.15 * (x as f32 / wf - 0.5);
        px(mix(sky_top, sky_low, t))
    });
    // A sun or a moon with a glow.
    let (sx, sy) = (
        rng.range(0.2, 0.8) * wf,
        rng.range(0.15, horizon - 0.1) * hf,
    );
    let radius = rng.range(0.06, 0.12) * wf.min(hf) * 1.5;
    let sun = if p.night {
        hsl(p.hue + 60.0, 0.3, 0.9)
    } else {
        hsl(p.hue + p.accent, 0.9, 0.7)
    };
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f32 - sx).powi(2) + (y as f32 - sy).powi(2)).sqrt();
            if d < radius {
                blend(&mut img, x, y, sun, 1.0);
            } else if d < radius * 3.0 {
                let a = 0.35 * (1.0 - (d - radius) / (radius * 2.0)).powi(2);
                blend(&mut img, x, y, sun, a);
            }
        }
    }
    // Stars by night, soft round clouds by day.
    if p.night {
        for _ in 0..(w * h / 150) {
            let x = rng.range(0.0, wf) as u32;
            let y = rng.range(0.0, hf * horizon) as u32;
            if x < w && y < h {
                blend(&mut img, x, y, [255.0, 255.0, 240.0], rng.range(0.3, 0.9));
            }
        }
    } else {
        for _ in 0..4 {
            let (cx, cy) = (rng.range(0.0, wf), rng.range(0.05, horizon * 0.8) * hf);
            let (rx, ry) = (rng.range(0.08, 0.2) * wf, rng.range(0.02, 0.05) * hf);
            for y in 0..h {
                for x in 0..w {
                    let d = ((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2);
                    if d < 1.0 {
                        blend(&mut img, x, y, [255.0, 255.0, 255.0], 0.45 * (1.0 - d));
                    }
                }
            }
        }
    }
    // Layered ridges, darker and bluer towards the front.
    let layers = 4;
    for layer in 0..layers {
        let depth = layer as f32 / (layers - 1) as f32;
        let base = (horizon + depth * (1.0 - horizon) * 0.6) * hf;
        let amp = rng.range(0.04, 0.12) * hf * (1.0 - 0.4 * depth);
        let (f1, f2) = (rng.range(1.0, 3.0), rng.range(4.0, 9.0));
        let (ph1, ph2) = (rng.range(0.0, 6.3), rng.range(0.0, 6.3));
        let colour = mix(
            hsl(
                p.hue + p.accent * 0.5,
                0.45,
                if p.night { 0.25 } else { 0.45 },
            ),
            hsl(p.hue + 220.0, 0.50, 0.08),
            depth,
        );
        for x in 0..w {
            let u = x as f32 / wf * std::f32::consts::TAU;
            let top = base - amp * ((u * f1 + ph1).sin() + 0.35 * (u * f2 + ph2).sin());
            for y in (top.max(0.0) as u32)..h {
                blend(&mut img, x, y, colour, 1.0);
            }
        }
    }
    img
}

/// Draws `text` in the 8×8 font at `(x, y)`, each font pixel `scale` pixels wide, with a shadow.
fn text(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32, colour: [f32; 3]) {
    let shadow = (scale / 3).max(1);
    for (offset, c, alpha) in [(shadow, [0.0; 3], 0.55), (0, colour, 1.0)] {
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY
                .get(ch as usize)
                .copied()
                .unwrap_or(font8x8::legacy::NOTHING_TO_DISPLAY);
            let gx = x + offset + i as u32 * 8 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8u32 {
                    if bits & (1 << col) == 0 {
                        continue;
                    }
                    let (px0, py0) = (gx + col * scale, y + offset + row as u32 * scale);
                    for yy in py0..(py0 + scale).min(img.height()) {
                        for xx in px0..(px0 + scale).min(img.width()) {
                            blend(img, xx, yy, c, alpha);
                        }
                    }
                }
            }
        }
    }
}

/// Darkens a band of rows, for text to stand on.
fn band(img: &mut RgbImage, y0: u32, y1: u32, strength: f32) {
    let (w, h) = img.dimensions();
    for y in y0..y1.min(h) {
        for x in 0..w {
            blend(img, x, y, [0.0; 3], strength);
        }
    }
}

/// The title in lines of whole words fitting `columns` characters.
fn wrap(title: &str, columns: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in title.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= columns => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

fn scaled_scene(p: &Palette, (w, h): (u32, u32), seed: u64) -> RgbImage {
    let small = scene(p, w / SCENE_SCALE, h / SCENE_SCALE, seed);
    image::imageops::resize(&small, w, h, image::imageops::FilterType::CatmullRom)
}

/// The cover: the scene with the title set large in a dark band at the bottom.
pub fn cover(title: &str) -> RgbImage {
    let p = Palette::of(title);
    let (w, h) = COVER;
    let mut img = scaled_scene(&p, COVER, hash(title));
    let upper = title.to_uppercase();
    let longest = upper.split_whitespace().map(str::len).max().unwrap_or(1) as u32;
    let scale = ((w - 60) / (8 * longest.max(1))).clamp(3, 7);
    let lines = wrap(&upper, ((w - 60) / (8 * scale)) as usize);
    let line_h = 8 * scale + scale * 3;
    let block = line_h * lines.len() as u32;
    let top = h - block - 70;
    band(&mut img, top - 30, h, 0.45);
    for (n, line) in lines.iter().enumerate() {
        let lw = line.len() as u32 * 8 * scale;
        let x = w.saturating_sub(lw) / 2;
        text(
            &mut img,
            line,
            x,
            top + n as u32 * line_h,
            scale,
            [255.0; 3],
        );
    }
    let accent = hsl(p.hue + p.accent, 0.85, 0.65);
    for x in (w / 2 - 60)..(w / 2 + 60) {
        for y in (h - 40)..(h - 34) {
            blend(&mut img, x, y, accent, 1.0);
        }
    }
    img
}

/// Screenshot `n` (0-based): another scene of the same palette, with a game-like overlay and
/// the title in a corner.
pub fn screenshot(title: &str, n: usize) -> RgbImage {
    let p = Palette::of(title);
    let (w, h) = SCREENSHOT;
    let mut img = scaled_scene(&p, SCREENSHOT, hash(title) ^ (0xC0FFEE * (n as u64 + 1)));
    band(&mut img, 0, 64, 0.4);
    text(&mut img, &title.to_uppercase(), 28, 18, 3, [255.0; 3]);
    let label = format!("{}/{SCREENSHOTS}", n + 1);
    let lw = label.len() as u32 * 8 * 3;
    text(&mut img, &label, w - lw - 28, 18, 3, [230.0; 3]);
    // A health bar and a small map, so it reads as a game.
    let accent = hsl(p.hue + p.accent, 0.85, 0.6);
    let filled = 120 + (hash(title) >> (n * 8)) as u32 % 160;
    for y in (h - 56)..(h - 36) {
        for x in 28..(28 + 300) {
            let c = if x < 28 + filled { accent } else { [20.0; 3] };
            blend(&mut img, x, y, c, 0.85);
        }
    }
    for y in (h - 176)..(h - 36) {
        for x in (w - 208)..(w - 28) {
            blend(&mut img, x, y, [10.0, 10.0, 20.0], 0.5);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_sized_distinct_and_deterministic() {
        let a = cover("Crimson Frontier");
        assert_eq!(a.dimensions(), COVER);
        assert_eq!(
            a,
            cover("Crimson Frontier"),
            "the same title, the same picture"
        );
        assert_ne!(a, cover("Neon Harbor"), "another title, another cover");
        let shot = screenshot("Crimson Frontier", 0);
        assert_eq!(shot.dimensions(), SCREENSHOT);
        assert_ne!(
            shot,
            screenshot("Crimson Frontier", 1),
            "each screenshot is another scene"
        );
        // Set `DEMO_ART_DIR` to look at them.
        if let Some(dir) = std::env::var_os("DEMO_ART_DIR") {
            let dir = std::path::Path::new(&dir);
            a.save(dir.join("cover.png")).expect("cover.png");
            shot.save(dir.join("screenshot.png"))
                .expect("screenshot.png");
        }
    }

    #[test]
    fn titles_wrap_by_words() {
        assert_eq!(
            wrap("MIDNIGHT CARNIVAL 401", 10),
            vec!["MIDNIGHT", "CARNIVAL", "401"]
        );
        assert_eq!(wrap("IRON ATLAS", 10), vec!["IRON ATLAS"]);
    }
}
