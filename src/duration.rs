//! The one way durations are written for a person: jiff's friendly format, compact
//! (`45s`, `10m`, `3h12m`, `2d4h`), at most the two largest units.

use jiff::fmt::friendly::{Designator, FractionalUnit, Spacing, SpanPrinter};
use jiff::{SignedDuration, Span};

const PRINTER: SpanPrinter = SpanPrinter::new().designator(Designator::Compact).spacing(Spacing::None);

/// The longest span written: about 19,000 years, well inside jiff's range.
const MAX_DAYS: i64 = 7_000_000;

/// A whole number of seconds, e.g. `3h12m`; negative counts as zero.
pub fn friendly(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = ((secs / 86_400).min(MAX_DAYS), secs % 86_400 / 3_600, secs % 3_600 / 60, secs % 60);
    let span = match (d, h, m) {
        (0, 0, 0) => Span::new().seconds(s),
        (0, 0, _) => Span::new().minutes(m),
        (0, _, _) => Span::new().hours(h).minutes(m),
        _ => Span::new().days(d).hours(h),
    };
    PRINTER.span_to_string(&span)
}

/// How long a run took: a tenth of a second under a minute (`12.3s`), else [`friendly`].
pub fn took(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 60.0 {
        let printer = PRINTER.fractional(Some(FractionalUnit::Second)).precision(Some(1));
        return printer.duration_to_string(&SignedDuration::from_secs_f64(seconds));
    }
    friendly(seconds.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(friendly(-3), "0s");
        assert_eq!(friendly(45), "45s");
        assert_eq!(friendly(600), "10m");
        assert_eq!(friendly(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(friendly(2 * 86_400 + 4 * 3600 + 5), "2d4h");
        assert_eq!(friendly(2 * 86_400), "2d");
        assert_eq!(friendly(i64::MAX), "7000000d15h");
    }

    #[test]
    fn run_times_read_well() {
        assert_eq!(took(12.34), "12.3s");
        assert_eq!(took(0.0), "0.0s");
        assert_eq!(took(245.0), "4m");
        assert_eq!(took(3725.0), "1h2m");
        assert_eq!(took(f64::NAN), "?");
    }
}
