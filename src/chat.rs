//! Chat messages and chat templates: the model's own Jinja template rendered with
//! minijinja under Hugging Face semantics, or a built-in template for the common families.
use minijinja::{context, Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }
}

/// `messages` with `instruction` appended to the system message (one is added first when
/// there is none): how the schema instruction, or a server's tool descriptions, reach the
/// model.
pub fn with_system_text(messages: &[Message], instruction: &str) -> Vec<Message> {
    let mut out = messages.to_vec();
    match out.first_mut() {
        Some(first) if first.role == "system" => {
            if !first.content.is_empty() {
                first.content.push_str("\n\n");
            }
            first.content.push_str(instruction);
        }
        _ => out.insert(0, Message::system(instruction)),
    }
    out
}

/// Built-in templates for models that ship none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinTemplate {
    /// Mistral / Mixtral Instruct v0.1: `<s>[INST] {system}\n\n{user} [/INST] {assistant}</s>`.
    MistralInstruct,
    /// Llama 2 / CodeLlama chat: `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]`.
    Llama2Chat,
    /// Llama 3 Instruct: `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`.
    Llama3,
    /// ChatML (`<|im_start|>role\n…<|im_end|>\n`).
    ChatMl,
}

impl BuiltinTemplate {
    /// The Jinja source (written to render what the families' Hugging Face templates do).
    pub fn source(self) -> &'static str {
        match self {
            BuiltinTemplate::MistralInstruct => MISTRAL_INSTRUCT,
            BuiltinTemplate::Llama2Chat => LLAMA2_CHAT,
            BuiltinTemplate::Llama3 => LLAMA3,
            BuiltinTemplate::ChatMl => CHATML,
        }
    }

    /// The end-of-turn token the template writes after an assistant message.
    pub fn end_of_turn(self) -> &'static str {
        match self {
            BuiltinTemplate::MistralInstruct | BuiltinTemplate::Llama2Chat => "</s>",
            BuiltinTemplate::Llama3 => "<|eot_id|>",
            BuiltinTemplate::ChatMl => "<|im_end|>",
        }
    }
}

const MISTRAL_INSTRUCT: &str = "\
{%- if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% set loop_messages = messages[1:] %}\
{%- else %}{% set loop_messages = messages %}{% endif %}\
{{- bos_token }}\
{%- for message in loop_messages %}\
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}\
{%- if message['role'] == 'user' %}\
{%- if loop.first and system_message is defined %}{{ '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\
{%- else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}\
{%- elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}\
{%- else %}{{ raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}{% endif %}\
{%- endfor %}";

const LLAMA2_CHAT: &str = "\
{%- if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% set loop_messages = messages[1:] %}\
{%- else %}{% set loop_messages = messages %}{% endif %}\
{%- for message in loop_messages %}\
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}\
{%- if loop.index0 == 0 and system_message is defined %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}\
{%- else %}{% set content = message['content'] %}{% endif %}\
{%- if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}\
{%- elif message['role'] == 'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}\
{%- endfor %}";

const LLAMA3: &str = "\
{%- for message in messages %}\
{%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}\
{%- if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}\
{%- endfor %}\
{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const CHATML: &str = "\
{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}\
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// A compiled chat template plus the special-token strings it refers to.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

impl ChatTemplate {
    /// Compile a Hugging Face chat template (`tokenizer_config.json` `chat_template`, GGUF
    /// `tokenizer.chat_template`). Jinja is configured as transformers does it
    /// (`trim_blocks`, `lstrip_blocks`), with `raise_exception`, `strftime_now`, `tojson`
    /// and Python's string and dict methods.
    pub fn new(
        source: &str,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<ChatTemplate, Error> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_function("strftime_now", |format: String| -> String {
            strftime_now(&format)
        });
        // transformers' `tojson` is `json.dumps(x, ensure_ascii=False, indent=indent)`:
        // no HTML escaping (minijinja's own filter escapes `<`, `>`, `&`, `'`).
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::Template(template_error(&e)))?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// A built-in template.
    pub fn builtin(which: BuiltinTemplate, bos_token: &str, eos_token: &str) -> ChatTemplate {
        // The built-in sources are constants that compile (checked by the tests).
        ChatTemplate::new(which.source(), bos_token, eos_token)
            .unwrap_or_else(|e| panic!("built-in template {which:?}: {e}"))
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The BOS token string the template sees as `bos_token`.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The EOS token string the template sees as `eos_token`.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Render `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// answer begins.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, Error> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Template(template_error(&e)))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| Error::Template(template_error(&e)))
    }
}

/// `tojson(value, indent=None)` as transformers defines it: Python's separators (`", "`,
/// `": "`) without indent, `indent` spaces per level with it; keys in insertion order.
fn tojson(
    value: minijinja::Value,
    indent: Option<usize>,
    kwargs: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    let indent = match indent {
        Some(n) => Some(n),
        None => kwargs.get::<Option<usize>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = match indent {
        Some(n) => {
            let pad = " ".repeat(n);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&json, &mut ser)
                .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            String::from_utf8_lossy(&out).into_owned()
        }
        None => python_dumps(&json),
    };
    Ok(minijinja::Value::from_safe_string(text))
}

/// `json.dumps(value, ensure_ascii=False)`: separators `", "` and `": "`.
fn python_dumps(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(python_dumps).collect();
            format!("[{}]", parts.join(", "))
        }
        serde_json::Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let key = serde_json::Value::String(k.clone()).to_string();
                    format!("{key}: {}", python_dumps(v))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// The message of a template error with its cause (e.g. `raise_exception`'s text).
fn template_error(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `strftime` for the few formats chat templates use (`%d %b %Y`, `%Y-%m-%d`), in UTC.
fn strftime_now(format: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const FULL: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('b') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('B') => out.push_str(FULL[(m - 1) as usize]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_compile_and_render() {
        let msgs = [Message::system("S"), Message::user("U")];
        let llama2 = ChatTemplate::builtin(BuiltinTemplate::Llama2Chat, "<s>", "</s>");
        assert_eq!(
            llama2.render(&msgs, true).unwrap(),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]"
        );
        let multi = [
            Message::user("a"),
            Message::assistant("b"),
            Message::user("c"),
        ];
        assert_eq!(
            llama2.render(&multi, true).unwrap(),
            "<s>[INST] a [/INST] b </s><s>[INST] c [/INST]"
        );
        let chatml = ChatTemplate::builtin(BuiltinTemplate::ChatMl, "", "<|im_end|>");
        assert_eq!(
            chatml.render(&msgs, true).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let mistral = ChatTemplate::builtin(BuiltinTemplate::MistralInstruct, "<s>", "</s>");
        let err = mistral
            .render(&[Message::assistant("x")], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must alternate"), "{err}");
    }

    #[test]
    fn tojson_as_transformers() {
        let t = ChatTemplate::new(
            "{{ {'b': [1, '<b>'], 'a': none} | tojson }}|{{ [1] | tojson(indent=2) }}|{{ messages[0] | tojson }}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&[Message::user("hi")], false).unwrap(),
            "{\"b\": [1, \"<b>\"], \"a\": null}|[\n  1\n]|{\"role\": \"user\", \"content\": \"hi\"}"
        );
    }

    #[test]
    fn python_methods_and_strftime() {
        let t = ChatTemplate::new(
            "{{ messages[0].content.strip().upper() }}|{{ 'a,b'.split(',') | length }}|{{ strftime_now('%Y') | length }}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&[Message::user("  hi ")], false).unwrap(),
            "HI|2|4"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
