//! Charts (ssr only): plotters drawing SVG strings on the server. No JavaScript chart library.

use crate::model::{SERIES_COLORS, SpendSeries};
use plotters::prelude::*;

fn rgb(hex: &str) -> RGBColor {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

fn bucket_label(start_ms: i64, hourly: bool) -> String {
    chrono::DateTime::from_timestamp_millis(start_ms)
        .map(|t| t.format(if hourly { "%H:%M" } else { "%b %d" }).to_string())
        .unwrap_or_default()
}

/// Stacked bars of spend per bucket, one colour per series (`SERIES_COLORS`), dollars on the y
/// axis and dates (or hours) on the x axis. Empty string when nothing was spent: the page shows
/// an empty state instead of a broken chart.
pub fn spend_chart(s: &SpendSeries) -> String {
    let n = s.buckets.len();
    let max = (0..n).map(|i| s.series.iter().map(|(_, v)| v[i]).sum::<i64>()).max().unwrap_or(0);
    if n == 0 || max <= 0 {
        return String::new();
    }
    let hourly = s.bucket_ms == 3_600_000;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 280)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        // Pixels need floats; the money itself stays integer nano-USD until this point.
        let y_max = max as f64 / 1e9 * 1.12;
        let Ok(mut chart) = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(0..n as i32, 0f64..y_max)
        else {
            return String::new();
        };
        let label =
            |i: &i32| s.buckets.get(*i as usize).map(|b| bucket_label(*b, hourly)).unwrap_or_default();
        let money = |v: &f64| if y_max < 0.1 { format!("${v:.4}") } else { format!("${v:.2}") };
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 238, 242))
            .bold_line_style(RGBColor(226, 230, 236))
            .x_labels(n.min(10))
            .x_label_formatter(&label)
            .y_labels(5)
            .y_label_formatter(&money)
            .label_style(("sans-serif", 12).into_font().color(&RGBColor(93, 104, 120)))
            .axis_style(RGBColor(200, 205, 212))
            .draw();
        let mut base = vec![0i64; n];
        for (k, (_, values)) in s.series.iter().enumerate() {
            let color = rgb(SERIES_COLORS[k % SERIES_COLORS.len()]);
            let bars: Vec<_> = (0..n)
                .filter(|&i| values[i] > 0)
                .map(|i| {
                    let (y0, y1) = (base[i] as f64 / 1e9, (base[i] + values[i]) as f64 / 1e9);
                    let mut r = Rectangle::new([(i as i32, y0), (i as i32 + 1, y1)], color.filled());
                    r.set_margin(0, 0, 2, 2);
                    r
                })
                .collect();
            let _ = chart.draw_series(bars);
            for (b, v) in base.iter_mut().zip(values) {
                *b += v;
            }
        }
        let _ = root.present();
    }
    svg
}
