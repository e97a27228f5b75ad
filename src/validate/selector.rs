//! Label selectors in kubectl's syntax, checked as the apiserver parses them
//! (k8s.io/apimachinery labels.Parse): comma-separated requirements `key`, `!key`,
//! `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`,
//! `key>N`, `key<N`; keys are qualified names (an optional DNS-subdomain prefix and `/`,
//! then a name of at most 63 characters), values are empty or at most 63 characters.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    In,
    NotIn,
    Comma,
    Open,
    Close,
}

impl Token {
    fn show(&self) -> String {
        match self {
            Token::Ident(s) => format!("{s:?}"),
            Token::Not => "'!'".into(),
            Token::Eq => "'='".into(),
            Token::DoubleEq => "'=='".into(),
            Token::NotEq => "'!='".into(),
            Token::Gt => "'>'".into(),
            Token::Lt => "'<'".into(),
            Token::In => "'in'".into(),
            Token::NotIn => "'notin'".into(),
            Token::Comma => "','".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
        }
    }
}

fn lex(s: &str) -> Vec<Token> {
    let special = |c: char| c.is_whitespace() || "!=,()<>".contains(c);
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        chars.next();
        let tok = match c {
            '!' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::NotEq
            }
            '!' => Token::Not,
            '=' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::DoubleEq
            }
            '=' => Token::Eq,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '>' => Token::Gt,
            '<' => Token::Lt,
            _ => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek().filter(|n| !special(**n)) {
                    word.push(n);
                    chars.next();
                }
                match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Ident(word),
                }
            }
        };
        out.push(tok);
    }
    out
}

/// Checks a selector; the error says what is wrong and where.
pub fn check(selector: &str) -> Result<(), String> {
    if selector.trim().is_empty() {
        return Err("empty; remove the field to select everything".into());
    }
    let tokens = lex(selector);
    let mut p = Parser { tokens: &tokens, pos: 0 };
    loop {
        p.requirement()?;
        let next = p.next();
        match next {
            None => return Ok(()),
            Some(Token::Comma) if p.peek().is_some() => {}
            Some(Token::Comma) => return Err("a requirement is missing after the last ','".into()),
            Some(t) => return Err(format!("found {}, expected ',' or the end", t.show())),
        }
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn requirement(&mut self) -> Result<(), String> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            let key = self.key()?;
            return match self.peek() {
                None | Some(Token::Comma) => Ok(()),
                Some(t) => Err(format!("found {} after !{key}, expected ',' or the end", t.show())),
            };
        }
        let key = self.key()?;
        match self.next() {
            None => Ok(()),
            Some(Token::Comma) => {
                self.pos -= 1;
                Ok(())
            }
            Some(op @ (Token::Eq | Token::DoubleEq | Token::NotEq)) => match self.peek().cloned() {
                Some(Token::Ident(v)) => {
                    self.next();
                    value(&v)
                }
                None | Some(Token::Comma) => Ok(()), // `key=` selects the empty value
                Some(t) => Err(format!("found {} after {key}{}, expected a value", t.show(), op_text(&op))),
            },
            Some(op @ (Token::Gt | Token::Lt)) => match self.next() {
                Some(Token::Ident(v)) if v.parse::<i64>().is_ok() => Ok(()),
                Some(Token::Ident(v)) => Err(format!("{v:?} after {key}{}: must be an integer", op_text(&op))),
                other => Err(format!("{} after {key}{}, expected an integer", show(other), op_text(&op))),
            },
            Some(op @ (Token::In | Token::NotIn)) => self.set(&key, &op),
            Some(t) => Err(format!(
                "found {} after {key:?}, expected one of '=', '==', '!=', 'in', 'notin', '>', '<', ',' or the end",
                t.show()
            )),
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Ident(k)) => {
                qualified_name(&k).map_err(|e| format!("key {k:?}: {e}"))?;
                Ok(k)
            }
            other => Err(format!("found {}, expected a label key", show(other))),
        }
    }

    fn set(&mut self, key: &str, op: &Token) -> Result<(), String> {
        let word = op_text(op);
        match self.next() {
            Some(Token::Open) => {}
            other => return Err(format!("found {} after {key} {word}, expected '('", show(other))),
        }
        let mut count = 0;
        loop {
            match self.next() {
                Some(Token::Ident(v)) => {
                    value(&v)?;
                    count += 1;
                    match self.next() {
                        Some(Token::Comma) => {}
                        Some(Token::Close) => break,
                        other => {
                            return Err(format!("found {} in the values of {key}, expected ',' or ')'", show(other)));
                        }
                    }
                }
                Some(Token::Close) if count == 0 => {
                    return Err(format!("{key} {word} (): the set of values may not be empty"));
                }
                other => return Err(format!("found {} in the values of {key}, expected a value", show(other))),
            }
        }
        Ok(())
    }
}

fn show(t: Option<Token>) -> String {
    t.map_or_else(|| "the end".to_string(), |t| t.show())
}

fn op_text(t: &Token) -> &'static str {
    match t {
        Token::Eq => "=",
        Token::DoubleEq => "==",
        Token::NotEq => "!=",
        Token::Gt => ">",
        Token::Lt => "<",
        Token::In => "in",
        Token::NotIn => "notin",
        _ => "",
    }
}

fn name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label) {
            return Err("the prefix must be a lowercase DNS subdomain of at most 253 characters".into());
        }
    }
    if name.len() > 63 {
        return Err("the name part may not be longer than 63 characters".into());
    }
    if !name_part(name) {
        return Err(
            "the name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                .into(),
        );
    }
    Ok(())
}

fn value(v: &str) -> Result<(), String> {
    if v.len() > 63 {
        return Err(format!("value {v:?} is longer than 63 characters"));
    }
    if !v.is_empty() && !name_part(v) {
        return Err(format!(
            "value {v:?} must be empty or consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn messages_say_what_is_wrong() {
        assert_eq!(check("app=!=x").unwrap_err(), "found '!=' after app=, expected a value");
        assert_eq!(check("app in ()").unwrap_err(), "app in (): the set of values may not be empty");
        assert!(check(&format!("app={}", "v".repeat(64))).unwrap_err().contains("longer than 63 characters"));
        assert_eq!(check("a,,b").unwrap_err(), "found ',', expected a label key");
        assert!(check("app in (a, b), !canary, tier notin (x)").is_ok());
    }
}
