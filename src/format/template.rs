//! Go's text/template, the part people write in Docker's and Podman's `--format`: fields
//! (`{{.State.Status}}`), variables, pipelines (`{{.Names | upper}}`), `if`/`else`/`range`/
//! `with`, Go's built-in functions (`len`, `index`, `printf`, `eq`…) and Docker's own (`json`,
//! `join`, `split`, `upper`, `lower`, `title`, `truncate`, `pad`), over JSON values.
//!
//! Hand-written rather than `gtmpl`: that crate has its own value type, no Docker functions,
//! an incomplete `printf`, and cannot tell a struct's unknown field (an error in Docker) from
//! a map's missing key (`<no value>`), which is the error users most need to see.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid --format template `{template}`: {reason}")]
    Invalid { template: String, reason: String },
    #[error("cannot apply --format template `{template}`: {reason}")]
    Exec { template: String, reason: String },
}

/// Docker's template functions and Go's built-ins that make sense on JSON.
const FUNCTIONS: &[&str] = &[
    "and", "eq", "ge", "gt", "index", "join", "json", "le", "len", "lower", "lt", "ne", "not",
    "or", "pad", "print", "printf", "println", "split", "title", "truncate", "upper",
];

/// Fields that hold maps in Docker's structs: a missing key there is `<no value>`, not an
/// error.
const MAP_FIELDS: &[&str] = &[
    "Labels",
    "Options",
    "Data",
    "Ports",
    "ExposedPorts",
    "PortBindings",
    "Volumes",
    "Networks",
    "Annotations",
];

/// Slices in Docker's structs that JSON shows as `null` when empty and Go prints as `[]`.
const LIST_FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "ExtraHosts",
    "CapAdd",
    "CapDrop",
    "SecurityOpt",
    "RepoTags",
    "RepoDigests",
    "Dns",
    "Args",
    "Mounts",
];

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Print(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    /// `$x :=` or `$i, $e :=` (range), or `$x =` (assign).
    vars: Vec<String>,
    assign: bool,
    commands: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.A.B` from dot; `$x.A` from a variable (`$` is the root).
    Field {
        var: Option<String>,
        path: Vec<String>,
    },
    Function(String),
    Literal(Value),
    Nested(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Literal(Value),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

/// A parsed `--format` value: `json`, `table [TEMPLATE]`, or a Go template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
    /// `table …`: print a header row and align the columns.
    pub table: bool,
    /// Exactly `json`.
    pub json: bool,
    /// Every object is a map: a missing key is `<no value>`, never an error.
    loose: bool,
}

impl Template {
    pub fn parse(input: &str) -> Result<Template, TemplateError> {
        let invalid = |reason: String| TemplateError::Invalid {
            template: input.to_string(),
            reason,
        };
        if input.trim() == "json" {
            return Ok(Template {
                source: input.to_string(),
                nodes: vec![Node::Print(Pipeline {
                    vars: vec![],
                    assign: false,
                    commands: vec![vec![
                        Operand::Function("json".into()),
                        Operand::Field {
                            var: None,
                            path: vec![],
                        },
                    ]],
                })],
                table: false,
                json: true,
                loose: false,
            });
        }
        let (table, body) = match input.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest),
            _ => (false, input),
        };
        // As Docker's formatter: spaces around the template go, `\t` and `\n` typed as two
        // characters are a tab and a newline.
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        if !table && !body.contains("{{") {
            // Go would print the text once per row; what the user meant is a format name.
            return Err(invalid(
                "it has no {{…}} action: use `json`, `table`, `table TEMPLATE` or a Go template such as '{{json .}}'".into(),
            ));
        }
        let items = split_actions(&body).map_err(invalid)?;
        let mut parser = Parser { items, pos: 0 };
        let (nodes, end) = parser.list().map_err(invalid)?;
        match end {
            Stop::Eof => {}
            Stop::End => return Err(invalid("unexpected {{end}}".into())),
            Stop::Else(_) => return Err(invalid("unexpected {{else}}".into())),
        }
        Ok(Template {
            source: input.to_string(),
            nodes,
            table,
            json: false,
            loose: false,
        })
    }

    /// Treats every object as a map, as `docker inspect` does when a field is not in its
    /// type (it falls back to the raw JSON): an unknown field prints `<no value>`.
    pub fn loose(mut self) -> Template {
        self.loose = true;
        self
    }

    /// `table` with no template: the command's default columns.
    pub fn is_default_table(&self) -> bool {
        self.table && self.nodes.is_empty()
    }

    /// Checks the fields the template reads from each row against the row's `fields`, so an
    /// unknown one is reported even when there is no row.
    pub fn check_fields(&self, fields: &[&str]) -> Result<(), TemplateError> {
        let mut unknown = None;
        visit_fields(&self.nodes, true, &mut |var, path| {
            let from_root = var.is_none() || var == Some("$");
            if unknown.is_none()
                && from_root
                && let Some(first) = path.first()
                && !(first == "Label" && fields.contains(&"Labels"))
                && !fields.iter().any(|f| f.eq_ignore_ascii_case(first))
            {
                unknown = Some(first.clone());
            }
        });
        match unknown {
            None => Ok(()),
            Some(name) => Err(TemplateError::Invalid {
                template: self.source.clone(),
                reason: unknown_field(&name, fields.iter().copied()),
            }),
        }
    }

    /// Whether the template reads the row's field `name` (Docker computes some, such as
    /// `ps`'s `Size`, only when asked for).
    pub fn uses_field(&self, name: &str) -> bool {
        let mut used = false;
        visit_fields(&self.nodes, true, &mut |var, path| {
            used |= (var.is_none() || var == Some("$"))
                && path.first().is_some_and(|f| f.eq_ignore_ascii_case(name));
        });
        used
    }

    /// Renders one value (one row).
    pub fn render(&self, value: &Value) -> Result<String, TemplateError> {
        let mut exec = Exec {
            root: value,
            vars: vec![("$".into(), value.clone())],
            header: false,
            loose: self.loose,
        };
        let mut out = String::new();
        exec.nodes(&self.nodes, value, &mut out)
            .map_err(|reason| TemplateError::Exec {
                template: self.source.clone(),
                reason,
            })?;
        Ok(out)
    }

    /// The header row of a `table` template: the template run over each field's heading
    /// (`headers` maps field names to Docker's headings; others are the name in capitals).
    pub fn header(&self, fields: &[&str], headers: &[(&str, &str)]) -> String {
        let mut object = Map::new();
        for field in fields {
            let heading = headers
                .iter()
                .find(|(k, _)| k == field)
                .map_or_else(|| field.to_uppercase(), |(_, h)| h.to_string());
            object.insert(field.to_string(), Value::String(heading));
        }
        let value = Value::Object(object);
        let mut exec = Exec {
            root: &value,
            vars: vec![("$".into(), value.clone())],
            header: true,
            loose: self.loose,
        };
        let mut out = String::new();
        // A header that cannot be rendered (a function refusing a heading) stays empty.
        match exec.nodes(&self.nodes, &value, &mut out) {
            Ok(()) => out,
            Err(_) => String::new(),
        }
    }

    /// Renders every value, one per line; a `table` template gets its header and aligned
    /// columns.
    pub fn render_all(
        &self,
        values: &[Value],
        fields: &[&str],
        headers: &[(&str, &str)],
    ) -> Result<String, TemplateError> {
        if !self.table {
            return values.iter().map(|v| Ok(self.render(v)? + "\n")).collect();
        }
        let mut rows = vec![split_cells(&self.header(fields, headers))];
        for v in values {
            rows.push(split_cells(&self.render(v)?));
        }
        Ok(super::table(&rows))
    }
}

fn split_cells(line: &str) -> Vec<String> {
    line.split('\t').map(str::to_string).collect()
}

fn unknown_field<'a>(name: &str, fields: impl Iterator<Item = &'a str>) -> String {
    let mut fields: Vec<&str> = fields.collect();
    fields.sort_unstable();
    format!(
        "unknown field `.{name}` (fields: {})",
        fields
            .iter()
            .map(|f| format!(".{f}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Calls `f` with each field operand; `top` says whether dot is still the row there.
fn visit_fields(nodes: &[Node], top: bool, f: &mut dyn FnMut(Option<&str>, &[String])) {
    fn pipe(p: &Pipeline, top: bool, f: &mut dyn FnMut(Option<&str>, &[String])) {
        for cmd in &p.commands {
            for op in cmd {
                match op {
                    Operand::Field { var, path } if top || var.is_some() => f(var.as_deref(), path),
                    Operand::Nested(inner) => pipe(inner, top, f),
                    _ => {}
                }
            }
        }
    }
    for node in nodes {
        match node {
            Node::Text(_) => {}
            Node::Print(p) => pipe(p, top, f),
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                pipe(cond, top, f);
                visit_fields(then, top, f);
                visit_fields(otherwise, top, f);
            }
            Node::Range {
                pipe: p,
                body,
                otherwise,
            }
            | Node::With {
                pipe: p,
                body,
                otherwise,
            } => {
                pipe(p, top, f);
                visit_fields(body, false, f);
                visit_fields(otherwise, top, f);
            }
        }
    }
}

enum Item {
    Text(String),
    Action(String),
}

/// Splits the template into text and the insides of `{{ }}`, applying `{{-` and `-}}`
/// (trim the whitespace before or after) and dropping comments.
fn split_actions(body: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = body;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = &rest[start + 2..];
        if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
            text = text.trim_end();
            inner = &inner[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let end = action_end(inner).ok_or("unclosed action: a `{{` without its `}}`")?;
        let mut action = &inner[..end];
        trim_next = false;
        if action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-") {
            action = &action[..action.len() - 1];
            trim_next = true;
        }
        let action = action.trim();
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            items.push(Item::Action(action.to_string()));
        }
        rest = &inner[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

/// Where the action's `}}` is, skipping quoted strings.
fn action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q == b'"' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' || b == b'\'' => quote = Some(b),
            None if bytes[i..].starts_with(b"}}") => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn tokenize(action: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = action.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let path = |i: &mut usize| -> Result<Vec<String>, String> {
        let mut parts = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            *i += 1;
            let name = word(i);
            if name.is_empty() {
                if parts.is_empty() {
                    break;
                }
                return Err("a field name must follow `.`".into());
            }
            parts.push(name);
        }
        Ok(parts)
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                tokens.push(number(&chars, &mut i)?);
            }
            '.' => tokens.push(Token::Field(path(&mut i)?)),
            '$' => {
                i += 1;
                let name = format!("${}", word(&mut i));
                tokens.push(Token::Var(name, path(&mut i)?));
            }
            '"' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated quoted string".into());
                }
                i += 1;
                let quoted: String = chars[start..i].iter().collect();
                let s: String =
                    serde_json::from_str(&quoted).map_err(|_| format!("bad string {quoted}"))?;
                tokens.push(Token::Literal(Value::String(s)));
            }
            '`' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw string".into());
                }
                tokens.push(Token::Literal(Value::String(
                    chars[start..i].iter().collect(),
                )));
                i += 1;
            }
            '\'' => {
                let ch = chars.get(i + 1).copied().ok_or("unterminated character")?;
                if chars.get(i + 2) != Some(&'\'') {
                    return Err("bad character constant".into());
                }
                tokens.push(Token::Literal(Value::from(ch as u32)));
                i += 3;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                tokens.push(number(&chars, &mut i)?);
            }
            c if c.is_alphabetic() || c == '_' => tokens.push(Token::Ident(word(&mut i))),
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(tokens)
}

fn number(chars: &[char], i: &mut usize) -> Result<Token, String> {
    let start = *i;
    *i += 1;
    while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '.') {
        *i += 1;
    }
    let text: String = chars[start..*i].iter().collect();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Token::Literal(Value::from(n)));
    }
    match text.parse::<f64>() {
        Ok(f) => Ok(Token::Literal(Value::from(f))),
        Err(_) => Err(format!("bad number `{text}`")),
    }
}

enum Stop {
    Eof,
    End,
    Else(Option<Pipeline>),
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let item = &self.items[self.pos];
            self.pos += 1;
            let action = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action(a) => a.clone(),
            };
            let (keyword, rest) = match action.split_once(char::is_whitespace) {
                Some((k, r)) => (k, r.trim()),
                None => (action.as_str(), ""),
            };
            match keyword {
                "end" => return Ok((nodes, Stop::End)),
                "else" if rest.is_empty() => return Ok((nodes, Stop::Else(None))),
                "else" => {
                    let Some(cond) = rest.strip_prefix("if") else {
                        return Err(format!("unsupported `{{{{{action}}}}}`"));
                    };
                    return Ok((nodes, Stop::Else(Some(pipeline(cond)?))));
                }
                "if" => nodes.push(self.if_rest(pipeline(rest)?)?),
                "range" | "with" => {
                    let pipe = pipeline(rest)?;
                    let (body, end) = self.list()?;
                    let otherwise = match end {
                        Stop::End => vec![],
                        Stop::Else(None) => self.until_end(keyword)?,
                        _ => return Err(format!("{{{{{keyword}}}}} without {{{{end}}}}")),
                    };
                    nodes.push(if keyword == "range" {
                        Node::Range {
                            pipe,
                            body,
                            otherwise,
                        }
                    } else {
                        Node::With {
                            pipe,
                            body,
                            otherwise,
                        }
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(format!("`{keyword}` is not supported"));
                }
                _ => nodes.push(Node::Print(pipeline(&action)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn until_end(&mut self, keyword: &str) -> Result<Vec<Node>, String> {
        match self.list()? {
            (nodes, Stop::End) => Ok(nodes),
            _ => Err(format!("{{{{{keyword}}}}} without {{{{end}}}}")),
        }
    }

    fn if_rest(&mut self, cond: Pipeline) -> Result<Node, String> {
        let (then, end) = self.list()?;
        let otherwise = match end {
            Stop::End => vec![],
            Stop::Else(None) => self.until_end("if")?,
            Stop::Else(Some(next)) => vec![self.if_rest(next)?],
            Stop::Eof => return Err("{{if}} without {{end}}".into()),
        };
        Ok(Node::If {
            cond,
            then,
            otherwise,
        })
    }
}

fn pipeline(text: &str) -> Result<Pipeline, String> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let p = parse_pipeline(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(format!("unexpected `)` in `{text}`"));
    }
    if p.commands.is_empty() {
        return Err("empty action `{{}}`".into());
    }
    Ok(p)
}

fn parse_pipeline(tokens: &[Token], pos: &mut usize) -> Result<Pipeline, String> {
    // `$x :=`, `$i, $e :=` or `$x =` first.
    let mut vars = Vec::new();
    let mut assign = false;
    let mut look = *pos;
    let mut names = Vec::new();
    while let Some(Token::Var(name, path)) = tokens.get(look) {
        if !path.is_empty() {
            break;
        }
        names.push(name.clone());
        look += 1;
        match tokens.get(look) {
            Some(Token::Comma) => look += 1,
            Some(Token::Declare) | Some(Token::Assign) => {
                assign = tokens[look] == Token::Assign;
                vars = names.clone();
                *pos = look + 1;
                break;
            }
            _ => break,
        }
    }
    let mut commands = Vec::new();
    let mut current = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        match token {
            Token::Pipe => {
                if current.is_empty() {
                    return Err("missing command before `|`".into());
                }
                commands.push(std::mem::take(&mut current));
            }
            Token::Close => {
                *pos -= 1;
                break;
            }
            Token::Open => {
                let inner = parse_pipeline(tokens, pos)?;
                if tokens.get(*pos) != Some(&Token::Close) {
                    return Err("unclosed `(`".into());
                }
                *pos += 1;
                current.push(Operand::Nested(inner));
            }
            Token::Field(path) => current.push(Operand::Field {
                var: None,
                path: path.clone(),
            }),
            Token::Var(name, path) => current.push(Operand::Field {
                var: Some(name.clone()),
                path: path.clone(),
            }),
            Token::Literal(v) => current.push(Operand::Literal(v.clone())),
            Token::Ident(name) => current.push(match name.as_str() {
                "true" => Operand::Literal(Value::Bool(true)),
                "false" => Operand::Literal(Value::Bool(false)),
                "nil" => Operand::Literal(Value::Null),
                f if FUNCTIONS.contains(&f) => Operand::Function(f.to_string()),
                f => {
                    return Err(format!(
                        "unknown function `{f}` (functions: {})",
                        FUNCTIONS.join(", ")
                    ));
                }
            }),
            Token::Comma | Token::Declare | Token::Assign => {
                return Err("unexpected `,`, `:=` or `=`".into());
            }
        }
    }
    if !current.is_empty() {
        commands.push(current);
    } else if !commands.is_empty() {
        return Err("missing command after `|`".into());
    }
    Ok(Pipeline {
        vars,
        assign,
        commands,
    })
}

struct Exec<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    /// Rendering the header row: methods give their column's heading.
    header: bool,
    loose: bool,
}

/// A value, or nothing: what a missing map key gives (`<no value>`).
type Val = Option<Value>;

impl Exec<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
        let scope = self.vars.len();
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Print(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.vars.is_empty() {
                        out.push_str(&print_value(v.as_ref(), list_field(p)));
                    }
                }
                Node::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let v = self.pipeline(cond, dot)?;
                    let branch = if truthy(v.as_ref()) { then } else { otherwise };
                    self.nodes(branch, dot, out)?;
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    match v {
                        Some(v) if truthy(Some(&v)) => self.nodes(body, &v, out)?,
                        _ => self.nodes(otherwise, dot, out)?,
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mut decl = pipe.clone();
                    let names = std::mem::take(&mut decl.vars);
                    let v = self.pipeline(&decl, dot)?;
                    let entries: Vec<(Value, Value)> = match v {
                        Some(Value::Array(items)) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::from(i), v))
                            .collect(),
                        Some(Value::Object(map)) => {
                            let mut entries: Vec<_> = map.into_iter().collect();
                            entries.sort_by(|a, b| a.0.cmp(&b.0));
                            entries
                                .into_iter()
                                .map(|(k, v)| (Value::String(k), v))
                                .collect()
                        }
                        Some(Value::Number(n)) if n.as_u64().is_some() => (0..n.as_u64().unwrap())
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        None | Some(Value::Null) => vec![],
                        Some(other) => {
                            return Err(format!("range can't iterate over {}", go_print(&other)));
                        }
                    };
                    if entries.is_empty() {
                        self.nodes(otherwise, dot, out)?;
                    }
                    for (key, item) in entries {
                        let inner = self.vars.len();
                        match names.as_slice() {
                            [] => {}
                            [one] => self.vars.push((one.clone(), item.clone())),
                            [k, e, ..] => {
                                self.vars.push((k.clone(), key));
                                self.vars.push((e.clone(), item.clone()));
                            }
                        }
                        self.nodes(body, &item, out)?;
                        self.vars.truncate(inner);
                    }
                }
            }
        }
        self.vars.truncate(scope);
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Val, String> {
        let mut value: Option<Val> = None;
        for cmd in &p.commands {
            value = Some(self.command(cmd, dot, value)?);
        }
        let value = value.flatten();
        if !p.vars.is_empty() {
            let v = value.clone().unwrap_or(Value::Null);
            for name in &p.vars {
                if p.assign {
                    match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        Some(slot) => slot.1 = v.clone(),
                        None => return Err(format!("undefined variable `{name}`")),
                    }
                } else {
                    self.vars.push((name.clone(), v.clone()));
                }
            }
        }
        Ok(value)
    }

    fn command(&mut self, cmd: &[Operand], dot: &Value, piped: Option<Val>) -> Result<Val, String> {
        let (first, rest) = cmd.split_first().ok_or("empty command")?;
        let mut args = Vec::new();
        for op in rest {
            args.push(self.operand(op, dot)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        match first {
            Operand::Function(name) => call(name, args),
            Operand::Field { var, path } if !args.is_empty() => {
                // `.Label "k"`: a method of the value the path leads to.
                let (method, receiver) =
                    path.split_last().ok_or("cannot call `.` with arguments")?;
                let base = self.base(var.as_deref(), dot)?;
                let mut target = Some(base);
                let mut parent = None;
                for key in receiver {
                    target = field(target.as_ref(), key, parent, self.loose)?;
                    parent = Some(key.as_str());
                }
                self.method(method, target.as_ref(), &args)
            }
            _ if !args.is_empty() => Err("only functions and methods take arguments".into()),
            op => self.operand(op, dot),
        }
    }

    fn base(&self, var: Option<&str>, dot: &Value) -> Result<Value, String> {
        match var {
            None => Ok(dot.clone()),
            Some("$") => Ok(self.root.clone()),
            Some(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undefined variable `{name}`")),
        }
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> Result<Val, String> {
        match op {
            Operand::Literal(v) => Ok(Some(v.clone())),
            Operand::Nested(p) => self.pipeline(p, dot),
            Operand::Function(name) => call(name, vec![]),
            Operand::Field { var, path } => {
                let mut value = Some(self.base(var.as_deref(), dot)?);
                let mut parent = None;
                for key in path {
                    value = field(value.as_ref(), key, parent, self.loose)?;
                    parent = Some(key.as_str());
                }
                Ok(value)
            }
        }
    }

    fn method(&self, name: &str, receiver: Option<&Value>, args: &[Val]) -> Result<Val, String> {
        if name != "Label" {
            return Err(format!("`.{name}` is not a method: it takes no arguments"));
        }
        let [Some(Value::String(key))] = args else {
            return Err("`.Label` takes one string: {{.Label \"KEY\"}}".into());
        };
        if self.header {
            let last = key.rsplit('.').next().unwrap_or(key);
            return Ok(Some(Value::String(
                last.replace(['-', '_'], " ").to_uppercase(),
            )));
        }
        let labels = receiver.and_then(|r| r.get("Labels"));
        let found = match labels {
            Some(Value::Object(map)) => map.get(key).map(go_print),
            Some(Value::String(list)) => list
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.to_string()),
            _ => return Err("`.Label` needs a value with `.Labels`".into()),
        };
        Ok(Some(Value::String(found.unwrap_or_default())))
    }
}

/// Whether the value printed is a field Go holds as a slice (a JSON `null` prints `[]`).
fn list_field(p: &Pipeline) -> bool {
    matches!(p.commands.as_slice(), [cmd] if matches!(cmd.as_slice(),
        [Operand::Field { path, .. }] if path.last().is_some_and(|k| LIST_FIELDS.contains(&k.as_str()))))
}

/// `key` of `value`. A key missing from a map (an object reached through one of
/// [`MAP_FIELDS`], an empty one, or one whose keys are not Go field names) is `<no value>`;
/// missing from a struct-like object it is an error naming the fields there are (unless
/// `loose`). Keys match exactly, else in any case (`{{.Store.Root}}` reads `store.root`).
fn field(
    value: Option<&Value>,
    key: &str,
    parent: Option<&str>,
    loose: bool,
) -> Result<Val, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if let Some(v) = map.get(key) {
                return Ok(Some(v.clone()));
            }
            if let Some((_, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Ok(Some(v.clone()));
            }
            let is_map = loose
                || parent.is_some_and(|p| MAP_FIELDS.contains(&p))
                || map.is_empty()
                || !map
                    .keys()
                    .all(|k| k.starts_with(|c: char| c.is_ascii_alphabetic()));
            if is_map {
                Ok(None)
            } else {
                Err(unknown_field(key, map.keys().map(String::as_str)))
            }
        }
        Some(other) => Err(format!(
            "can't evaluate field `{key}` in {} {}",
            kind(other),
            go_print(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn print_value(v: Option<&Value>, list: bool) -> String {
    match v {
        None => "<no value>".into(),
        Some(Value::Null) if list => "[]".into(),
        Some(v) => go_print(v),
    }
}

/// Prints a value as Go's text/template does: strings bare, lists as `[a b]`, maps as
/// `map[k:v]` (keys sorted), nil as `<nil>`.
pub fn go_print(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_print).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print(&map[k.as_str()])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
        other => other.to_string(),
    }
}

fn text_arg(name: &str, v: &Val) -> Result<String, String> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        None => Ok(String::new()),
        Some(other) => Err(format!("{name} wants a string, got {}", go_print(other))),
    }
}

fn int_arg(name: &str, v: &Val) -> Result<i64, String> {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| format!("{name} wants an integer")),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("{name} wants an integer, got `{s}`")),
        _ => Err(format!("{name} wants an integer")),
    }
}

fn arity(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "{name} takes {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        ))
    }
}

fn call(name: &str, args: Vec<Val>) -> Result<Val, String> {
    let s = |v: String| Ok(Some(Value::String(v)));
    match name {
        "json" => {
            arity(name, &args, 1)?;
            s(
                serde_json::to_string(args[0].as_ref().unwrap_or(&Value::Null))
                    .map_err(|e| e.to_string())?,
            )
        }
        "upper" | "lower" | "title" => {
            arity(name, &args, 1)?;
            let t = text_arg(name, &args[0])?;
            s(match name {
                "upper" => t.to_uppercase(),
                "lower" => t.to_lowercase(),
                _ => title(&t),
            })
        }
        "join" => {
            arity(name, &args, 2)?;
            let sep = text_arg(name, &args[1])?;
            match &args[0] {
                Some(Value::Array(items)) => {
                    s(items.iter().map(go_print).collect::<Vec<_>>().join(&sep))
                }
                None | Some(Value::Null) => s(String::new()),
                Some(Value::String(one)) => s(one.clone()),
                Some(other) => Err(format!("join wants a list, got {}", go_print(other))),
            }
        }
        "split" => {
            arity(name, &args, 2)?;
            let text = text_arg(name, &args[0])?;
            let sep = text_arg(name, &args[1])?;
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Some(Value::Array(parts)))
        }
        "truncate" => {
            arity(name, &args, 2)?;
            let text = text_arg(name, &args[0])?;
            let n = int_arg(name, &args[1])?.max(0) as usize;
            s(text.chars().take(n).collect())
        }
        "pad" => {
            arity(name, &args, 3)?;
            let text = text_arg(name, &args[0])?;
            if text.is_empty() {
                return s(text);
            }
            let before = int_arg(name, &args[1])?.max(0) as usize;
            let after = int_arg(name, &args[2])?.max(0) as usize;
            if before.max(after) > MAX_WIDTH {
                return Err(format!("pad takes at most {MAX_WIDTH} spaces a side"));
            }
            s(format!("{}{text}{}", " ".repeat(before), " ".repeat(after)))
        }
        "len" => {
            arity(name, &args, 1)?;
            let n = match &args[0] {
                Some(Value::String(t)) => t.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                None | Some(Value::Null) => 0,
                Some(other) => return Err(format!("len of {}", go_print(other))),
            };
            Ok(Some(Value::from(n)))
        }
        "index" => {
            let (first, keys) = args.split_first().ok_or("index takes a value and keys")?;
            let mut v = first.clone();
            for key in keys {
                v = match (&v, key) {
                    (Some(Value::Array(items)), k) => {
                        let i = int_arg(name, k)?;
                        Some(
                            items
                                .get(usize::try_from(i).map_err(|_| "index out of range")?)
                                .ok_or_else(|| format!("index {i} out of range"))?
                                .clone(),
                        )
                    }
                    (Some(Value::Object(map)), k) => {
                        let k = text_arg(name, k)?;
                        let strings = map.values().all(Value::is_string);
                        map.get(&k).cloned().or(Some(if strings {
                            Value::String(String::new())
                        } else {
                            Value::Null
                        }))
                    }
                    (None | Some(Value::Null), _) => None,
                    (Some(other), _) => {
                        return Err(format!("can't index {}", go_print(other)));
                    }
                };
            }
            Ok(v)
        }
        "print" | "println" => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_string = |v: &Val| matches!(v, Some(Value::String(_)));
                if i > 0 && (name == "println" || !(is_string(a) || is_string(&args[i - 1]))) {
                    out.push(' ');
                }
                out.push_str(&print_value(a.as_ref(), false));
            }
            if name == "println" {
                out.push('\n');
            }
            s(out)
        }
        "printf" => {
            let (fmt, rest) = args.split_first().ok_or("printf takes a format")?;
            s(printf(&text_arg(name, fmt)?, rest))
        }
        "not" => {
            arity(name, &args, 1)?;
            Ok(Some(Value::Bool(!truthy(args[0].as_ref()))))
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!("{name} takes at least one argument"));
            }
            let want = name == "or";
            for a in &args {
                if truthy(a.as_ref()) == want {
                    return Ok(a.clone());
                }
            }
            Ok(args.last().cloned().flatten())
        }
        "eq" | "ne" => {
            let (first, others) = args.split_first().ok_or("eq takes two arguments")?;
            if others.is_empty() {
                return Err(format!("{name} takes two arguments"));
            }
            let equal = others.iter().any(|o| same(first, o));
            Ok(Some(Value::Bool(equal == (name == "eq"))))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2)?;
            let ord = compare(&args[0], &args[1])
                .ok_or_else(|| format!("{name}: incompatible types for comparison"))?;
            use std::cmp::Ordering::*;
            let result = match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            };
            Ok(Some(Value::Bool(result)))
        }
        other => Err(format!("unknown function `{other}`")),
    }
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (None, Some(Value::Null)) | (Some(Value::Null), None) => true,
        _ => a == b,
    }
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Docker's `title`: each word's first letter in capitals.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '\'';
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %t %f %x %X %%`, with
/// flags `-` and `0`, a width and a precision.
/// The largest width or precision `printf` takes, as Go's `fmt` (1e6).
const MAX_WIDTH: usize = 1_000_000;

fn printf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(if p.len() > 7 {
                usize::MAX
            } else {
                p.parse().unwrap_or(0)
            });
        }
        // As Go's fmt: a width or precision above a million is refused in the output, not
        // padded into gigabytes of spaces.
        let too_large =
            |digits: &str| digits.len() > 7 || digits.parse::<usize>().unwrap_or(0) > MAX_WIDTH;
        if too_large(&width) {
            out.push_str("%!(BADWIDTH)");
            width.clear();
        }
        if precision.is_some_and(|p| p > MAX_WIDTH) {
            out.push_str("%!(BADPREC)");
            precision = None;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let number = |a: &Val| a.as_ref().and_then(Value::as_f64);
        let text = match verb {
            'v' | 's' => {
                let t = print_value(arg.as_ref(), false);
                match precision {
                    Some(p) if verb == 's' => t.chars().take(p).collect(),
                    _ => t,
                }
            }
            'q' => serde_json::to_string(&print_value(arg.as_ref(), false)).unwrap_or_default(),
            't' => match arg {
                Some(Value::Bool(b)) => b.to_string(),
                _ => format!("%!t({})", print_value(arg.as_ref(), false)),
            },
            'd' => match number(arg) {
                Some(n) => format!("{}", n as i64),
                None => format!("%!d({})", print_value(arg.as_ref(), false)),
            },
            'f' | 'F' => match number(arg) {
                Some(n) => format!("{n:.*}", precision.unwrap_or(6)),
                None => format!("%!f({})", print_value(arg.as_ref(), false)),
            },
            'x' | 'X' => {
                let t = match arg {
                    Some(Value::String(s)) => hex::encode(s),
                    _ => match number(arg) {
                        Some(n) => format!("{:x}", n as i64),
                        None => format!("%!x({})", print_value(arg.as_ref(), false)),
                    },
                };
                if verb == 'X' { t.to_uppercase() } else { t }
            }
            other => format!("%!{other}({})", print_value(arg.as_ref(), false)),
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len >= width {
            out.push_str(&text);
        } else if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(width - len));
        } else {
            let fill = if zero && "dfFxX".contains(verb) {
                '0'
            } else {
                ' '
            };
            out.extend(std::iter::repeat_n(fill, width - len));
            out.push_str(&text);
        }
    }
    let extra: Vec<String> = next.map(|a| print_value(a.as_ref(), false)).collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    fn row() -> Value {
        json!({
            "ID": "3f57d9401f8d",
            "Names": "web",
            "Image": "busybox",
            "Labels": "tier=front,com.example.team=core",
            "Status": "Up 2 minutes",
            "Mounts": ["/data", "/logs"],
        })
    }

    fn inspect() -> Value {
        json!({
            "Id": "abc",
            "State": {"Status": "running", "Running": true, "ExitCode": 0, "Pid": 42},
            "Config": {"Cmd": ["sh", "-c", "sleep 1"], "Entrypoint": null, "Labels": {"k": "v", "a": "b"},
                       "Env": ["PATH=/bin", "HOME=/root"]},
            "Mounts": [{"Source": "/srv", "Destination": "/data"}, {"Source": "/tmp", "Destination": "/t"}],
        })
    }

    #[test]
    fn pad_refuses_a_million_spaces() {
        // Found by the `template` fuzz target: a pad of 2^63 spaces.
        let t = Template::parse("{{pad .ID 0 26666666666666}}").unwrap();
        let err = t.render(&row()).unwrap_err().to_string();
        assert!(err.contains("pad takes at most 1000000 spaces"), "{err}");
    }

    #[test]
    fn printf_refuses_a_width_past_a_million_as_go_does() {
        // Found by the `template` fuzz target: a width of 444444444444 padded until the
        // allocation failed.
        assert_eq!(
            render("{{printf \"%444444444444s|\" .Names}}", &row()),
            format!("%!(BADWIDTH){}|", row()["Names"].as_str().unwrap())
        );
        let out = render("{{printf \"%.99999999f\" 1.5}}", &row());
        assert!(out.starts_with("%!(BADPREC)1.5"), "{out}");
    }

    #[test]
    fn text_beyond_ascii_inside_an_action_is_no_panic() {
        // Found by the `template` fuzz target: `}}` was looked for at byte offsets inside
        // a two-byte character.
        let parsed = Template::parse("{{split .Names\u{0}\u{760}\u{742}} {{title .Names}}");
        assert!(parsed.is_err() || parsed.unwrap().render(&row()).is_err());
        assert_eq!(render("{{\"\u{e9}t\u{e9}\"}}", &row()), "\u{e9}t\u{e9}");
    }

    #[test]
    fn fields_nested_and_json() {
        let v = inspect();
        assert_eq!(render("{{.State.Status}}", &v), "running");
        assert_eq!(render("{{.Config.Cmd}}", &v), "[sh -c sleep 1]");
        assert_eq!(render("{{.Config.Entrypoint}}", &v), "[]");
        assert_eq!(render("{{json .Config.Entrypoint}}", &v), "null");
        assert_eq!(
            render("{{json .Config.Cmd}}", &v),
            r#"["sh","-c","sleep 1"]"#
        );
        assert_eq!(render("{{.Config.Labels}}", &v), "map[a:b k:v]");
        assert_eq!(render("{{.Config.Labels.nope}}", &v), "<no value>");
        assert_eq!(render("{{.State.Pid}} {{.State.Running}}", &v), "42 true");
        assert_eq!(render("{{json .State.Running}}", &v), "true");
        assert_eq!(render("{{ .Id }}", &v), "abc");
        assert_eq!(render("{{.state.status}}", &v), "running");
        let err = Template::parse("{{.State.Nope}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `.Nope`"), "{err}");
        assert!(err.to_string().contains(".ExitCode"), "{err}");
        assert!(Template::parse("{{.Id.X}}").unwrap().render(&v).is_err());
    }

    #[test]
    fn functions() {
        let v = row();
        let i = inspect();
        assert_eq!(render("{{upper .Names}}", &v), "WEB");
        assert_eq!(render("{{.Names | upper}}", &v), "WEB");
        assert_eq!(render("{{lower \"ABC\"}}", &v), "abc");
        assert_eq!(
            render("{{title \"hello big world\"}}", &v),
            "Hello Big World"
        );
        assert_eq!(render("{{join .Mounts \",\"}}", &v), "/data,/logs");
        assert_eq!(
            render("{{join .Config.Env \";\"}}", &i),
            "PATH=/bin;HOME=/root"
        );
        assert_eq!(render("{{index .Config.Labels \"k\"}}", &i), "v");
        assert_eq!(render("{{index .Config.Labels \"z\"}}", &i), "");
        assert_eq!(render("{{index .Config.Cmd 1}}", &i), "-c");
        assert_eq!(render("{{.Label \"tier\"}}", &v), "front");
        assert_eq!(render("{{.Label \"com.example.team\"}}", &v), "core");
        assert_eq!(render("{{.Label \"none\"}}", &v), "");
        assert_eq!(render("{{printf \"%s:%d\" .Names 5}}", &v), "web:5");
        assert_eq!(
            render("{{printf \"%-6s|%5s|%05d\" \"a\" \"b\" 42}}", &v),
            "a     |    b|00042"
        );
        assert_eq!(
            render("{{printf \"%q %v %.2f\" .Names .Mounts 1.5}}", &v),
            "\"web\" [/data /logs] 1.50"
        );
        assert_eq!(render("{{len .Mounts}} {{len .Names}}", &v), "2 3");
        assert_eq!(render("{{truncate .ID 4}}", &v), "3f57");
        assert_eq!(render("{{pad .Names 1 2}}|", &v), " web  |");
        assert_eq!(render("{{split \"a:b\" \":\"}}", &v), "[a b]");
        assert_eq!(render("{{index (split \"a:b\" \":\") 1}}", &v), "b");
        assert_eq!(render("{{println .Names}}", &v), "web\n");
        assert_eq!(render("{{print .Names 1 2}}", &v), "web1 2");
        assert_eq!(
            render("{{json .}}", &json!({"b": 1, "a": "<x>"})),
            r#"{"a":"<x>","b":1}"#
        );
        assert_eq!(
            render("{{eq .Names \"web\"}} {{ne 1 2}} {{lt 1 2}} {{ge 1 2}}", &v),
            "true true true false"
        );
        assert_eq!(
            render("{{and .Names .ID}} {{or \"\" .ID}} {{not .Names}}", &v),
            "3f57d9401f8d 3f57d9401f8d false"
        );
    }

    #[test]
    fn control_structures() {
        let v = row();
        let i = inspect();
        assert_eq!(render("{{if .Names}}yes{{else}}no{{end}}", &v), "yes");
        assert_eq!(
            render(
                "{{if eq .Names \"db\"}}db{{else if eq .Names \"web\"}}web{{else}}?{{end}}",
                &v
            ),
            "web"
        );
        assert_eq!(
            render("{{if .Config.Entrypoint}}e{{else}}none{{end}}", &i),
            "none"
        );
        assert_eq!(
            render("{{range .Mounts}}[{{.}}]{{end}}", &v),
            "[/data][/logs]"
        );
        assert_eq!(
            render("{{range $i, $m := .Mounts}}{{$i}}={{$m}} {{end}}", &v),
            "0=/data 1=/logs "
        );
        assert_eq!(
            render("{{range .Mounts}}{{.Source}}->{{.Destination}};{{end}}", &i),
            "/srv->/data;/tmp->/t;"
        );
        assert_eq!(
            render(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
                &i
            ),
            "a=b,k=v,"
        );
        assert_eq!(
            render(
                "{{range .Nothing}}x{{else}}empty{{end}}",
                &json!({"Nothing": []})
            ),
            "empty"
        );
        assert_eq!(render("{{range .Mounts}}{{$.Id}}{{end}}", &i), "abcabc");
        assert_eq!(render("{{with .State}}{{.Status}}{{end}}", &i), "running");
        assert_eq!(render("{{$n := .Names}}{{$n}}-{{$n}}", &v), "web-web");
        assert_eq!(render("a  {{- .Names -}}  b", &v), "awebb");
        assert_eq!(render("{{/* a comment */}}x", &v), "x");
        assert_eq!(render("{{\"}}\"}}", &v), "}}");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = Template::parse("{{.A").unwrap_err().to_string();
        assert!(e.contains("unclosed action"), "{e}");
        let e = Template::parse("{{range .A}}").unwrap_err().to_string();
        assert!(e.contains("without {{end}}"), "{e}");
        let e = Template::parse("{{frobnicate .A}}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown function `frobnicate`") && e.contains("upper"),
            "{e}"
        );
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{.A | }}").is_err());
        let t = Template::parse("{{.ID}} {{.Nope}}").unwrap();
        let e = t.check_fields(&["ID", "Names"]).unwrap_err().to_string();
        assert!(
            e.contains("unknown field `.Nope` (fields: .ID, .Names)"),
            "{e}"
        );
        assert!(
            Template::parse("{{range .Mounts}}{{.Anything}}{{end}} {{.Label \"x\"}}")
                .unwrap()
                .check_fields(&["Mounts", "Labels"])
                .is_ok()
        );
        assert!(
            Template::parse("{{.ID \"x\"}}")
                .unwrap()
                .render(&row())
                .is_err()
        );
    }

    #[test]
    fn tables_and_json() {
        let t = Template::parse("table {{.ID}}\\t{{.Names}}\\t{{upper .Image}}").unwrap();
        assert!(t.table);
        let rows = [row()];
        assert_eq!(
            t.render_all(&rows, &["ID", "Names", "Image"], &[("ID", "CONTAINER ID")])
                .unwrap(),
            "CONTAINER ID   NAMES     IMAGE\n3f57d9401f8d   web       BUSYBOX\n"
        );
        assert_eq!(
            Template::parse("table {{.Label \"com.example.team\"}}")
                .unwrap()
                .header(&["Labels"], &[]),
            "TEAM"
        );
        assert!(Template::parse("table").unwrap().is_default_table());
        assert!(
            Template::parse("{{.ID}} {{if .Size}}{{end}}")
                .unwrap()
                .uses_field("Size")
        );
        assert!(!Template::parse("{{.ID}}").unwrap().uses_field("Size"));
        assert!(Template::parse("json").unwrap().json);
        assert_eq!(render("json", &json!({"a": [1]})), r#"{"a":[1]}"#);
        assert_eq!(
            Template::parse("{{.ID}}\\t{{.Names}}")
                .unwrap()
                .render(&row())
                .unwrap(),
            "3f57d9401f8d\tweb"
        );
    }
}
