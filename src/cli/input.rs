//! Reading MorningCheck manifests for `morningcheck run`: YAML or JSON, one or many
//! documents, parsed straight into the typed spec (so `no`, `1.10` or `0777` in a string
//! field stay strings), with errors that name the file, the line and the field.

use std::fmt;

use crate::api::MorningCheck;

/// A manifest that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// One document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    pub index: usize,
    pub check: MorningCheck,
}

/// Why a manifest could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read (exit 66).
    Io(std::io::Error),
    /// The bytes are not UTF-8 text, so not a manifest (exit 65, as kubectl refuses it).
    NotText(std::string::FromUtf8Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotText(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
                write!(
                    f,
                    "line {line}: not UTF-8 text (invalid byte at offset {at}); a manifest is YAML or JSON in UTF-8"
                )
            }
        }
    }
}

/// Reads a manifest file (`-` is stdin) as UTF-8 text.
pub fn read(path: &std::path::Path) -> Result<String, ReadError> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
    } else {
        std::fs::read(path)
    }
    .map_err(ReadError::Io)?;
    String::from_utf8(bytes).map_err(ReadError::NotText)
}

/// Parses every document of `text`, read from `file`.
pub fn parse(file: &str, text: &str) -> Result<Vec<Document>, InputError> {
    let err = |line: Option<usize>, message: String| InputError { file: file.to_string(), line, message };
    let docs = split_documents(text);
    if docs.iter().all(|(_, d)| d.trim().is_empty()) {
        return Err(err(None, "no MorningCheck document found".into()));
    }
    let mut out = Vec::new();
    for (first_line, doc) in docs.into_iter().filter(|(_, d)| !d.trim().is_empty()) {
        let index = out.len();
        let check: MorningCheck = serde_saphyr::from_str(doc).map_err(|e| {
            let (line, message) = locate(&e.to_string());
            err(line.map(|l| l + first_line - 1), message)
        })?;
        let value: serde_json::Value = serde_saphyr::from_str(doc).map_err(|e| err(Some(first_line), e.to_string()))?;
        let kind = (value["apiVersion"].as_str(), value["kind"].as_str());
        if kind != (Some("morningcheck.io/v1alpha1"), Some("MorningCheck")) {
            return Err(err(
                Some(first_line),
                "not a MorningCheck: expected apiVersion morningcheck.io/v1alpha1 and kind MorningCheck".into(),
            ));
        }
        if let Some(path) = unknown_field(value) {
            let key = path.rsplit('.').next().unwrap_or(&path).split('[').next().unwrap_or_default().to_string();
            let line = line_of_key(doc, &key).map(|l| l + first_line - 1);
            return Err(err(line, format!("unknown field `{path}`")));
        }
        if check.metadata.name.as_deref().unwrap_or_default().is_empty() {
            return Err(err(Some(first_line), "metadata.name is required".into()));
        }
        out.push(Document { file: file.to_string(), index, check });
    }
    Ok(out)
}

/// Splits a YAML stream on `---` lines, keeping each document's first line number
/// (1-based) so errors point into the whole file. JSON is one document.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs
}

/// Pulls "line N" out of a parser message, and the message without the location.
fn locate(message: &str) -> (Option<usize>, String) {
    let lower = message.to_ascii_lowercase();
    let line = lower.find("line ").and_then(|i| {
        let digits: String = lower[i + 5..].chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    });
    (line, message.trim().to_string())
}

/// The path of the first field the spec does not know, if any.
fn unknown_field(value: serde_json::Value) -> Option<String> {
    let mut unknown = None;
    let _: Result<MorningCheck, _> = serde_ignored::deserialize(value, |path| {
        let p = path.to_string();
        // The envelope is checked apart; server-managed metadata and status are not the user's to get wrong.
        let envelope = p == "apiVersion" || p == "kind" || p.starts_with("metadata.") || p.starts_with("status");
        if unknown.is_none() && !envelope {
            unknown = Some(p);
        }
    });
    unknown
}

fn line_of_key(doc: &str, key: &str) -> Option<usize> {
    let yaml = format!("{key}:");
    let json = format!("\"{key}\"");
    doc.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&yaml)
                || t.starts_with(&json)
                || t.contains(&format!("{{{yaml}"))
                || t.contains(&format!(", {yaml}"))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "apiVersion: morningcheck.io/v1alpha1\nkind: MorningCheck\nmetadata:\n  name: a\nspec:\n  schedule: '@daily'\n  targets:\n    kubernetes:\n    - name: local\n      namespaces:\n        include: [no, 1.10, 0777, yes, null-ish, ~x]\n";

    #[test]
    fn yaml_1_1_surprises_stay_strings() {
        let docs = parse("a.yaml", ONE).unwrap();
        let ns = &docs[0].check.spec.targets.kubernetes[0].namespaces.include;
        assert_eq!(ns, &["no", "1.10", "0777", "yes", "null-ish", "~x"]);
    }

    #[test]
    fn several_documents() {
        let two = format!("{ONE}---\n{}", ONE.replace("name: a", "name: b"));
        let docs = parse("two.yaml", &two).unwrap();
        assert_eq!(docs.iter().map(|d| d.check.metadata.name.clone().unwrap()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn json_is_accepted() {
        let json = r#"{"apiVersion":"morningcheck.io/v1alpha1","kind":"MorningCheck","metadata":{"name":"j"},"spec":{"schedule":"@daily","targets":{"aws":[{"name":"x","regions":["eu-west-1"]}]}}}"#;
        assert_eq!(parse("a.json", json).unwrap()[0].check.spec.targets.aws[0].regions, ["eu-west-1"]);
    }

    #[test]
    fn unknown_field_names_file_line_and_path() {
        let bad = ONE.replace("      namespaces:", "      namspaces:");
        let e = parse("c.yaml", &bad).unwrap_err();
        assert_eq!(e.to_string(), "c.yaml:10: unknown field `spec.targets.kubernetes.0.namspaces`");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let bad = ONE.replace("schedule: '@daily'", "schedule: '@daily'\n  suspend: perhaps");
        let e = parse("d.yaml", &bad).unwrap_err();
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.message.contains("perhaps") || e.message.to_lowercase().contains("bool"), "{e}");
    }

    #[test]
    fn second_document_errors_point_into_the_file() {
        let two = format!("{ONE}---\n{}", ONE.replace("      namespaces:", "      colour: blue\n      namespaces:"));
        let e = parse("e.yaml", &two).unwrap_err();
        assert_eq!(e.line, Some(22), "{e}");
    }

    #[test]
    fn invalid_utf8_is_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin.yaml");
        std::fs::write(&p, b"apiVersion: v1\nkind: \xff\xfe\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(matches!(e, ReadError::NotText(_)));
        assert_eq!(
            e.to_string(),
            "line 2: not UTF-8 text (invalid byte at offset 21); a manifest is YAML or JSON in UTF-8"
        );
        assert!(matches!(read(&dir.path().join("missing")).unwrap_err(), ReadError::Io(_)));
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(parse("f.yaml", "---\n").unwrap_err().message, "no MorningCheck document found");
    }
}
