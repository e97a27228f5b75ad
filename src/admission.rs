//! Admission as the apiserver does it, without an apiserver: `morningcheck run` refuses
//! exactly the manifests `kubectl apply` would, with the same messages.
//!
//! Two parts, both driven by the CRD that is installed ([`crate::crd::definition`]):
//!
//! - the openAPIV3Schema (bounds, patterns, enums, required fields, list sizes), checked
//!   by a walker that mirrors kube-openapi's validator and formats each problem as the
//!   apiserver's field errors (`spec.timeoutSeconds: Invalid value: 0: … should be greater
//!   than or equal to 5`). The schema uses a small set of keywords; a unit test fails if
//!   the generated CRD uses one this walker does not check;
//! - the `x-kubernetes-validations` CEL rules, evaluated by kube-cel (kube's own client-side
//!   CEL engine). As the apiserver does, the rules are not run when the schema already
//!   refused the object with a blocking error (a missing, too long or unsupported value).

use serde_json::{Map, Value};

use kube::core::cel::{ErrorKind, ValidationError, Validator};

/// The apiserver's note when blocking schema errors kept the CEL rules from running.
pub const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// One field error, as the apiserver words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `spec.targets.kubernetes[0].name`
    pub field: String,
    /// `Too long: may not be more than 63 bytes`
    pub body: String,
    /// Keeps CEL rules from running (as the apiserver's `hasBlockingErr`).
    pub blocking: bool,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() { write!(f, "{}", self.body) } else { write!(f, "{}: {}", self.field, self.body) }
    }
}

/// The CRD's openAPIV3Schema, as served.
pub fn schema() -> Value {
    let crd = crate::crd::definition();
    let s = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("a schema");
    serde_json::to_value(s).expect("a schema serializes")
}

/// Every problem the apiserver would report on creating `object` (a whole MorningCheck,
/// as JSON); empty when it would be admitted.
pub fn admit(object: &Value) -> Vec<FieldError> {
    let schema = schema();
    let mut errors = metadata(object);
    walk(&schema, object, "", &mut errors);
    if errors.iter().any(|e| e.blocking) {
        errors.push(FieldError { field: String::new(), body: RULES_NOT_CHECKED.into(), blocking: false });
        return errors;
    }
    if let Err(failures) = Validator::new().validate(&schema, object, None) {
        let fields = rule_field_paths(&schema);
        errors.extend(failures.iter().map(|f| cel_error(f, object, &fields)));
    }
    errors
}

/// What the apiserver checks of the metadata a manifest can carry: the name.
fn metadata(object: &Value) -> Vec<FieldError> {
    const MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str) else {
        return vec![FieldError {
            field: "metadata.name".into(),
            body: "Required value: name or generateName is required".into(),
            blocking: true,
        }];
    };
    let mut errors = Vec::new();
    if name.len() > 253 {
        errors.push(invalid("metadata.name", &Value::from(name), "must be no more than 253 characters"));
    }
    let re = regex::Regex::new(crate::api::DNS_SUBDOMAIN).expect("a valid pattern");
    if !re.is_match(name) {
        errors.push(invalid("metadata.name", &Value::from(name), MSG));
    }
    errors
}

fn invalid(field: &str, value: &Value, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        body: format!("Invalid value: {}: {detail}", go_value(value)),
        blocking: false,
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Validates `value` against one schema node, as kube-openapi's SchemaValidator: type,
/// string, number, array, enum, then object (required, properties, additionalProperties).
fn walk(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(s) = schema.as_object() else { return };
    if value.is_null() {
        // The apiserver drops nulls of fields that are not nullable before validating.
        return;
    }
    if !type_ok(s, value) {
        let ty = s.get("type").and_then(Value::as_str).unwrap_or_default();
        let detail = match value {
            Value::String(v) => format!("{path} in body must be of type {ty}: {}", go_quote(v)),
            _ => format!("{path} in body must be of type {ty}"),
        };
        errors.push(FieldError {
            field: path.into(),
            body: format!("Invalid value: {}: {detail}", go_type_name(value)),
            blocking: true,
        });
        return;
    }
    match value {
        Value::String(v) => string(s, v, path, errors),
        Value::Number(n) => number(s, n, value, path, errors),
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(item, v, &format!("{path}[{i}]"), errors);
                }
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64).filter(|m| (items.len() as u64) < *m) {
                errors.push(invalid(path, value, &format!("{path} in body should have at least {min} items")));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64).filter(|m| items.len() as u64 > *m) {
                errors.push(too_many(path, items.len(), max));
            }
        }
        _ => {}
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| go_quote(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        errors.push(FieldError {
            field: path.into(),
            body: format!("Unsupported value: {}: supported values: {}", go_value(value), supported.join(", ")),
            blocking: true,
        });
    }
    if let Value::Object(map) = value {
        object(s, map, path, errors);
    }
}

fn object(s: &Map<String, Value>, map: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64).filter(|m| map.len() as u64 > *m) {
        errors.push(too_many(path, map.len(), max));
    }
    let properties = s.get("properties").and_then(Value::as_object);
    if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
        for (k, v) in map {
            if properties.is_none_or(|p| !p.contains_key(k)) {
                walk(extra, v, &format!("{path}.{k}"), errors);
            }
        }
    }
    if let Some(properties) = properties {
        for (k, sub) in properties {
            if let Some(v) = map.get(k) {
                walk(sub, v, &child(path, k), errors);
            }
        }
    }
    for k in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if map.get(k).is_none_or(Value::is_null) {
            errors.push(FieldError {
                field: format!("{path}.{k}").trim_start_matches('.').into(),
                body: "Required value".into(),
                blocking: true,
            });
        }
    }
}

fn string(s: &Map<String, Value>, v: &str, path: &str, errors: &mut Vec<FieldError>) {
    // kube-openapi stops at the first failing string keyword, in this order.
    let chars = v.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64).filter(|m| chars > *m) {
        let unit = if max == 1 { "byte" } else { "bytes" };
        errors.push(FieldError {
            field: path.into(),
            body: format!("Too long: may not be more than {max} {unit}"),
            blocking: true,
        });
    } else if let Some(min) = s.get("minLength").and_then(Value::as_u64).filter(|m| chars < *m) {
        errors.push(invalid(path, &Value::from(v), &format!("{path} in body should be at least {min} chars long")));
    } else if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
        let matches = regex::Regex::new(pattern).map(|re| re.is_match(v)).unwrap_or(false);
        if !matches {
            errors.push(invalid(path, &Value::from(v), &format!("{path} in body should match '{pattern}'")));
        }
    }
}

fn number(s: &Map<String, Value>, n: &serde_json::Number, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let x = n.as_f64().unwrap_or(f64::NAN);
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = s.get("exclusiveMinimum").and_then(Value::as_bool).unwrap_or(false);
        if x < min || (exclusive && x == min) {
            let op = if exclusive { "greater than" } else { "greater than or equal to" };
            errors.push(invalid(path, value, &format!("{path} in body should be {op} {}", go_number(min))));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = s.get("exclusiveMaximum").and_then(Value::as_bool).unwrap_or(false);
        if x > max || (exclusive && x == max) {
            let op = if exclusive { "less than" } else { "less than or equal to" };
            errors.push(invalid(path, value, &format!("{path} in body should be {op} {}", go_number(max))));
        }
    }
}

fn too_many(path: &str, actual: usize, max: u64) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    FieldError {
        field: path.into(),
        body: format!("Too many: {actual}: must have at most {max} {unit}"),
        blocking: true,
    }
}

fn type_ok(s: &Map<String, Value>, value: &Value) -> bool {
    match s.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("number") => value.is_number(),
        Some("integer") => value.as_i64().is_some() || value.as_u64().is_some(),
        Some(_) => true,
    }
}

/// The CEL rules' `fieldPath`s, by rule text, to find the node a failed rule sits on.
fn rule_field_paths(schema: &Value) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    fn visit(v: &Value, out: &mut std::collections::HashMap<String, String>) {
        match v {
            Value::Object(m) => {
                for r in m.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                    if let (Some(rule), Some(fp)) = (r["rule"].as_str(), r["fieldPath"].as_str()) {
                        out.insert(rule.to_string(), fp.to_string());
                    }
                }
                m.values().for_each(|c| visit(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| visit(c, out)),
            _ => {}
        }
    }
    visit(schema, &mut out);
    out
}

/// A failed rule as the apiserver reports it: the node's path (plus the rule's
/// `fieldPath`), and `Invalid value`, `Forbidden` or `Required value` with its message.
fn cel_error(
    f: &ValidationError,
    object: &Value,
    field_paths: &std::collections::HashMap<String, String>,
) -> FieldError {
    if f.kind != ErrorKind::ValidationFailure {
        return FieldError {
            field: f.field_path.clone(),
            body: format!("Invalid value: cannot evaluate rule {:?}: {}", f.rule, f.message),
            blocking: false,
        };
    }
    let node_path = match field_paths.get(&f.rule) {
        Some(fp) => f.field_path.strip_suffix(fp.as_str()).unwrap_or(&f.field_path).to_string(),
        None => f.field_path.clone(),
    };
    let body = match f.reason.as_deref() {
        Some("FieldValueForbidden") => format!("Forbidden: {}", f.message.trim()),
        Some("FieldValueRequired") => format!("Required value: {}", f.message.trim()),
        _ => match lookup(object, &node_path) {
            Some(Value::Object(_) | Value::Array(_) | Value::Null) => format!("Invalid value: {}", f.message.trim()),
            Some(v) => format!("Invalid value: {}: {}", go_value(v), f.message.trim()),
            None => format!("Invalid value: {}", f.message.trim()),
        },
    };
    FieldError { field: f.field_path.clone(), body, blocking: false }
}

/// The value at a field path such as `spec.targets.aws[0].regions`.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            cur = cur.get(idx.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

/// A bad value as the apiserver prints it: numbers and booleans bare, strings quoted as
/// Go's `%q`, anything else as JSON.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        other => other.to_string(),
    }
}

/// What kube-openapi shows as the value of a type error: the JSON type's name, quoted.
fn go_type_name(v: &Value) -> String {
    let name = match v {
        Value::String(_) => "string",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    };
    go_quote(name)
}

/// A bound as Go's `%v` prints it: integers without a fraction.
fn go_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// Go's `%q` (strconv.Quote): printable characters as they are, the rest escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{ad}') => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Keywords of the generated schema this module checks or that carry no constraint.
pub const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "description",
    "default",
    "nullable",
    "format",
    "enum",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "maxProperties",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "title",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mc(spec: Value) -> Value {
        json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck", "metadata": {"name": "a"}, "spec": spec})
    }

    fn base() -> Value {
        json!({"schedule": "@daily", "targets": {"kubernetes": [{"name": "local"}]}})
    }

    fn problems(spec: Value) -> Vec<String> {
        admit(&mc(spec)).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_schema_keyword_is_checked_here() {
        fn visit(v: &Value, under_properties: bool, out: &mut Vec<String>) {
            if let Value::Object(m) = v {
                for (k, c) in m {
                    if !under_properties && !KNOWN_KEYWORDS.contains(&k.as_str()) {
                        out.push(k.clone());
                    }
                    if k == "x-kubernetes-validations" || k == "enum" || k == "default" || k == "required" {
                        continue;
                    }
                    visit(c, !under_properties && k == "properties", out);
                }
            }
        }
        let mut unknown = Vec::new();
        visit(&schema(), false, &mut unknown);
        assert!(unknown.is_empty(), "schema keywords admission does not check: {unknown:?}");
    }

    #[test]
    fn a_valid_check_is_admitted() {
        assert_eq!(problems(base()), Vec::<String>::new());
    }

    #[test]
    fn bounds_are_worded_as_the_apiserver_does() {
        let mut s = base();
        s["timeoutSeconds"] = json!(9223372036854775807i64);
        s["targets"]["kubernetes"][0]["thresholds"] = json!({"maxFindings": 100000});
        assert_eq!(
            problems(s),
            [
                "spec.targets.kubernetes[0].thresholds.maxFindings: Invalid value: 100000: spec.targets.kubernetes[0].thresholds.maxFindings in body should be less than or equal to 200",
                "spec.timeoutSeconds: Invalid value: 9223372036854775807: spec.timeoutSeconds in body should be less than or equal to 3600",
            ]
        );
        let mut s = base();
        s["targets"]["kubernetes"][0]["name"] = json!("a/b\u{1}");
        let p = problems(s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("spec.targets.kubernetes[0].name: Invalid value: \"a/b\\x01\": spec.targets.kubernetes[0].name in body should match '"), "{p:?}");
        let mut s = base();
        s["targets"]["kubernetes"][0]["name"] = json!("x".repeat(100_000));
        assert_eq!(
            problems(s),
            ["spec.targets.kubernetes[0].name: Too long: may not be more than 63 bytes", RULES_NOT_CHECKED]
        );
    }

    #[test]
    fn cel_rules_run_with_their_messages() {
        let mut s = base();
        s["targets"]["aws"] = json!([{"name": "local", "regions": ["eu-west-1", "eu-west-1"], "externalId": "xyz"}]);
        s["targets"]["prometheus"] = json!([{"name": "p", "url": "http://p:9090", "auth": {},
            "queries": [{"name": "q", "query": "up", "warning": 5, "critical": 1}, {"name": "q", "warning": 1}]}]);
        let p = problems(s);
        let expect = [
            "spec.targets: Invalid value: target names must be unique across kubernetes, prometheus and aws targets",
            "spec.targets.aws[0].externalId: Forbidden: externalId is only sent when assuming roleArn",
            "spec.targets.aws[0].regions: Invalid value: each region may be listed once",
            "spec.targets.prometheus[0].auth: Invalid value: set exactly one authentication method",
            "spec.targets.prometheus[0].queries: Invalid value: query names must be unique within a Prometheus target",
            "spec.targets.prometheus[0].queries[0]: Invalid value: warning must be crossed before critical",
            "spec.targets.prometheus[0].queries[1]: Invalid value: set query (a PromQL expression) or preset",
        ];
        for e in expect {
            assert!(p.iter().any(|m| m.starts_with(e)), "{e:?} missing from {p:#?}");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn no_targets_is_required() {
        let p = problems(json!({"schedule": "@daily", "targets": {}}));
        assert_eq!(
            p,
            ["spec.targets: Required value: no targets: name at least one kubernetes, prometheus or aws target"]
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}\u{7f}\u{85}é"), r#""a\"b\\c\n\x01\x7f\u0085é""#);
    }
}
