//! Text for mrkdwn: every piece of user data escaped and cut to a budget counted in
//! serialized JSON characters.

// ---------------------------------------------------------------------------------------
// Text within a budget.

/// Lines of mrkdwn text whose serialized JSON length stays within `cap`.
pub(super) struct Text {
    buf: String,
    cost: usize,
    cap: usize,
}

impl Text {
    pub(super) fn new(cap: usize) -> Self {
        Self { buf: String::new(), cost: 0, cap }
    }

    pub(super) fn added_cost(&self, piece: &str, sep: &str) -> usize {
        json_cost(piece) + if self.buf.is_empty() { 0 } else { json_cost(sep) }
    }

    pub(super) fn fits(&self, piece: &str, sep: &str, reserve: usize) -> bool {
        self.cost + self.added_cost(piece, sep) + reserve <= self.cap
    }

    /// Appends `piece` after `sep`, cut to what is left. Pieces are already escaped, so
    /// the cut happens at a space or a char boundary before any entity it would split.
    pub(super) fn push_with(&mut self, piece: &str, sep: &str) -> bool {
        let piece = if self.fits(piece, sep, 0) {
            piece.to_string()
        } else {
            let room = self.cap.saturating_sub(self.cost + if self.buf.is_empty() { 0 } else { json_cost(sep) });
            cut_escaped(piece, room)
        };
        if piece.is_empty() || !self.fits(&piece, sep, 0) {
            return false;
        }
        self.cost += self.added_cost(&piece, sep);
        if !self.buf.is_empty() {
            self.buf.push_str(sep);
        }
        self.buf.push_str(&piece);
        true
    }

    pub(super) fn push_line(&mut self, line: &str) -> bool {
        self.push_with(line, "\n")
    }

    pub(super) fn push_inline(&mut self, piece: &str) -> bool {
        self.push_with(piece, " ")
    }

    /// Lines while they fit, keeping room for the "…and N more" line and `reserve`; then
    /// that line when `total` is more than what was shown.
    pub(super) fn push_list(
        &mut self,
        lines: impl Iterator<Item = String>,
        total: u64,
        more: impl Fn(u64) -> String,
        reserve: usize,
    ) {
        self.push_weighted(lines.map(|l| (l, 1)), total, more, reserve);
    }

    /// Lines while they fit, each standing for `weight` of the `total` items (an entry
    /// for its findings), then "…and N more" for the items not shown.
    pub(super) fn push_weighted(
        &mut self,
        lines: impl Iterator<Item = (String, u64)>,
        total: u64,
        more: impl Fn(u64) -> String,
        reserve: usize,
    ) {
        let room_for_more = json_cost(&more(total)) + 2;
        let mut shown = 0u64;
        for (line, weight) in lines {
            let last = shown + weight >= total;
            let keep = reserve + if last { 0 } else { room_for_more };
            if shown >= total || !self.fits(&line, "\n", keep) {
                break;
            }
            self.push_line(&line);
            shown += weight;
        }
        if shown < total {
            self.push_line(&more(total - shown));
        }
    }

    pub(super) fn into_string(self) -> String {
        self.buf
    }
}

/// Length of `s` once serialized as (the inside of) a JSON string by serde_json.
pub(super) fn json_cost(s: &str) -> usize {
    s.chars().map(json_char_cost).sum()
}

pub(super) fn json_char_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        c if (c as u32) < 0x20 => 6,
        _ => 1,
    }
}

/// User data for mrkdwn: control characters (newlines) become spaces, `&`, `<` and `>`
/// become entities so nothing is a mention or a link, and the result is cut on a char
/// boundary to `max` serialized characters, ending in "…" when cut.
pub(super) fn plain(raw: &str, max: usize) -> String {
    escape_within(raw.chars().map(|c| if c.is_control() { ' ' } else { c }), max)
}

/// Like [`plain`] for the inside of a `code span`: backticks would end it early.
pub(super) fn code(raw: &str, max: usize) -> String {
    let s = escape_within(
        raw.chars().map(|c| {
            if c.is_control() {
                ' '
            } else if c == '`' {
                '\''
            } else {
                c
            }
        }),
        max,
    );
    if s.trim().is_empty() { "-".into() } else { s }
}

pub(super) fn escape_within(chars: impl Iterator<Item = char>, max: usize) -> String {
    let chars: Vec<char> = chars.collect();
    let total: usize = chars.iter().map(|&c| escaped_cost(c)).sum();
    let budget = if total <= max { max } else { max.saturating_sub(1) };
    let mut out = String::new();
    let mut cost = 0;
    for &c in &chars {
        let n = escaped_cost(c);
        if cost + n > budget {
            out.push('…');
            return out;
        }
        cost += n;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn escaped_cost(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        c => json_char_cost(c),
    }
}

/// Cuts already-escaped text to `max` serialized characters without splitting an entity.
pub(super) fn cut_escaped(s: &str, max: usize) -> String {
    if json_cost(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut cost = 0;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let token =
            ["&amp;", "&lt;", "&gt;"].into_iter().find(|e| rest.starts_with(e)).unwrap_or(&rest[..c.len_utf8()]);
        let n = json_cost(token);
        if cost + n + 1 > max {
            out.push('…');
            return out;
        }
        cost += n;
        out.push_str(token);
        rest = &rest[token.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cost_matches_serde() {
        for s in ["plain", "quote \" back \\ slash", "new\nline\ttab\r\u{1}\u{1f}", "émoji 🚀 עברית é", ""] {
            assert_eq!(json_cost(s) + 2, serde_json::to_string(s).unwrap().chars().count(), "{s:?}");
        }
    }

    #[test]
    fn plain_escapes_and_cuts_on_char_boundaries() {
        assert_eq!(plain("a & <b> \n c", 100), "a &amp; &lt;b&gt;   c");
        assert_eq!(plain("<!channel>", 100), "&lt;!channel&gt;");
        let cut = plain(&"🚀é".repeat(100), 11);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
        // Never splits an entity.
        let cut = plain("&&&&", 12);
        assert_eq!(cut, "&amp;&amp;…");
        assert!(json_cost(&plain(&"&".repeat(1000), 50)) <= 50);
    }

    #[test]
    fn code_spans_have_no_backticks() {
        assert_eq!(code("a`b", 10), "a'b");
        assert_eq!(code("", 10), "-");
    }

    #[test]
    fn text_respects_its_cap() {
        let mut t = Text::new(40);
        assert!(t.push_line("first line"));
        assert!(t.push_line(&"x".repeat(100)));
        assert!(!t.push_line("no room"));
        let s = t.into_string();
        assert!(json_cost(&s) <= 40);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn cut_escaped_keeps_entities_whole() {
        assert_eq!(cut_escaped("a&amp;b", 5), "a…");
        assert_eq!(cut_escaped("a&amp;bc", 7), "a&amp;…");
        assert_eq!(cut_escaped("abc", 3), "abc");
    }
}
