#!/usr/bin/env python3
"""Draws a Slack message payload as an SVG picture of how the Slack client shows it.

    python3 tools/render_slack.py PAYLOAD.json OUT.svg          write the picture
    python3 tools/render_slack.py --check PAYLOAD.json OUT.svg  exit 1 if OUT.svg is stale

PAYLOAD.json is one message as morningcheck posts it: {"text": ..., "blocks": [...]}.
The picture is a white card with the app's avatar and name line, then the blocks in
order: header, section (mrkdwn text and two-column fields), context and divider; with no
blocks, the fallback text. The mrkdwn understood is the digest's: *bold*, _italic_,
~strike~, `code`, line breaks, links <url|label> and <url>, mentions (<!here>,
<!channel>, <!subteam^ID>, <@U123>), :emoji: shortcodes and the &amp; &lt; &gt; escapes.

Text wraps at the message width with a fixed table of character widths (Helvetica's), and
each run of text carries the width it was given (textLength), so every viewer lays the
picture out the same way, whatever font it picks from the stack. The output depends on
the payload alone: the same payload always gives byte-identical SVG. Standard library
only.
"""

import argparse
import json
import re
import sys
import unicodedata

CONTENT_W = 720                    # width of the message's content column, px
PAD, AVATAR = 20, 36               # card padding; avatar square
X0 = PAD + AVATAR + 10             # left edge of the content column
CARD_W = X0 + CONTENT_W + PAD
TOP = 14                           # top of the name line
BLOCK_GAP = 8                      # between two blocks
FIELD_GAP = 16                     # between the two columns of a section's fields
APP_NAME = "morningcheck"

FONT = "Lato, 'Helvetica Neue', Helvetica, Arial, sans-serif"
MONO = "Monaco, Menlo, Consolas, 'Courier New', monospace"
EMOJI_FONT = "'Apple Color Emoji', 'Segoe UI Emoji', 'Noto Color Emoji', sans-serif"
INK, GREY, LINK, CODE_INK = "#1d1c1d", "#616061", "#1264a3", "#e01e5a"

# font size, line height, colour and weight of each kind of text
KINDS = {"header": (18, 26, INK, True), "body": (15, 22, INK, False),
         "context": (12, 18, GREY, False)}

# Helvetica's advance widths (per 1000 em) for ' ' .. '~'; the oblique has the regular's.
_REG = ("278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 " + "556 " * 10 +
        "278 278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 556 833 "
        "722 778 667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 333 556 "
        "556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 278 556 "
        "500 722 500 500 500 334 260 334 584")
_BOLD = ("278 333 474 556 556 889 722 238 333 333 389 584 278 333 278 278 " + "556 " * 10 +
         "333 333 584 584 584 611 975 722 722 722 722 667 611 778 722 278 556 722 611 833 "
         "722 778 667 778 722 667 611 722 667 944 667 667 611 333 278 333 584 556 333 556 "
         "611 556 611 556 333 611 611 278 278 556 278 889 611 611 611 611 389 556 333 611 "
         "556 778 556 556 500 389 280 389 584")
WIDTHS = {False: [int(w) for w in _REG.split()], True: [int(w) for w in _BOLD.split()]}
OTHER = {"•": 350, "·": 278, "—": 1000, "–": 556, "…": 1000, "‘": 222, "’": 222,
         "“": 333, "”": 333, "→": 1000, "×": 584, "°": 400, "≥": 549, "≤": 549}
assert len(WIDTHS[False]) == len(WIDTHS[True]) == 95

EMOJI = {
    "red_circle": "\U0001F534", "large_orange_circle": "\U0001F7E0",
    "large_yellow_circle": "\U0001F7E1", "large_green_circle": "\U0001F7E2",
    "large_blue_circle": "\U0001F535", "white_circle": "\u26AA", "black_circle": "\u26AB",
    "warning": "\u26A0\uFE0F", "white_check_mark": "\u2705", "heavy_check_mark": "\u2714\uFE0F",
    "x": "\u274C", "no_entry": "\u26D4", "zzz": "\U0001F4A4",
    "information_source": "\u2139\uFE0F", "hourglass": "\u231B",
    "hourglass_flowing_sand": "\u23F3", "unlock": "\U0001F513", "lock": "\U0001F512",
    "rotating_light": "\U0001F6A8", "fire": "\U0001F525", "bell": "\U0001F514",
    "mag": "\U0001F50D", "sunny": "\u2600\uFE0F", "sunrise": "\U0001F305",
    "tada": "\U0001F389", "eyes": "\U0001F440", "question": "\u2753",
    "exclamation": "\u2757", "arrow_right": "\u27A1\uFE0F", "clock7": "\U0001F556",
}

# the special tokens of a line: :emoji: between non-letters (in plain text too), and in
# mrkdwn `code`, <link or mention> and a bare URL (which Slack shows as a link)
EMOJI_RX = r"(?<![A-Za-z0-9]):(?P<emoji>[a-z0-9_+'-]*[a-z][a-z0-9_+'-]*):(?![A-Za-z0-9])"
TOKENS = {False: re.compile(EMOJI_RX), True: re.compile(
    r"`(?P<code>[^`\n]+)`|<(?P<angle>[^<>\n]+)>|" + EMOJI_RX +
    r"|(?P<url>\bhttps?://[^\s<>`]*[^\s<>`.,;:!?)\]'\"])")}
# *bold*, _italic_, ~strike~: the marker opens before a non-space after a non-word
# character and closes after a non-space before a non-word character
FORMATS = [(re.compile(r"(?<!\w)%s(?=\S)(.+?)(?<=\S)%s(?!\w)" % (m, m)), flag)
           for m, flag in ((r"\*", "b"), ("_", "i"), ("~", "s"))]
PUA = 0xE000                       # placeholders for special tokens while formatting


def num(v):
    """Fixed formatting of a coordinate: at most two decimals, no trailing zeros."""
    s = ("%.2f" % v).rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def esc(s):
    """Text for XML: escapes the markup characters and drops what XML cannot hold."""
    s = "".join(c for c in s if c in "\t\n" or (ord(c) >= 32 and not 0xD800 <= ord(c) < 0xE000
                                                and c not in "\uFFFE\uFFFF"))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def char_width(c, size, bold, mono):
    if unicodedata.combining(c) or "\uFE00" <= c <= "\uFE0F" or c == "\u200d":
        return 0.0
    wide = unicodedata.east_asian_width(c) in "WF"
    if mono:
        return size * (1.2 if wide else 0.6)
    if 32 <= ord(c) < 127:
        return WIDTHS[bold][ord(c) - 32] * size / 1000
    return OTHER.get(c, 1000 if wide else 556) * size / 1000


def unescape(s):
    """Slack's three escapes; nothing else is an entity in a message."""
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def token_pieces(m):
    """The (text, style) pieces that one token match stands for."""
    name, code, angle, url = (m.groupdict().get(g) for g in ("emoji", "code", "angle", "url"))
    if name is not None:
        if name in EMOJI:
            return [(EMOJI[name], {"emoji"})]
        return [(":%s:" % name, {"noemoji"})]
    if code is not None:
        return [(unescape(code), {"code"})]
    if url is not None:
        return [(unescape(url), {"link"})]
    target, _, label = angle.partition("|")
    label = unescape(label)
    if target.startswith("!"):
        what = target[1:].split("^")[0]
        if what in ("here", "channel", "everyone"):
            return [("@" + what, {"bcast", "b"})]
        if what == "subteam":
            return [(label or "@team", {"mention"})]
        return [(label, set())] if label else []
    if target.startswith("@"):
        return [("@" + (label.lstrip("@") or "user"), {"mention"})]
    if target.startswith("#"):
        return [("#" + (label or "channel"), {"link"})]
    return [(label or unescape(target), {"link"})]


def parse_line(line, mrkdwn=True):
    """One line of text as a list of (text, style) pieces; a style is a set of flags."""
    table = []

    def hold(m):
        table.append(token_pieces(m))
        return chr(PUA + len(table) - 1)

    line = "".join("\uFFFD" if 0xE000 <= ord(c) < 0xF900 else c for c in line)
    s = unescape(TOKENS[mrkdwn].sub(hold, line))
    out = []

    def plain(text, style):
        for part in re.split("([\uE000-\uF8FF])", text):
            if len(part) == 1 and PUA <= ord(part) < PUA + len(table):
                out.extend((t, style | st) for t, st in table[ord(part) - PUA])
            elif part:
                out.append((part, style))

    def formatted(text, style):
        pos = 0
        while pos < len(text):
            found = [(m.start(), i, m) for i, (rx, _) in enumerate(FORMATS) if mrkdwn
                     for m in [rx.search(text, pos)] if m]
            if not found:
                break
            _, i, m = min(found, key=lambda f: (f[0], f[1]))
            plain(text[pos:m.start()], style)
            formatted(m.group(1), style | {FORMATS[i][1]})
            pos = m.end()
        plain(text[pos:], style)

    formatted(s, frozenset())
    return [(t, frozenset(st)) for t, st in out]


def is_mono(style):
    return "code" in style or "noemoji" in style


def measure(text, style, size, mono_size):
    """Width of text drawn in style: emoji are a fixed square, code is monospaced."""
    if "emoji" in style:
        return size * 1.47
    if is_mono(style):
        return sum(char_width(c, mono_size, False, True) for c in text)
    return sum(char_width(c, size, "b" in style, False) for c in text)


def chunks_of(pieces, size, mono_size):
    """Pieces cut into chunks (text, style, width, is_space) for wrapping."""
    out = []
    for text, style in pieces:
        if "emoji" in style:
            out.append((text, style, measure(text, style, size, mono_size), False))
            continue
        pad = [("", style, 3.0, False)] if is_mono(style) else []
        parts = [(p, style, measure(p, style, size, mono_size), p[0] == " ")
                 for p in re.findall(r" +|[^ ]+", text.replace("\t", "    "))]
        out.extend(pad + parts + pad)
    return out


def wrap(pieces, size, mono_size, width):
    """Greedy wrap: a list of lines, each a list of (x, text, style, width)."""
    lines, line, x, spaces = [], [], 0.0, []
    words, word = [], []
    for ch in chunks_of(pieces, size, mono_size) + [(" ", frozenset(), 0.0, True)]:
        if ch[3]:
            if word:
                words.append((spaces, word))
                spaces, word = [], []
            spaces.append(ch)
        else:
            word.append(ch)
    for spaces, word in words:
        gap = sum(c[2] for c in spaces) if line or not lines else 0.0
        wlen = sum(c[2] for c in word)
        if line and x + gap + wlen > width:
            lines.append(line)
            line, x, gap = [], 0.0, 0.0
        if gap:
            for c in spaces:
                line.append((x, c[0], c[1], c[2]))
                x += c[2]
        for text, style, w, _ in word:
            if wlen > width and x + w > width and text and "emoji" not in style:
                for c in text:             # an overlong word: cut it where it must
                    cw = measure(c, style, size, mono_size)
                    if x + cw > width and x > 0:
                        lines.append(line)
                        line, x = [], 0.0
                    line.append((x, c, style, cw))
                    x += cw
                continue
            if x + w > width and x > 0 and wlen > width:   # an emoji or pad of it
                lines.append(line)
                line, x = [], 0.0
            line.append((x, text, style, w))
            x += w
    lines.append(line)
    return lines


class Canvas:
    def __init__(self):
        self.back, self.fore = [], []   # backgrounds go under all text

    def text(self, x, y, text, size, fill, style, width):
        cls = ["m" if is_mono(style) else "e" if "emoji" in style else "t"] + [
            f for f in ("b", "i") if f in style]
        attrs = 'x="%s" y="%s" font-size="%s" fill="%s" class="%s"' % (
            num(x), num(y), num(size), fill, " ".join(cls))
        if "emoji" in style:
            attrs = 'x="%s" y="%s" font-size="%s" class="e" text-anchor="middle"' % (
                num(x + width / 2), num(y), num(size))
        elif len(text) > 1:
            attrs += ' textLength="%s" lengthAdjust="spacing"' % num(width)
        self.fore.append("<text %s>%s</text>" % (attrs, esc(text)))

    def rect(self, x, y, w, h, fill, rx=3, stroke=None, front=False):
        s = ' stroke="%s"' % stroke if stroke else ""
        (self.fore if front else self.back).append(
            '<rect x="%s" y="%s" width="%s" height="%s" rx="%s" fill="%s"%s/>'
            % (num(x), num(y), num(w), num(h), num(rx), fill, s))

    def line(self, x1, y1, x2, y2, color):
        self.fore.append('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>'
                         % (num(x1), num(y1), num(x2), num(y2), color))


def draw_lines(cv, lines, kind, x0, y, width):
    """Draws pieces-lines (already parsed) wrapped at width from y; returns the height."""
    size, lh, color, kind_bold = KINDS[kind]
    mono = round(size * 0.8)
    top = y
    for para in lines:
        if kind_bold:
            para = [(t, st | {"b"}) for t, st in para]
        for line in wrap(para, size, mono, width):
            base = y + (lh - size) / 2 + size * 0.8
            runs = []                      # merge neighbouring chunks of one style
            for x, text, style, w in line:
                if runs and runs[-1][2] == style and "emoji" not in style:
                    runs[-1][1] += text
                    runs[-1][3] += w
                else:
                    runs.append([x, text, style, w])
            while runs and "code" not in runs[-1][2] and not runs[-1][1].strip():
                runs.pop()
            for i, (x, text, style, w) in enumerate(runs):
                box = ("code" if "code" in style else "noemoji" if "noemoji" in style
                       else "bcast" if "bcast" in style else "mention" if "mention" in style
                       else None)
                if box and (i == 0 or box not in runs[i - 1][2]):
                    end = i
                    while end + 1 < len(runs) and box in runs[end + 1][2]:
                        end += 1
                    bw = runs[end][0] + runs[end][3] - x
                    fill, stroke = {"code": ("#f7f7f8", "#dcdcdd"),
                                    "noemoji": ("#f0f0f0", None),
                                    "bcast": ("#fbeabd", None),
                                    "mention": ("#e8f1f9", None)}[box]
                    cv.rect(x0 + x - (0 if box in ("code", "noemoji") else 1), y + 2,
                            bw + (0 if box in ("code", "noemoji") else 2), lh - 4,
                            fill, stroke=stroke)
                body = text.strip(" ")
                if not body:
                    continue
                sx = x + measure(text[:len(text) - len(text.lstrip(" "))], style, size, mono)
                tw, tsize = measure(body, style, size, mono), mono if is_mono(style) else size
                if "emoji" in style:
                    sx, tw, tsize = x, w, size * 0.95
                fill = (CODE_INK if "code" in style else GREY if "noemoji" in style
                        else LINK if {"link", "mention"} & style else color)
                cv.text(x0 + sx, base + (size * 0.08 if "emoji" in style else 0), body,
                        tsize, fill, style, tw)
                if "s" in style:
                    cv.line(x0 + sx, base - size * 0.3, x0 + sx + tw, base - size * 0.3, fill)
            y += lh
    return y - top


def parse_text(obj):
    """A text object (mrkdwn or plain_text) as a list of parsed lines."""
    if not isinstance(obj, dict):
        return []
    mrkdwn = obj.get("type") == "mrkdwn"
    return [parse_line(l, mrkdwn) for l in str(obj.get("text", "")).split("\n")]


def render(payload):
    cv = Canvas()
    blocks = payload.get("blocks") or [
        {"type": "section", "text": {"type": "mrkdwn", "text": payload.get("text", "")}}]
    # the name line: bold app name and the grey APP badge
    name_w = measure(APP_NAME, {"b"}, 15, 12)
    cv.text(X0, TOP + 16, APP_NAME, 15, INK, {"b"}, name_w)
    cv.rect(X0 + name_w + 6, TOP + 5, 28, 14, "#e4e4e4", rx=2, front=True)
    cv.text(X0 + name_w + 9, TOP + 15.5, "APP", 10, "#5c5b5c", {"b"}, measure("APP", {"b"}, 10, 8))
    y = TOP + 22 + 4
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            y += draw_lines(cv, parse_text(block.get("text")), "header", X0, y, CONTENT_W) + 2
        elif kind == "section":
            if block.get("text"):
                y += draw_lines(cv, parse_text(block["text"]), "body", X0, y, CONTENT_W)
            fields = block.get("fields") or []
            col = (CONTENT_W - FIELD_GAP) / 2
            if fields and block.get("text"):
                y += 8
            for r in range(0, len(fields), 2):
                heights = [draw_lines(cv, parse_text(f), "body", X0 + c * (col + FIELD_GAP),
                                      y, col) for c, f in enumerate(fields[r:r + 2])]
                y += max(heights) + (8 if r + 2 < len(fields) else 0)
        elif kind == "context":
            merged = []                   # elements flow on, two spaces apart
            for el in block.get("elements") or []:
                lines = parse_text(el) if isinstance(el, dict) and "text" in el else (
                    [[(el.get("alt_text", "image"), frozenset({"noemoji"}))]]
                    if isinstance(el, dict) else [])
                if merged and lines:
                    merged[-1] = merged[-1] + [("  ", frozenset())] + lines[0]
                    lines = lines[1:]
                merged.extend(lines)
            y += draw_lines(cv, merged, "context", X0, y, CONTENT_W)
        elif kind == "divider":
            cv.line(X0, y + 6.5, X0 + CONTENT_W, y + 6.5, "#dddddd")
            y += 13
        else:
            y += draw_lines(cv, [[("unsupported block: %s" % kind, frozenset({"i"}))]],
                            "context", X0, y, CONTENT_W)
        y += BLOCK_GAP
    height = y - BLOCK_GAP + 16
    head = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%s" viewBox="0 0 %d %s"'
        ' xml:space="preserve">' % (CARD_W, num(height), CARD_W, num(height)),
        "<style>.t,.b{font-family:%s}.b{font-weight:700}.i{font-style:italic}"
        ".m{font-family:%s}.e{font-family:%s}</style>" % (FONT, MONO, EMOJI_FONT),
        '<rect x="0.5" y="0.5" width="%d" height="%s" rx="8" fill="#ffffff" stroke="#dddddd"/>'
        % (CARD_W - 1, num(height - 1)),
        '<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#ecb22e"/>'
        % (PAD, TOP + 4, AVATAR, AVATAR),
        '<text x="%d" y="%d" font-size="20" fill="#ffffff" class="t b" text-anchor="middle">'
        "M</text>" % (PAD + AVATAR // 2, TOP + 29),
    ]
    return "\n".join(head + cv.back + cv.fore + ["</svg>", ""])


def main():
    ap = argparse.ArgumentParser(description="Draw a Slack message payload as SVG.")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if OUT differs from what would be drawn now")
    ap.add_argument("payload")
    ap.add_argument("out")
    args = ap.parse_args()
    with open(args.payload, encoding="utf-8") as f:
        svg = render(json.load(f)).encode("utf-8")
    if args.check:
        try:
            with open(args.out, "rb") as f:
                same = f.read() == svg
        except OSError:
            same = False
        if not same:
            print("%s is not what %s draws now; run: python3 tools/render_slack.py %s %s"
                  % (args.out, args.payload, args.payload, args.out), file=sys.stderr)
            sys.exit(1)
        return
    with open(args.out, "wb") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
