//! Label selectors of a spec: checked with a reason a person can act on,
//! turned into the query the API server filters watches with (and matched
//! against an object's labels by kube's `Selector`).

use kube::core::{Expression, Selector};

use super::spec::{LabelSelector, LabelSelectorRequirement};

/// Why a label selector is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{field}`: {problem}")]
pub struct SelectorError {
    /// Where it is, as written in YAML (`spec.parentSelector.matchExpressions[0]`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl LabelSelector {
    /// The selector as the API server takes it, or why it is not one;
    /// `field` names it in errors.
    pub fn to_selector(&self, field: &str) -> Result<Selector, SelectorError> {
        let refuse = |at: String, problem: String| SelectorError { field: at, problem };
        let mut expressions = Vec::new();
        for (key, value) in &self.match_labels {
            let at = format!("{field}.matchLabels");
            check_key(key).map_err(|problem| refuse(at.clone(), problem))?;
            check_value(value).map_err(|problem| refuse(at, problem))?;
            expressions.push(Expression::Equal(key.clone(), value.clone()));
        }
        for (index, requirement) in self.match_expressions.iter().enumerate() {
            let at = format!("{field}.matchExpressions[{index}]");
            expressions.push(expression(requirement).map_err(|problem| refuse(at, problem))?);
        }
        Ok(expressions.into_iter().collect())
    }
}

fn expression(requirement: &LabelSelectorRequirement) -> Result<Expression, String> {
    let LabelSelectorRequirement {
        key,
        operator,
        values,
    } = requirement;
    check_key(key)?;
    for value in values {
        check_value(value)?;
    }
    let set = || values.iter().cloned().collect();
    match (operator.as_str(), values.is_empty()) {
        ("In", false) => Ok(Expression::In(key.clone(), set())),
        ("NotIn", false) => Ok(Expression::NotIn(key.clone(), set())),
        ("Exists", true) => Ok(Expression::Exists(key.clone())),
        ("DoesNotExist", true) => Ok(Expression::DoesNotExist(key.clone())),
        ("In" | "NotIn", true) => Err(format!("operator {operator} needs at least one value")),
        ("Exists" | "DoesNotExist", false) => Err(format!("operator {operator} takes no values")),
        _ => Err(format!(
            "unknown operator `{operator}`; use In, NotIn, Exists or DoesNotExist"
        )),
    }
}

/// Parses a label selector written as `kubectl -l` takes it:
/// comma-separated `key=value`, `key==value`, `key!=value`,
/// `key in (a,b)`, `key notin (a,b)`, `key` and `!key`.
pub fn parse_selector(text: &str) -> Result<Selector, String> {
    let mut expressions = Vec::new();
    for term in split_terms(text)? {
        expressions.push(parse_term(term).map_err(|problem| format!("in `{term}`: {problem}"))?);
    }
    Ok(expressions.into_iter().collect())
}

/// The terms of a selector: split at commas outside parentheses.
fn split_terms(text: &str) -> Result<Vec<&str>, String> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("a `)` closes nothing")?,
            ',' if depth == 0 => {
                terms.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a `(` is never closed".into());
    }
    terms.push(text[start..].trim());
    if terms.iter().any(|term| term.is_empty()) && text.trim() != "" {
        return Err("an empty term (two commas, or one at an end)".into());
    }
    Ok(terms.into_iter().filter(|term| !term.is_empty()).collect())
}

fn parse_term(term: &str) -> Result<Expression, String> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Expression::DoesNotExist(key.to_string()));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, set)) = term.split_once(operator) {
            let (key, set) = (key.trim(), set.trim());
            check_key(key)?;
            let values = set
                .strip_prefix('(')
                .and_then(|set| set.strip_suffix(')'))
                .ok_or_else(|| format!("the values of `{}` go in parentheses", operator.trim()))?;
            let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
            values.iter().try_for_each(|value| check_value(value))?;
            let values = values.into_iter().collect();
            return Ok(if negated {
                Expression::NotIn(key.to_string(), values)
            } else {
                Expression::In(key.to_string(), values)
            });
        }
    }
    let (key, value, equal) = if let Some((key, value)) = term.split_once("!=") {
        (key, value, false)
    } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        (key, value, true)
    } else {
        check_key(term)?;
        return Ok(Expression::Exists(term.to_string()));
    };
    let (key, value) = (key.trim(), value.trim());
    check_key(key)?;
    check_value(value)?;
    Ok(if equal {
        Expression::Equal(key.to_string(), value.to_string())
    } else {
        Expression::NotEqual(key.to_string(), value.to_string())
    })
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at
/// most 63 characters.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    let prefix_ok = prefix.is_empty()
        || (prefix.len() <= 253
            && prefix.split('.').all(|part| {
                is_name(part, |c| c == '-') && part.chars().all(|c| !c.is_ascii_uppercase())
            }));
    if key.contains('/') && prefix.is_empty() || !prefix_ok || name.is_empty() || !is_label(name) {
        return Err(format!(
            "`{key}` is not a label key (an optional DNS prefix and `/`, then at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A label value: empty, or like a key's name.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label(value) {
        return Ok(());
    }
    Err(format!(
        "`{value}` is not a label value (at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit)"
    ))
}

fn is_label(text: &str) -> bool {
    text.len() <= 63 && is_name(text, |c| matches!(c, '-' | '_' | '.'))
}

/// Alphanumeric at both ends, and in between alphanumeric or `inner`.
fn is_name(text: &str, inner: impl Fn(char) -> bool) -> bool {
    let alphanumeric = |c: char| c.is_ascii_alphanumeric();
    !text.is_empty()
        && text.starts_with(alphanumeric)
        && text.ends_with(alphanumeric)
        && text.chars().all(|c| alphanumeric(c) || inner(c))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt as _;
    use serde_json::json;

    use super::*;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn all_four_operators_and_match_labels_select_as_the_api_server_does() {
        let selector = selector(json!({
            "matchLabels": {"team": "blue"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "example.com/stage", "operator": "NotIn", "values": ["dev"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "paused", "operator": "DoesNotExist"},
            ],
        }));
        let parsed = selector.to_selector("spec.parentSelector").unwrap();
        let query = parsed.to_string();
        assert_eq!(
            query,
            "team=blue,tier in (api,web),example.com/stage notin (dev),owner,!paused"
        );
        let base = [("team", "blue"), ("tier", "web"), ("owner", "x")];
        assert!(parsed.matches(&labels(&base)));
        let table: [(&[(&str, &str)], bool); 5] = [
            (&[("team", "red"), ("tier", "web"), ("owner", "x")], false),
            (&[("team", "blue"), ("tier", "db"), ("owner", "x")], false),
            (
                &[
                    ("team", "blue"),
                    ("tier", "web"),
                    ("owner", "x"),
                    ("example.com/stage", "dev"),
                ],
                false,
            ),
            (&[("team", "blue"), ("tier", "web")], false),
            (
                &[
                    ("team", "blue"),
                    ("tier", "web"),
                    ("owner", "x"),
                    ("paused", ""),
                ],
                false,
            ),
        ];
        for (pairs, expected) in table {
            assert_eq!(parsed.matches(&labels(pairs)), expected, "{pairs:?}");
        }
        let everything = LabelSelector::default().to_selector("s").unwrap();
        assert!(everything.matches(&labels(&[])));
    }

    #[test]
    fn written_selectors_parse_as_kubectl_reads_them() {
        let matches = |text: &str, pairs: &[(&str, &str)]| {
            parse_selector(text).unwrap().matches(&labels(pairs))
        };
        let web = [("app", "web"), ("tier", "front")];
        assert!(matches("app=web", &web));
        assert!(matches("app==web,tier in (front, back)", &web));
        assert!(!matches("app!=web", &web));
        assert!(!matches("tier notin (front)", &web));
        assert!(matches("app", &web));
        assert!(!matches("!app", &web));
        assert!(matches("!team", &web));
        assert!(matches("", &web), "an empty selector selects everything");
        for (text, problem) in [
            ("app=web,,tier", "empty term"),
            ("tier in (a", "never closed"),
            ("app)", "closes nothing"),
            ("app=we b", "not a label value"),
            ("-app=web", "not a label key"),
            ("tier in x", "go in parentheses"),
        ] {
            let error = parse_selector(text).unwrap_err();
            assert!(error.contains(problem), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_bad_selector_says_where_and_what() {
        let table = [
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}),
                "`spec.parentSelector.matchExpressions[0]`: unknown operator `Equals`; use In, NotIn, Exists or DoesNotExist",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "`spec.parentSelector.matchExpressions[0]`: operator In needs at least one value",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}),
                "`spec.parentSelector.matchExpressions[0]`: operator Exists takes no values",
            ),
        ];
        for (value, message) in table {
            let error = selector(value)
                .to_selector("spec.parentSelector")
                .unwrap_err();
            assert_eq!(error.to_string(), message);
        }
        for bad in ["-a", "a b", "Example.com/a", "/a", &"a".repeat(64)] {
            let error = selector(json!({"matchLabels": {bad: "x"}}))
                .to_selector("s")
                .unwrap_err();
            assert!(
                error.problem.contains("is not a label key"),
                "{bad}: {error}"
            );
        }
        let error = selector(json!({"matchLabels": {"a": "not valid"}}))
            .to_selector("s")
            .unwrap_err();
        assert!(error.problem.contains("is not a label value"), "{error}");
        assert!(
            selector(json!({"matchLabels": {"a": ""}}))
                .to_selector("s")
                .is_ok()
        );
    }
}
