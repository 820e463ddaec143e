//! The timeline picture: who was on a conference call when, as one PNG attached when the
//! conference ends.
//!
//! It owns the layout, the drawing and the encoding of that picture: a [`Timeline`] (rows of
//! spans in milliseconds from the conference's start, labelled as the text messages show the
//! callers) becomes a [`Picture`] ([`draw`]) and PNG bytes ([`encode`], [`png`]). Building the
//! timeline from the roster is the caller's job. It is pure: no I/O, no clock and no time-zone
//! database (the title arrives already written, times are offsets from the start), and it never
//! panics, whatever the input. The same timeline always gives the same pixels: rectangles are
//! integer-aligned and glyph coverage is blended with one fixed integer formula ([`blend`]).
//! Rectangles are filled here by hand, glyphs are rasterized with `ab_glyph` from the one
//! embedded font (`assets/fonts/`, see its README), and the PNG is written by `png`: no image or
//! drawing library, for their build cost. Dependencies: none of ringside's own modules.
//!
//! Layout, top to bottom:
//!
//! - **Title**: the timeline's title as given, cut with `…` to the picture's width.
//! - **Rows** ([`plan`]): one per [`Row`], the host's rows first, then the others in the order
//!   given. The label sits in a column on the left, cut with `…` to fit it; each span is a bar
//!   from join to leave on the time axis, at least [`MIN_BAR_PX`] wide so an instant join and
//!   leave still shows. The host's bars have their own colour; a removed span is red with a `×`
//!   after its end. Rows are striped and light gridlines mark the ticks. With no rows, one row
//!   says so.
//! - **Time axis** ([`ticks`]): `0` at the start, the conference's length at the right edge, at
//!   most [`MAX_TICKS`] steps of a round length (1 s up to 12 h, then 1, 2 or 5 × 10ⁿ days); the
//!   labels count that step's unit and the last one names it (`0`, `10`, … `60 min`). A length of
//!   0 (or less) is drawn as an axis of [`MIN_AXIS_MS`]. Spans are clamped to the conference's
//!   length; one that ends before it starts is drawn as an instant at its start.
//! - **Legend**: host, caller, removed.
//!
//! Limits: the picture is [`WIDTH`] wide and grows in height with the rows, [`ROW_PX`] each, so
//! 50 callers make about 1,300 px. Both sides stay within [`MIN_SIDE`]`..=`[`MAX_SIDE`]. Past
//! what fits at [`ROW_PX`] (162 rows), rows compress evenly down to [`MIN_ROW_PX`]; past what
//! fits at that (324 rows), the first 323 are drawn and the last row says `… and N more callers`.
//!
//! Text is drawn glyph by glyph without shaping or kerning; a character the font lacks (emoji,
//! CJK) is drawn as `?`.

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use std::fmt;

/// One stretch of time a caller was on the call, in milliseconds from the conference's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Ended by a removal (`/kick`).
    pub removed: bool,
}

/// One row: a caller (or the host), labelled as the text messages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    pub host: bool,
    pub spans: Vec<Span>,
}

/// What the picture shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// E.g. "Conference · host Agent 122 · 2026-12-08 14:03 UTC": drawn as the title as given.
    pub title: String,
    /// The conference's length; spans are clamped to `[0, duration_ms]`.
    pub duration_ms: i64,
    pub rows: Vec<Row>,
}

/// A drawn picture.
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// RGBA8, row-major, `width × height × 4` bytes.
    pub rgba: Vec<u8>,
}

impl fmt::Debug for Picture {
    // Not the megabytes of pixels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Picture")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rgba_bytes", &self.rgba.len())
            .finish()
    }
}

/// The picture's width: Discord shows an attachment this wide at full size on a desktop.
pub const WIDTH: u32 = 800;
/// The least either side may be: a picture smaller than this is hard to open and read.
pub const MIN_SIDE: u32 = 200;
/// The most either side may be: a chat client shows a taller picture shrunk to fit until none of
/// its text is legible, and its buffer (800 × 4000 × 4 = 12.8 MB) is the most one picture may
/// cost in memory.
pub const MAX_SIDE: u32 = 4000;
/// A row's height: 14 px text and a 14 px bar, so 50 callers read easily at about 1,300 px.
pub const ROW_PX: u32 = 24;
/// The least a row is compressed to when many rows share [`MAX_SIDE`]: 10 px text, still
/// readable when zoomed.
pub const MIN_ROW_PX: u32 = 12;
/// The narrowest bar: a caller who joined and left within one pixel's time still shows.
pub const MIN_BAR_PX: u32 = 2;
/// The most steps on the time axis: with the plot 536 px wide, labels stay about 90 px apart.
pub const MAX_TICKS: i64 = 6;
/// The shortest axis drawn, so a conference of length 0 still has one.
pub const MIN_AXIS_MS: i64 = 1_000;

/// Liberation Sans Regular (SIL OFL 1.1), see `assets/fonts/README.md`.
static FONT: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");

const MARGIN: u32 = 16;
/// The title's line, from the top margin to the first row.
const TITLE_PX: u32 = 32;
const TITLE_TEXT_PX: f32 = 18.0;
/// The label column, left of the plot.
const LABEL_COLUMN_PX: u32 = 200;
const LABEL_GAP_PX: u32 = 8;
const PLOT_LEFT: u32 = MARGIN + LABEL_COLUMN_PX + LABEL_GAP_PX;
/// Room right of the plot for the last tick's label and a removal's `×`.
const PLOT_RIGHT: u32 = WIDTH - 40;
/// Below the rows: tick labels, then the legend.
const AXIS_PX: u32 = 24;
const LEGEND_PX: u32 = 24;
const SMALL_TEXT_PX: f32 = 12.0;
/// Everything but the rows.
const CHROME_PX: u32 = MARGIN + TITLE_PX + AXIS_PX + LEGEND_PX + MARGIN;
/// The most height the rows may take.
const ROWS_MAX_PX: u32 = MAX_SIDE - CHROME_PX;

type Rgb = [u8; 3];
const BACKGROUND: Rgb = [255, 255, 255];
const STRIPE: Rgb = [246, 248, 250];
const GRID: Rgb = [222, 226, 230];
const AXIS: Rgb = [140, 149, 159];
const INK: Rgb = [31, 35, 40];
const MUTED: Rgb = [87, 96, 106];
/// Blue, amber and red: told apart with the common colour-vision deficiencies too, and a removal
/// also has its `×`.
const CALLER_BAR: Rgb = [47, 129, 247];
const HOST_BAR: Rgb = [212, 140, 0];
const REMOVED_BAR: Rgb = [207, 34, 46];
const REMOVED_MARK: char = '×';

/// The timeline as a picture.
pub fn draw(timeline: &Timeline) -> Picture {
    let plan = plan(timeline);
    let mut canvas = Canvas::new(WIDTH, plan.height);
    // The font is part of the binary; if it ever failed to parse, the picture keeps its bars.
    let font = FontRef::try_from_slice(FONT).ok();
    let text = Text {
        font: font.as_ref(),
    };
    let axis = Axis::new(timeline.duration_ms);
    let ticks = ticks(axis.axis_ms);

    let title = text.fit(&timeline.title, TITLE_TEXT_PX, (WIDTH - 2 * MARGIN) as f32);
    let title_baseline = i64::from(MARGIN) + 18;
    text.draw(
        &mut canvas,
        &title,
        TITLE_TEXT_PX,
        MARGIN as f32,
        title_baseline,
        INK,
    );
    draw_rows(&mut canvas, &text, &plan, &axis, &ticks, timeline);
    let axis_baseline = draw_axis(&mut canvas, &text, &plan, &axis, &ticks);
    draw_legend(&mut canvas, &text, axis_baseline + i64::from(LEGEND_PX));
    canvas.into_picture()
}

/// Stripes, gridlines, labels and bars, and the summary or "nobody" row.
fn draw_rows(
    canvas: &mut Canvas,
    text: &Text<'_>,
    plan: &Plan<'_>,
    axis: &Axis,
    ticks: &[Tick],
    timeline: &Timeline,
) {
    for slot in (1..plan.slots).step_by(2) {
        let top = plan.slot_top(slot);
        canvas.fill(MARGIN, top, WIDTH - MARGIN, top + plan.row_px, STRIPE);
    }
    for tick in ticks {
        let x = axis.x_at(tick.at_ms);
        canvas.fill(x, plan.rows_top, x + 1, plan.rows_bottom(), GRID);
    }
    let label_px = plan.label_px();
    let bar_px = (plan.row_px * 7 / 12).max(4);
    for (slot, row) in (0..).zip(plan.shown.iter()) {
        let top = plan.slot_top(slot);
        let baseline = plan.baseline(slot);
        let label = text.fit(&row.label, label_px, LABEL_COLUMN_PX as f32);
        text.draw(canvas, &label, label_px, MARGIN as f32, baseline, INK);
        let bar_top = top + (plan.row_px - bar_px) / 2;
        for span in &row.spans {
            let (x0, x1) = axis.bar(span, timeline.duration_ms);
            let colour = match (span.removed, row.host) {
                (true, _) => REMOVED_BAR,
                (false, true) => HOST_BAR,
                (false, false) => CALLER_BAR,
            };
            canvas.fill(x0, bar_top, x1, bar_top + bar_px, colour);
            if span.removed {
                let mark = REMOVED_MARK.to_string();
                text.draw(
                    canvas,
                    &mark,
                    label_px,
                    (x1 + 2) as f32,
                    baseline,
                    REMOVED_BAR,
                );
            }
        }
    }
    let last = match plan.hidden {
        0 if timeline.rows.is_empty() => "nobody was on the call".to_owned(),
        0 => return,
        1 => "… and 1 more caller".to_owned(),
        n => format!("… and {n} more callers"),
    };
    let baseline = plan.baseline(plan.slots - 1);
    text.draw(canvas, &last, label_px, MARGIN as f32, baseline, MUTED);
}

/// The axis line under the rows, tick marks and labels; returns the labels' baseline.
fn draw_axis(
    canvas: &mut Canvas,
    text: &Text<'_>,
    plan: &Plan<'_>,
    axis: &Axis,
    ticks: &[Tick],
) -> i64 {
    let bottom = plan.rows_bottom();
    canvas.fill(PLOT_LEFT, bottom, PLOT_RIGHT + 1, bottom + 1, AXIS);
    let baseline = i64::from(bottom) + 17;
    // The last label (with the unit) always; the others where they clear their neighbours.
    let placed: Vec<(f32, f32, &Tick)> = ticks
        .iter()
        .map(|tick| {
            let width = text.width(&tick.label, SMALL_TEXT_PX);
            let centre = axis.x_at(tick.at_ms) as f32;
            let left = (centre - width / 2.0)
                .max(PLOT_LEFT as f32)
                .min((WIDTH - MARGIN) as f32 - width);
            (left, left + width, tick)
        })
        .collect();
    let last_left = placed.last().map_or(f32::MAX, |&(left, _, _)| left);
    let mut drawn_right = f32::MIN;
    for (index, &(left, right, tick)) in placed.iter().enumerate() {
        let x = axis.x_at(tick.at_ms);
        canvas.fill(x, bottom, x + 1, bottom + 4, AXIS);
        let last = index + 1 == placed.len();
        if last || (left >= drawn_right + 8.0 && right + 8.0 <= last_left) {
            text.draw(canvas, &tick.label, SMALL_TEXT_PX, left, baseline, MUTED);
            drawn_right = right;
        }
    }
    baseline
}

/// What the three bar colours mean.
fn draw_legend(canvas: &mut Canvas, text: &Text<'_>, baseline: i64) {
    let swatch_top = u32::try_from(baseline - 10).unwrap_or(0);
    let mut x = PLOT_LEFT;
    for (colour, name) in [
        (HOST_BAR, "host"),
        (CALLER_BAR, "caller"),
        (REMOVED_BAR, "removed ×"),
    ] {
        canvas.fill(x, swatch_top, x + 14, swatch_top + 10, colour);
        let end = text.draw(
            canvas,
            name,
            SMALL_TEXT_PX,
            (x + 20) as f32,
            baseline,
            MUTED,
        );
        x = (end.max(0.0) as u32).saturating_add(20);
    }
}

/// PNG bytes of the picture (RGBA8). Empty only when the picture is not one [`draw`] makes (a
/// side of 0, or a buffer that is not `width × height × 4` bytes), the one way the encoder can
/// fail on bytes in memory.
pub fn encode(picture: &Picture) -> Vec<u8> {
    let mut out = Vec::new();
    let size = (picture.width as usize)
        .checked_mul(picture.height as usize)
        .and_then(|pixels| pixels.checked_mul(4));
    if picture.width == 0 || picture.height == 0 || size != Some(picture.rgba.len()) {
        return out;
    }
    match write_png(picture, &mut out) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// [`draw`] and [`encode`].
pub fn png(timeline: &Timeline) -> Vec<u8> {
    encode(&draw(timeline))
}

fn write_png(picture: &Picture, out: &mut Vec<u8>) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, picture.width, picture.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&picture.rgba)?;
    writer.finish()
}

/// Which rows are drawn, how tall, and the picture's height.
struct Plan<'t> {
    /// The rows drawn with their bars: the host's first, then the given order.
    shown: Vec<&'t Row>,
    /// Rows summarised in the last row instead.
    hidden: usize,
    /// Row slots: the shown rows, plus one for the summary or for "nobody".
    slots: u32,
    row_px: u32,
    rows_top: u32,
    height: u32,
}

impl Plan<'_> {
    fn slot_top(&self, slot: u32) -> u32 {
        self.rows_top + slot * self.row_px
    }

    fn rows_bottom(&self) -> u32 {
        self.slot_top(self.slots)
    }

    /// The text's baseline in a slot: the text's middle on the row's middle.
    fn baseline(&self, slot: u32) -> i64 {
        let middle = i64::from(self.slot_top(slot)) + i64::from(self.row_px / 2);
        middle + (self.label_px() * 0.35) as i64
    }

    /// 14 px text, smaller in compressed rows.
    fn label_px(&self) -> f32 {
        (self.row_px - 2).min(14) as f32
    }
}

/// Host rows first, row height and the cut (see the module doc).
fn plan(timeline: &Timeline) -> Plan<'_> {
    let count = timeline.rows.len();
    let at_full = (ROWS_MAX_PX / ROW_PX) as usize;
    let at_least = (ROWS_MAX_PX / MIN_ROW_PX) as usize;
    let (show, row_px) = if count <= at_full {
        (count, ROW_PX)
    } else if count <= at_least {
        // `count` is at most `at_least`, far below u32::MAX.
        (count, ROWS_MAX_PX / count as u32)
    } else {
        (at_least - 1, MIN_ROW_PX)
    };
    let shown: Vec<&Row> = timeline
        .rows
        .iter()
        .filter(|row| row.host)
        .chain(timeline.rows.iter().filter(|row| !row.host))
        .take(show)
        .collect();
    let hidden = count - show;
    // `show` is at most `at_least`; one more slot for the summary or for "nobody".
    let slots = show as u32 + u32::from(hidden > 0 || count == 0);
    let rows_top = MARGIN + TITLE_PX;
    let height = (CHROME_PX + slots * row_px).clamp(MIN_SIDE, MAX_SIDE);
    Plan {
        shown,
        hidden,
        slots,
        row_px,
        rows_top,
        height,
    }
}

/// Times to x: `[0, axis_ms]` onto the plot.
struct Axis {
    axis_ms: i64,
}

impl Axis {
    fn new(duration_ms: i64) -> Self {
        Axis {
            axis_ms: duration_ms.max(MIN_AXIS_MS),
        }
    }

    fn x_at(&self, at_ms: i64) -> u32 {
        let at = i128::from(at_ms.clamp(0, self.axis_ms));
        let offset = at * i128::from(PLOT_RIGHT - PLOT_LEFT) / i128::from(self.axis_ms);
        // `offset` is within the plot's width.
        PLOT_LEFT + offset as u32
    }

    /// A span's bar, `[x0, x1)`, clamped to the conference and at least [`MIN_BAR_PX`] wide.
    fn bar(&self, span: &Span, duration_ms: i64) -> (u32, u32) {
        let end = duration_ms.max(0);
        let from = span.from_ms.clamp(0, end);
        let to = span.to_ms.clamp(from, end);
        let x0 = self.x_at(from).min(PLOT_RIGHT - MIN_BAR_PX);
        let x1 = self.x_at(to).max(x0 + MIN_BAR_PX);
        (x0, x1)
    }
}

/// How a tick's label counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl Unit {
    fn ms(self) -> i128 {
        match self {
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
            Unit::Days => 86_400_000,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Minutes => "min",
            Unit::Hours => "h",
            Unit::Days => "d",
        }
    }
}

/// The round steps below a day, each a whole number of its unit.
const STEPS: [(i128, Unit); 17] = [
    (1, Unit::Seconds),
    (2, Unit::Seconds),
    (5, Unit::Seconds),
    (10, Unit::Seconds),
    (15, Unit::Seconds),
    (30, Unit::Seconds),
    (1, Unit::Minutes),
    (2, Unit::Minutes),
    (5, Unit::Minutes),
    (10, Unit::Minutes),
    (15, Unit::Minutes),
    (30, Unit::Minutes),
    (1, Unit::Hours),
    (2, Unit::Hours),
    (3, Unit::Hours),
    (6, Unit::Hours),
    (12, Unit::Hours),
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tick {
    at_ms: i64,
    label: String,
}

/// The ticks of an axis `axis_ms` long: the smallest round step giving at most [`MAX_TICKS`]
/// steps; the last label names the unit.
fn ticks(axis_ms: i64) -> Vec<Tick> {
    let axis = i128::from(axis_ms.max(1));
    let fits = |step_ms: i128| axis / step_ms <= i128::from(MAX_TICKS);
    let (count, unit) = STEPS
        .iter()
        .copied()
        .find(|&(count, unit)| fits(count * unit.ms()))
        .unwrap_or_else(|| {
            // 1, 2 or 5 × 10ⁿ days; i64::MAX ms is under 10¹¹ days, so this ends by 10¹².
            let mut days: i128 = 1;
            loop {
                for multiple in [1, 2, 5] {
                    if fits(days * multiple * Unit::Days.ms()) || days >= 1_000_000_000_000 {
                        return (days * multiple, Unit::Days);
                    }
                }
                days *= 10;
            }
        });
    let step_ms = count * unit.ms();
    let steps = axis / step_ms;
    (0..=steps)
        .map(|index| {
            let at = index * step_ms;
            let value = index * count;
            let label = if index == steps {
                format!("{value} {}", unit.name())
            } else {
                value.to_string()
            };
            Tick {
                // `at` is at most `axis`, an i64.
                at_ms: i64::try_from(at).unwrap_or(axis_ms),
                label,
            }
        })
        .collect()
}

/// The RGBA buffer being drawn on; every write is clipped to it.
struct Canvas {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        let [r, g, b] = BACKGROUND;
        let rgba = [r, g, b, 255].repeat(width as usize * height as usize);
        Canvas {
            width,
            height,
            rgba,
        }
    }

    /// The rectangle `[x0, x1) × [y0, y1)`.
    fn fill(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, colour: Rgb) {
        let (x1, y1) = (x1.min(self.width), y1.min(self.height));
        if x0 >= x1 {
            return;
        }
        let stride = self.width as usize * 4;
        for y in y0..y1 {
            let start = y as usize * stride;
            let Some(line) = self
                .rgba
                .get_mut(start + x0 as usize * 4..start + x1 as usize * 4)
            else {
                return;
            };
            for pixel in line.chunks_exact_mut(4) {
                pixel[..3].copy_from_slice(&colour);
            }
        }
    }

    /// One pixel of a glyph, `coverage` of `colour` over what is there.
    fn blend(&mut self, x: i64, y: i64, colour: Rgb, coverage: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let at = (y as usize * self.width as usize + x as usize) * 4;
        if let Some(pixel) = self.rgba.get_mut(at..at + 3) {
            for (channel, &ink) in pixel.iter_mut().zip(colour.iter()) {
                *channel = blend(*channel, ink, coverage);
            }
        }
    }

    fn into_picture(self) -> Picture {
        Picture {
            width: self.width,
            height: self.height,
            rgba: self.rgba,
        }
    }
}

/// The one blend: coverage to a 0–255 weight, rounded, then an integer mix rounded to nearest.
fn blend(under: u8, ink: u8, coverage: f32) -> u8 {
    // NaN becomes 0 through the cast.
    let weight = (coverage.clamp(0.0, 1.0) * 255.0 + 0.5) as u32;
    let mixed = (u32::from(ink) * weight + u32::from(under) * (255 - weight) + 127) / 255;
    mixed as u8
}

/// Text in the embedded font; draws nothing if the font could not be read.
struct Text<'f> {
    font: Option<&'f FontRef<'static>>,
}

impl Text<'_> {
    /// The glyph for `c`, or `?`'s when the font has none.
    fn glyph(font: &FontRef<'_>, c: char) -> GlyphId {
        match font.glyph_id(c) {
            GlyphId(0) => font.glyph_id('?'),
            id => id,
        }
    }

    fn advance(font: &FontRef<'_>, px: f32, c: char) -> f32 {
        font.as_scaled(PxScale::from(px))
            .h_advance(Self::glyph(font, c))
    }

    fn width(&self, text: &str, px: f32) -> f32 {
        let Some(font) = self.font else { return 0.0 };
        text.chars().map(|c| Self::advance(font, px, c)).sum()
    }

    /// `text` cut with `…` to at most `max` wide; stops reading at the first character past
    /// `max`, so a very long label costs no more than a short one.
    fn fit(&self, text: &str, px: f32, max: f32) -> String {
        let Some(font) = self.font else {
            return String::new();
        };
        let ellipsis = Self::advance(font, px, '…');
        let mut width = 0.0;
        let mut cut = 0;
        for (index, c) in text.char_indices() {
            width += Self::advance(font, px, c);
            if width > max {
                let mut fitted = text[..cut].trim_end().to_owned();
                fitted.push('…');
                return fitted;
            }
            if width + ellipsis <= max {
                cut = index + c.len_utf8();
            }
        }
        text.to_owned()
    }

    /// Draws `text` with its baseline at `baseline`, from `x`; returns where the text ends.
    fn draw(
        &self,
        canvas: &mut Canvas,
        text: &str,
        px: f32,
        x: f32,
        baseline: i64,
        colour: Rgb,
    ) -> f32 {
        let Some(font) = self.font else { return x };
        let scaled = font.as_scaled(PxScale::from(px));
        let mut caret = x;
        for c in text.chars() {
            let id = Self::glyph(font, c);
            let glyph = id.with_scale_and_position(px, point(caret, baseline as f32));
            caret += scaled.h_advance(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
                outline.draw(|gx, gy, coverage| {
                    canvas.blend(left + i64::from(gx), top + i64::from(gy), colour, coverage);
                });
            }
        }
        caret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: i64 = 60_000;

    fn row(label: &str, host: bool, spans: &[(i64, i64, bool)]) -> Row {
        Row {
            label: label.to_owned(),
            host,
            spans: spans
                .iter()
                .map(|&(from_ms, to_ms, removed)| Span {
                    from_ms,
                    to_ms,
                    removed,
                })
                .collect(),
        }
    }

    fn timeline(rows: Vec<Row>) -> Timeline {
        Timeline {
            title: "Conference · host Agent 122 · 2026-12-08 14:03 UTC".to_owned(),
            duration_ms: 60 * MINUTE,
            rows,
        }
    }

    /// `count` callers on for the whole hour.
    fn callers(count: usize) -> Timeline {
        timeline(
            (0..count)
                .map(|index| {
                    row(
                        &format!("Caller {index}"),
                        false,
                        &[(0, 60 * MINUTE, false)],
                    )
                })
                .collect(),
        )
    }

    fn three_callers() -> Timeline {
        timeline(vec![
            row(
                "Paco Vu (•••1119)",
                false,
                &[(2 * MINUTE, 41 * MINUTE, false)],
            ),
            row(
                "•••4567",
                false,
                &[
                    (5 * MINUTE, 12 * MINUTE, false),
                    (20 * MINUTE, 33 * MINUTE, true),
                ],
            ),
            row("Agent 122", true, &[(0, 60 * MINUTE, false)]),
        ])
    }

    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    fn pixel(picture: &Picture, x: u32, y: u32) -> Rgb {
        let at = (y as usize * picture.width as usize + x as usize) * 4;
        [picture.rgba[at], picture.rgba[at + 1], picture.rgba[at + 2]]
    }

    /// The bars crossing column `x`, top to bottom: each run of bar-coloured pixels, by colour.
    fn bars_in_column(picture: &Picture, x: u32) -> Vec<Rgb> {
        let mut bars = Vec::new();
        let mut previous = None;
        for y in 0..picture.height {
            let colour = pixel(picture, x, y);
            let bar = [CALLER_BAR, HOST_BAR, REMOVED_BAR].contains(&colour);
            if bar && previous != Some(colour) {
                bars.push(colour);
            }
            previous = bar.then_some(colour);
        }
        bars
    }

    /// Decoded RGBA8 pixels and their size.
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
        let info = reader.next_frame(&mut pixels).expect("one frame");
        assert_eq!(info.color_type, png::ColorType::Rgba);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        pixels.truncate(info.buffer_size());
        (info.width, info.height, pixels)
    }

    fn within_bounds(picture: &Picture) -> bool {
        (MIN_SIDE..=MAX_SIDE).contains(&picture.width)
            && (MIN_SIDE..=MAX_SIDE).contains(&picture.height)
            && picture.rgba.len() == picture.width as usize * picture.height as usize * 4
    }

    const MIDDLE: u32 = (PLOT_LEFT + PLOT_RIGHT) / 2;

    #[test]
    fn the_png_decodes_to_the_drawn_size_in_rgba8() {
        let picture = draw(&three_callers());
        let (width, height, pixels) = decode(&encode(&picture));
        assert_eq!((width, height), (picture.width, picture.height));
        assert_eq!(pixels, picture.rgba);
        assert_eq!(png(&three_callers()), encode(&picture));
    }

    #[test]
    fn one_bar_per_caller() {
        for count in [3, 50] {
            let bars = bars_in_column(&draw(&callers(count)), MIDDLE);
            assert_eq!(bars, vec![CALLER_BAR; count], "{count} callers");
        }
        let picture = draw(&three_callers());
        assert_eq!(
            bars_in_column(&picture, Axis::new(60 * MINUTE).x_at(30 * MINUTE)),
            vec![HOST_BAR, CALLER_BAR, REMOVED_BAR]
        );
    }

    #[test]
    fn the_hosts_row_is_on_top_even_when_given_last() {
        let picture = draw(&three_callers());
        let at_ten_minutes = Axis::new(60 * MINUTE).x_at(10 * MINUTE);
        assert_eq!(
            bars_in_column(&picture, at_ten_minutes),
            vec![HOST_BAR, CALLER_BAR, CALLER_BAR]
        );
    }

    #[test]
    fn removed_spans_are_red_with_a_mark_after_them() {
        let picture = draw(&three_callers());
        let axis = Axis::new(60 * MINUTE);
        let (_, end) = axis.bar(
            &Span {
                from_ms: 20 * MINUTE,
                to_ms: 33 * MINUTE,
                removed: true,
            },
            60 * MINUTE,
        );
        let third_row = plan(&three_callers()).rows_top + 2 * ROW_PX;
        let marked = (end + 1..end + 14)
            .flat_map(|x| (third_row..third_row + ROW_PX).map(move |y| (x, y)))
            .filter(|&(x, y)| {
                let [r, g, b] = pixel(&picture, x, y);
                r > 150 && g < 150 && b < 150
            })
            .count();
        assert!(marked > 5, "{marked} reddish pixels after the bar");
    }

    #[test]
    fn the_decoded_pixels_of_three_callers_are_pinned() {
        let (_, _, pixels) = decode(&png(&three_callers()));
        assert_eq!(format!("{:016x}", fnv1a(&pixels)), "28a19aee5c70e6af");
    }

    #[test]
    fn a_character_the_font_lacks_is_drawn_as_a_question_mark() {
        let with = |label: &str| {
            let mut timeline = three_callers();
            timeline.rows[0].label = label.to_owned();
            fnv1a(&draw(&timeline).rgba)
        };
        assert_eq!(with("Paco 😀 会"), with("Paco ? ?"));
        assert_ne!(with("Paco ? ?"), with("Paco ! !"));
    }

    #[test]
    fn long_labels_are_cut_with_an_ellipsis_to_the_label_column() {
        let font = FontRef::try_from_slice(FONT).ok();
        let text = Text {
            font: font.as_ref(),
        };
        let long = "Caller with a very long name indeed, far too long to fit ".repeat(1000);
        let fitted = text.fit(&long, 14.0, LABEL_COLUMN_PX as f32);
        assert!(fitted.ends_with('…'), "{fitted}");
        assert!(text.width(&fitted, 14.0) <= LABEL_COLUMN_PX as f32);
        assert_eq!(text.fit("Agent 122", 14.0, 200.0), "Agent 122");
    }

    #[test]
    fn sizes_stay_within_bounds_for_any_number_of_rows() {
        for count in [0, 1, 2, 50, 500, 10_000] {
            let picture = draw(&callers(count));
            assert!(within_bounds(&picture), "{count} rows: {picture:?}");
            assert_eq!(picture.width, WIDTH);
        }
        assert_eq!(draw(&callers(50)).height, CHROME_PX + 50 * ROW_PX);
    }

    #[test]
    fn rows_compress_then_the_rest_are_summarised() {
        let picture = draw(&callers(200));
        assert_eq!(bars_in_column(&picture, MIDDLE).len(), 200);
        let picture = draw(&callers(10_000));
        assert_eq!(picture.height, MAX_SIDE);
        let shown = (ROWS_MAX_PX / MIN_ROW_PX) as usize - 1;
        assert_eq!(bars_in_column(&picture, MIDDLE).len(), shown);
        assert_eq!(plan(&callers(10_000)).hidden, 10_000 - shown);
    }

    #[test]
    fn ticks_are_round_steps_from_seconds_to_centuries() {
        let labels = |axis_ms: i64| -> Vec<String> {
            ticks(axis_ms).into_iter().map(|tick| tick.label).collect()
        };
        assert_eq!(
            labels(60 * MINUTE),
            ["0", "10", "20", "30", "40", "50", "60 min"]
        );
        assert_eq!(labels(45_000), ["0", "10", "20", "30", "40 s"]);
        assert_eq!(labels(MIN_AXIS_MS), ["0", "1 s"]);
        assert_eq!(labels(5 * 60 * MINUTE), ["0", "1", "2", "3", "4", "5 h"]);
        let last = ticks(i64::MAX);
        assert!(last.len() as i64 <= MAX_TICKS + 1 && last.len() >= 2);
    }

    #[test]
    fn a_conference_of_length_zero_and_odd_spans_still_draw() {
        let odd = Timeline {
            title: String::new(),
            duration_ms: 0,
            rows: vec![
                row("", false, &[(5, -5, true), (i64::MIN, i64::MAX, false)]),
                row("x", true, &[]),
            ],
        };
        assert!(within_bounds(&draw(&odd)));
        let huge = Timeline {
            duration_ms: i64::MAX,
            ..odd
        };
        assert!(within_bounds(&draw(&huge)));
        assert!(
            encode(&Picture {
                width: 2,
                height: 2,
                rgba: vec![0; 3],
            })
            .is_empty()
        );
    }

    fn any_span() -> impl Strategy<Value = Span> {
        let time = prop_oneof![any::<i64>(), -10 * MINUTE..200 * MINUTE];
        (time.clone(), time, any::<bool>()).prop_map(|(from_ms, to_ms, removed)| Span {
            from_ms,
            to_ms,
            removed,
        })
    }

    fn any_row() -> impl Strategy<Value = Row> {
        (
            any::<String>(),
            any::<bool>(),
            proptest::collection::vec(any_span(), 0..4),
        )
            .prop_map(|(label, host, spans)| Row { label, host, spans })
    }

    /// An eighth of proptest's cases (`PROPTEST_CASES`, 256 when unset): each draws a picture of
    /// up to a few megabytes, unoptimized under `cargo test`.
    fn config() -> ProptestConfig {
        let base = ProptestConfig::default();
        ProptestConfig {
            cases: (base.cases / 8).max(1),
            ..base
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Any timeline draws, within the size limits.
        #[test]
        fn drawing_never_panics_and_stays_within_bounds(
            title in any::<String>(),
            duration_ms in prop_oneof![any::<i64>(), 0..300 * MINUTE],
            rows in prop_oneof![
                proptest::collection::vec(any_row(), 0..8),
                proptest::collection::vec(any_row(), 0..400),
            ],
        ) {
            let picture = draw(&Timeline { title, duration_ms, rows });
            prop_assert!(within_bounds(&picture), "{picture:?}");
        }
    }
}
