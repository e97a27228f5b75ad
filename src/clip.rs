//! The one truncation helper: text cut to a limit on a char boundary, ending in `…` when
//! cut. Every length bound of the project (status messages, Event notes, Slack text, the
//! terminal) goes through [`clip`], so no cut can panic inside a multi-byte character.

use std::borrow::Cow;

/// The mark of a cut.
pub const ELLIPSIS: char = '…';

/// A length bound, in the unit of whoever enforces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// UTF-8 bytes: the status, Event notes, anything stored in etcd.
    Bytes(usize),
    /// Unicode scalar values: Slack's text limits, the terminal.
    Chars(usize),
}

/// `s` within `limit`, the ellipsis included; borrowed when it already fits.
pub fn clip(s: &str, limit: Limit) -> Cow<'_, str> {
    let keep = match limit {
        Limit::Bytes(max) if s.len() <= max => return Cow::Borrowed(s),
        Limit::Bytes(max) if max < ELLIPSIS.len_utf8() => return Cow::Owned(s[..floor_boundary(s, max)].to_string()),
        Limit::Bytes(max) => floor_boundary(s, max - ELLIPSIS.len_utf8()),
        Limit::Chars(max) => match s.char_indices().nth(max) {
            None => return Cow::Borrowed(s),
            Some(_) if max == 0 => return Cow::Owned(String::new()),
            Some(_) => s.char_indices().nth(max - 1).map_or(0, |(i, _)| i),
        },
    };
    let mut out = String::with_capacity(keep + ELLIPSIS.len_utf8());
    out.push_str(&s[..keep]);
    out.push(ELLIPSIS);
    Cow::Owned(out)
}

/// [`clip`] in place.
pub fn clip_in_place(s: &mut String, limit: Limit) {
    if let Cow::Owned(cut) = clip(s, limit) {
        *s = cut;
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cuts_on_char_boundaries_and_marks_the_cut() {
        assert_eq!(clip("short", Limit::Bytes(10)), "short");
        assert_eq!(clip("héllo wörld", Limit::Bytes(6)), "hé…");
        assert_eq!(clip("日本語テキスト", Limit::Bytes(8)), "日…");
        assert_eq!(clip("日本語", Limit::Bytes(2)), "");
        assert_eq!(clip("日本語テキスト", Limit::Chars(3)), "日本…");
        assert_eq!(clip("日本語", Limit::Chars(3)), "日本語");
        assert_eq!(clip("abc", Limit::Chars(0)), "");
        assert!(matches!(clip("fits", Limit::Chars(4)), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn never_exceeds_the_limit_nor_panics(s in "\\PC{0,64}", max in 0usize..80) {
            let bytes = clip(&s, Limit::Bytes(max));
            prop_assert!(bytes.len() <= max);
            prop_assert!(s.starts_with(bytes.trim_end_matches(ELLIPSIS)) || bytes.is_empty());
            let chars = clip(&s, Limit::Chars(max));
            prop_assert!(chars.chars().count() <= max);
            if s.chars().count() <= max {
                prop_assert_eq!(chars.as_ref(), s.as_str());
            }
        }
    }
}
