//! A strict reader of the Prometheus text format 0.0.4, for the tests: every line must be a
//! `# HELP`, a `# TYPE` or a sample of a family whose TYPE came first, label values are
//! unescaped exactly (`\\`, `\"`, `\n`), values are floats. Anything else fails the test.
//! `prometheus-parse` is lenient (it skips lines it cannot read and splits labels on `,`),
//! so this reader is what proves a hostile label value survives.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name → type, in the order declared.
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn samples_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |sample| sample.name == name)
    }
}

fn is_name(name: &str, allow_colon: bool) -> bool {
    let mut characters = name.chars();
    let valid_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':');
    characters.next().is_some_and(valid_first)
        && characters.all(|c| valid_first(c) || c.is_ascii_digit())
}

/// The family a sample belongs to: its own name, or the name less a histogram suffix.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).map(String::as_str) == Some("histogram") {
                return Some(base);
            }
        }
    }
    None
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// Parses `{a="x",b="y"}` at the start of `rest`; returns the labels and what follows.
fn parse_labels(rest: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let equals = rest.find('=').ok_or("label without =")?;
        let key = &rest[..equals];
        if !is_name(key, false) {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[equals + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut characters = rest.char_indices();
        let end = loop {
            match characters.next().ok_or("unterminated label value")? {
                (index, '"') => break index,
                (_, '\\') => match characters.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, '\n') => return Err("raw newline in a label value".into()),
                (_, character) => value.push(character),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ,".into());
        }
    }
}

pub fn parse_strict(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    for (number, line) in text.lines().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line:?}", number + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or_else(|| fail("HELP without text".into()))?;
            if exposition
                .help
                .insert(name.to_owned(), help.to_owned())
                .is_some()
            {
                return Err(fail("second HELP".into()));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| fail("TYPE without type".into()))?;
            if !is_name(name, true) {
                return Err(fail("bad family name".into()));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(fail(format!("unknown type {kind}")));
            }
            if exposition
                .types
                .insert(name.to_owned(), kind.to_owned())
                .is_some()
            {
                return Err(fail("second TYPE".into()));
            }
        } else if line.starts_with('#') {
            return Err(fail("unexpected comment".into()));
        } else {
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| fail("sample without value".into()))?;
            let name = &line[..name_end];
            if !is_name(name, true) {
                return Err(fail("bad metric name".into()));
            }
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..]).map_err(fail)?
            } else {
                (BTreeMap::new(), &line[name_end..])
            };
            let value = rest
                .strip_prefix(' ')
                .ok_or_else(|| fail("no space before the value".into()))?;
            let value = parse_value(value).map_err(fail)?;
            if family_of(name, &exposition.types).is_none() {
                return Err(fail("sample of a family with no TYPE before it".into()));
            }
            exposition.samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
    }
    Ok(exposition)
}
