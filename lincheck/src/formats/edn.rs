//! Just enough EDN to read one flat map per line, such as
//! `{:process 0, :type :ok, :f :get, :key "4", :value nil}`: keyword keys,
//! and keyword, string, integer or `nil` values. Commas are whitespace, as
//! in EDN.

use std::iter::Peekable;
use std::str::Chars;

/// A value of a flat EDN map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `nil`
    Nil,
    /// An integer.
    Integer(i64),
    /// A string, escapes resolved.
    String(String),
    /// A keyword, without its colon.
    Keyword(String),
}

/// The entries of the map on `line`, keys without their colons, in order.
pub(crate) fn parse_map(line: &str) -> Result<Vec<(String, Value)>, String> {
    let mut chars = line.trim().chars().peekable();
    if chars.next() != Some('{') {
        return Err("expected a map starting with '{'".to_owned());
    }
    let mut entries = Vec::new();
    loop {
        skip_whitespace(&mut chars);
        match chars.peek() {
            Some('}') => break,
            Some(':') => {
                let key = keyword(&mut chars);
                skip_whitespace(&mut chars);
                entries.push((key, value(&mut chars)?));
            }
            Some(other) => return Err(format!("expected a keyword key, found {other:?}")),
            None => return Err("the map is not closed with '}'".to_owned()),
        }
    }
    chars.next();
    skip_whitespace(&mut chars);
    match chars.next() {
        None => Ok(entries),
        Some(other) => Err(format!("unexpected {other:?} after the map")),
    }
}

fn skip_whitespace(chars: &mut Peekable<Chars<'_>>) {
    while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
}

/// A token running up to the next delimiter.
fn bare_token(chars: &mut Peekable<Chars<'_>>) -> String {
    let mut token = String::new();
    while let Some(c) = chars.next_if(|c| !(c.is_whitespace() || matches!(c, ',' | '{' | '}' | '"'))) {
        token.push(c);
    }
    token
}

/// A keyword, the cursor being on its colon.
fn keyword(chars: &mut Peekable<Chars<'_>>) -> String {
    chars.next();
    bare_token(chars)
}

fn value(chars: &mut Peekable<Chars<'_>>) -> Result<Value, String> {
    match chars.peek() {
        Some(':') => Ok(Value::Keyword(keyword(chars))),
        Some('"') => string(chars).map(Value::String),
        Some(_) => {
            let token = bare_token(chars);
            if token == "nil" {
                Ok(Value::Nil)
            } else {
                token.parse().map(Value::Integer).map_err(|_| format!("unsupported value {token:?}"))
            }
        }
        None => Err("a key has no value".to_owned()),
    }
}

/// A string literal, the cursor being on its opening quote.
fn string(chars: &mut Peekable<Chars<'_>>) -> Result<String, String> {
    chars.next();
    let mut text = String::new();
    loop {
        match chars.next() {
            Some('"') => return Ok(text),
            Some('\\') => text.push(match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some(c @ ('"' | '\\')) => c,
                other => return Err(format!("unsupported escape \\{other:?}")),
            }),
            Some(c) => text.push(c),
            None => return Err("a string is not closed".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, parse_map};

    #[test]
    fn reads_keywords_strings_integers_and_nil() {
        let entries = parse_map(r#"{:process 12, :type :ok, :key "a \"b\"", :value nil}"#);
        assert_eq!(
            entries,
            Ok(vec![
                ("process".to_owned(), Value::Integer(12)),
                ("type".to_owned(), Value::Keyword("ok".to_owned())),
                ("key".to_owned(), Value::String("a \"b\"".to_owned())),
                ("value".to_owned(), Value::Nil),
            ])
        );
    }

    #[test]
    fn rejects_an_unclosed_map() {
        assert!(parse_map(r#"{:process 1, :key "x""#).is_err());
    }
}
