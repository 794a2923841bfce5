//! Just enough YAML for an Ultralytics `data.yaml`: top-level `key: value` lines, quoted or
//! plain scalars, flow lists `[a, 'b']` (over several lines too), flow maps `{0: a}`, and the
//! block list (`- a`) and block mapping (`0: a`) under a key. Keys this reader does not use
//! (Roboflow's `roboflow:` block, `download:` scripts) are kept unparsed, so whatever YAML they
//! hold is never an error. Errors carry the 1-based line.

/// A parse error: the line and what is wrong there.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

fn error(line: usize, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        message: message.into(),
    }
}

/// One top-level key, its inline text and the indented lines below it, still raw.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: String,
    line: usize,
    inline: String,
    block: Vec<(usize, String)>,
}

/// A value as this reader understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(String),
    List(Vec<(usize, String)>),
    Map(Vec<(usize, String, String)>),
    Empty,
}

/// A parsed `data.yaml`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Yaml {
    entries: Vec<Entry>,
}

impl Yaml {
    pub fn parse(text: &str) -> Result<Yaml, YamlError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = strip_comment(raw);
            if content.trim().is_empty() || content.trim() == "---" {
                continue;
            }
            if content.starts_with([' ', '\t']) || content.starts_with('-') {
                match entries.last_mut() {
                    Some(entry) => entry.block.push((line, content.to_string())),
                    None => return Err(error(line, "indented line before any key")),
                }
                continue;
            }
            let Some((key, rest)) = split_key(content) else {
                return Err(error(
                    line,
                    format!("expected `key: value`, found `{}`", content.trim()),
                ));
            };
            let key = unquote(key, line)?;
            if entries.iter().any(|e| e.key == key) {
                return Err(error(line, format!("`{key}` given twice")));
            }
            entries.push(Entry {
                key,
                line,
                inline: rest.trim().to_string(),
                block: Vec::new(),
            });
        }
        Ok(Yaml { entries })
    }

    /// The line of `key`, when the file has it.
    pub fn line(&self, key: &str) -> Option<usize> {
        self.entry(key).map(|e| e.line)
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value of `key`, parsed; `None` when the file does not have it.
    pub fn get(&self, key: &str) -> Option<Result<Value, YamlError>> {
        self.entry(key).map(value_of)
    }
}

fn value_of(entry: &Entry) -> Result<Value, YamlError> {
    let inline = entry.inline.as_str();
    let line = entry.line;
    if inline.starts_with('[') || inline.starts_with('{') {
        // A flow collection may run over the indented lines below its key.
        let mut text = inline.to_string();
        for (_, more) in &entry.block {
            text.push(' ');
            text.push_str(more.trim());
        }
        return flow(&text, line);
    }
    if !inline.is_empty() {
        if let Some((l, _)) = entry.block.first() {
            return Err(error(
                *l,
                format!("`{}` has a value on its line and below it", entry.key),
            ));
        }
        if inline.starts_with(['|', '>', '&', '*', '!']) {
            return Err(error(
                line,
                format!("`{inline}`: this YAML feature is not supported here"),
            ));
        }
        return Ok(Value::Scalar(unquote(inline, line)?));
    }
    let Some((first_line, first)) = entry.block.first() else {
        return Ok(Value::Empty);
    };
    let indent = indent_of(first);
    let is_list = first.trim_start().starts_with('-');
    let mut list = Vec::new();
    let mut map = Vec::new();
    for (l, text) in &entry.block {
        if indent_of(text) > indent {
            return Err(error(*l, "nested values are not supported here"));
        }
        if indent_of(text) < indent {
            return Err(error(*l, "inconsistent indentation"));
        }
        let item = text.trim();
        if is_list {
            let Some(rest) = item.strip_prefix('-') else {
                return Err(error(
                    *l,
                    format!("expected `- item` like line {first_line}"),
                ));
            };
            list.push((*l, unquote(rest.trim(), *l)?));
        } else {
            let Some((k, v)) = split_key(item) else {
                return Err(error(*l, format!("expected `key: value`, found `{item}`")));
            };
            map.push((*l, unquote(k, *l)?, unquote(v.trim(), *l)?));
        }
    }
    Ok(if is_list {
        Value::List(list)
    } else {
        Value::Map(map)
    })
}

/// `[a, b]` or `{k: v, ...}` on one logical line.
fn flow(text: &str, line: usize) -> Result<Value, YamlError> {
    let text = text.trim();
    let (open, close) = if text.starts_with('[') {
        ('[', ']')
    } else {
        ('{', '}')
    };
    let Some(inner) = text.strip_prefix(open).and_then(|t| t.strip_suffix(close)) else {
        return Err(error(line, format!("`{open}` without a closing `{close}`")));
    };
    let items = split_outside_quotes(inner, ',', line)?;
    // A trailing comma (`[a, b,]`) leaves an empty last item.
    let items: Vec<&str> = items
        .iter()
        .map(|s| s.trim())
        .enumerate()
        .filter(|(i, s)| !(s.is_empty() && *i + 1 == items.len()))
        .map(|(_, s)| s)
        .collect();
    if open == '[' {
        let list = items
            .into_iter()
            .map(|item| Ok((line, unquote(item, line)?)))
            .collect::<Result<_, YamlError>>()?;
        return Ok(Value::List(list));
    }
    let mut map = Vec::new();
    for item in items {
        let Some((k, v)) = split_key(item) else {
            return Err(error(
                line,
                format!("expected `key: value` in `{{...}}`, found `{item}`"),
            ));
        };
        map.push((line, unquote(k, line)?, unquote(v.trim(), line)?));
    }
    Ok(Value::Map(map))
}

fn indent_of(text: &str) -> usize {
    text.len() - text.trim_start().len()
}

/// The characters of `text` that lie outside quoted scalars, with their byte offsets, and
/// whether a quote is left open. A quote opens a scalar only where one can start (after a
/// space, `[`, `{`, `,` or `:`), so `it's` in a plain scalar is plain text; `\"` inside double
/// quotes does not close them.
fn unquoted(text: &str) -> (Vec<(usize, char)>, bool) {
    let mut out = Vec::new();
    let mut quote = None;
    let mut escaped = false;
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            // `''` inside single quotes is one quote.
            Some('\'') if c == '\'' && text[i + 1..].starts_with('\'') => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                let can_open = prev.is_none_or(|p| p.is_whitespace() || "[{,:".contains(p));
                if (c == '\'' || c == '"') && can_open {
                    quote = Some(c);
                } else {
                    out.push((i, c));
                }
            }
        }
        prev = Some(c);
    }
    (out, quote.is_some())
}

/// The text before a comment: `#` at the start or after whitespace, outside quotes.
fn strip_comment(line: &str) -> &str {
    let hash = unquoted(line).0.into_iter().find(|&(i, c)| {
        c == '#'
            && line[..i]
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace)
    });
    match hash {
        Some((i, _)) => line[..i].trim_end(),
        None => line.trim_end(),
    }
}

/// `key: rest` split at the first `:` outside quotes that ends the text or is followed by a
/// space (so `C:\\data` or `http://x` in a value stays whole).
fn split_key(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let (i, _) = unquoted(text)
        .0
        .into_iter()
        .find(|&(i, c)| c == ':' && bytes.get(i + 1).is_none_or(|b| *b == b' ' || *b == b'\t'))?;
    let key = text[..i].trim();
    (!key.is_empty()).then_some((key, &text[i + 1..]))
}

fn split_outside_quotes(text: &str, sep: char, line: usize) -> Result<Vec<&str>, YamlError> {
    let (chars, open) = unquoted(text);
    if open {
        return Err(error(line, "a quote is not closed"));
    }
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in chars {
        if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// A scalar's text: `'it''s'` → `it's`, `"a\"b"` → `a"b`, plain text trimmed.
fn unquote(text: &str, line: usize) -> Result<String, YamlError> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('\'') {
        let Some(inner) = inner.strip_suffix('\'') else {
            return Err(error(line, format!("`{text}`: the quote is not closed")));
        };
        return Ok(inner.replace("''", "'"));
    }
    if let Some(inner) = text.strip_prefix('"') {
        let Some(inner) = inner
            .strip_suffix('"')
            .filter(|i| !i.ends_with('\\') || i.ends_with("\\\\"))
        else {
            return Err(error(line, format!("`{text}`: the quote is not closed")));
        };
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some(c @ ('"' | '\\' | '/')) => out.push(c),
                // JSON-style `\u00e9` (serde_json writes control characters so).
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    let Some(c) = c else {
                        return Err(error(line, format!("`\\u{hex}`: not a character")));
                    };
                    out.push(c);
                }
                other => {
                    return Err(error(
                        line,
                        format!("`\\{}`: escape not supported", other.unwrap_or(' ')),
                    ));
                }
            }
        }
        return Ok(out);
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(yaml: &str, key: &str) -> Value {
        Yaml::parse(yaml).unwrap().get(key).unwrap().unwrap()
    }

    fn list(items: &[(usize, &str)]) -> Value {
        Value::List(items.iter().map(|&(l, s)| (l, s.to_string())).collect())
    }

    #[test]
    fn flow_lists_quoted_or_plain_over_one_or_several_lines() {
        assert_eq!(get("names: [a, b]\n", "names"), list(&[(1, "a"), (1, "b")]));
        assert_eq!(
            get(
                "nc: 3\nnames: ['a, x', \"b\", 'it''s, #1', it's]  # four\n",
                "names"
            ),
            list(&[(2, "a, x"), (2, "b"), (2, "it's, #1"), (2, "it's")])
        );
        assert_eq!(
            get(
                "names: ['person', 'bicycle',\n        'car']\nnc: 3\n",
                "names"
            ),
            list(&[(1, "person"), (1, "bicycle"), (1, "car")])
        );
    }

    #[test]
    fn block_lists_and_mappings() {
        assert_eq!(
            get("names:\n  - cat   # a pet\n  - 'dog'\n", "names"),
            list(&[(2, "cat"), (3, "dog")])
        );
        // Ultralytics writes the list unindented too.
        assert_eq!(
            get("names:\n- a\n- b\n", "names"),
            list(&[(2, "a"), (3, "b")])
        );
        assert_eq!(
            get(
                "path: ../d\nnames:\n  0: person\n  1: 'traffic light'\n",
                "names"
            ),
            Value::Map(vec![
                (3, "0".into(), "person".into()),
                (4, "1".into(), "traffic light".into())
            ])
        );
        assert_eq!(
            get("names: [\"caf\\u00e9\", \"a\\\"b\"]", "names"),
            list(&[(1, "café"), (1, "a\"b")])
        );
        assert_eq!(
            get("names: {0: a, 1: b}", "names"),
            Value::Map(vec![
                (1, "0".into(), "a".into()),
                (1, "1".into(), "b".into())
            ])
        );
    }

    #[test]
    fn scalars_and_keys_this_reader_does_not_use() {
        let text = "train: ../train/images\nval: 'valid/images'\ntest:\nroboflow:\n  workspace: w\n  license: CC BY 4.0\n  url: https://x/y\ndownload: |\n  import x\n    y()\n";
        let yaml = Yaml::parse(text).unwrap();
        assert_eq!(
            yaml.get("train").unwrap(),
            Ok(Value::Scalar("../train/images".into()))
        );
        assert_eq!(
            yaml.get("val").unwrap(),
            Ok(Value::Scalar("valid/images".into()))
        );
        assert_eq!(yaml.get("test").unwrap(), Ok(Value::Empty));
        assert_eq!(yaml.line("val"), Some(2));
        assert!(yaml.get("names").is_none());
        // Unsupported YAML in a key nobody reads is never looked at.
        assert!(yaml.get("download").unwrap().is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let err = Yaml::parse("names: [a, b]\nthis is not yaml\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = Yaml::parse("nc: 1\nnc: 2\n").unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (2, "`nc` given twice"));
        let yaml = Yaml::parse("names: ['a', 'b\n").unwrap();
        assert_eq!(yaml.get("names").unwrap().unwrap_err().line, 1);
        let yaml = Yaml::parse("names:\n  - a\n  b: c\n").unwrap();
        assert_eq!(yaml.get("names").unwrap().unwrap_err().line, 3);
        let yaml = Yaml::parse("names:\n  - a\n    - b\n").unwrap();
        assert_eq!(yaml.get("names").unwrap().unwrap_err().line, 3);
        assert_eq!(Yaml::parse("  - a\n").unwrap_err().line, 1);
    }
}
