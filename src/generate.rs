//! Generation entry points: JSON Schema, any JSON object, regex, plain chat, typed.
use corral_index::{Guide, Index};
use std::time::{Duration, Instant};

use corral_sampler::{
    DecodeOutput, DecodeRequest, DecodeStats, Decoder, FinishReason, SamplingParams, TokenLogprobs,
};
use corral_schema::Whitespace;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::Compiled;
use crate::chat::Message;
use crate::error::{Error, Result};
use crate::model::Model;

/// What the output must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// Unconstrained text.
    Text,
    /// Any JSON object (Together / OpenAI `{"type": "json_object"}` without a schema).
    JsonObject,
    /// A JSON document valid under this JSON Schema.
    JsonSchema(Value),
    /// Text matching this regex as a whole (regex-syntax dialect).
    Regex(String),
}

/// Options of one generation.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Temperature, top-k/top-p/min-p, penalties, seed (OpenAI's defaults: temperature 1).
    pub sampling: SamplingParams,
    /// Most completion tokens (the output is cut off and flagged beyond it).
    pub max_tokens: usize,
    /// Stop strings (plain text only; JSON modes stop when the document is complete).
    pub stop: Vec<String>,
    /// Whitespace allowed between JSON tokens (default: bounded pretty-printing).
    pub whitespace: Whitespace,
    /// Feed tokens forced by the constraint in one batched forward instead of sampling
    /// them (see the README for the measurement behind the default).
    pub fast_forward: bool,
    /// Append the schema to the system message (a model that sees the schema writes better
    /// content; the constraint holds either way).
    pub schema_in_prompt: bool,
    /// Let the model write properties the schema does not list, where the schema allows
    /// them (JSON Schema's default). Off by default: objects then hold only the listed
    /// properties (the output still validates; small models otherwise ramble on with
    /// invented keys).
    pub additional_properties: bool,
    /// Let the model write an object's properties in any order (each at most once, the
    /// required ones present), as JSON Schema allows. Off by default: properties come in
    /// the schema's order, as OpenAI's structured outputs write them (and masks are
    /// cheaper: see [`corral_schema::Options::any_property_order`]).
    pub any_property_order: bool,
    /// Ignore unsupported schema keywords instead of failing (listed in
    /// [`Generation::ignored`]; the output may then violate them).
    pub lenient: bool,
    /// Compute the full token mask at every step instead of sampling first (same output;
    /// for measurements).
    pub mask_first: bool,
    /// Never end plain text with an end-of-sequence token (generate exactly `max_tokens`;
    /// for benchmarks). Constrained documents still end when complete.
    pub ignore_eos: bool,
    /// Record each completion token's log-probability and this many most likely
    /// alternatives ([`Generation::logprobs`]; computes the full mask at every constrained
    /// step).
    pub logprobs: Option<usize>,
}

impl Default for GenerateOptions {
    fn default() -> GenerateOptions {
        GenerateOptions {
            sampling: SamplingParams::default(),
            max_tokens: 512,
            stop: Vec::new(),
            whitespace: Whitespace::default(),
            fast_forward: false,
            schema_in_prompt: true,
            additional_properties: false,
            any_property_order: false,
            lenient: false,
            mask_first: false,
            ignore_eos: false,
            logprobs: None,
        }
    }
}

impl GenerateOptions {
    /// Greedy decoding (temperature 0), otherwise the defaults.
    pub fn greedy() -> GenerateOptions {
        GenerateOptions {
            sampling: SamplingParams::greedy(),
            ..GenerateOptions::default()
        }
    }
}

/// Token counts, as in OpenAI's `usage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// The result of a generation.
#[derive(Clone, Debug)]
pub struct Generation {
    /// The parsed document (JSON modes, when complete; `None` when cut off by `max_tokens`).
    pub value: Option<Value>,
    /// The raw text, exactly as generated (never repaired).
    pub text: String,
    /// `Stop` (complete) or `Length` (cut off: `text` is partial).
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
    /// Schema keywords that were not enforced (annotation-only formats; with `lenient`,
    /// unsupported keywords).
    pub ignored: Vec<String>,
    /// Whether the compiled constraint came from the cache.
    pub constraint_cached: bool,
    /// Per completion token, when [`GenerateOptions::logprobs`] asked for them.
    pub logprobs: Vec<TokenLogprobs>,
    /// Timing: prefill, time to first token, forward passes, sampling; forced tokens.
    pub stats: DecodeStats,
}

/// A generation ready to decode ([`Model::prepare`]): the prompt tokens, the sampling
/// parameters and the compiled constraint.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// What the decoder runs.
    pub request: DecodeRequest,
    /// Schema keywords that were not enforced.
    pub ignored: Vec<String>,
    /// Whether the compiled constraint came from the cache.
    pub constraint_cached: bool,
    /// Time spent compiling (or looking up) the constraint.
    pub compile_time: Duration,
}

impl Generation {
    /// The result of a decoder run under `constraint`: a complete JSON document is parsed
    /// into [`Generation::value`].
    pub fn from_output(
        output: DecodeOutput,
        constraint: &Constraint,
        ignored: Vec<String>,
        constraint_cached: bool,
    ) -> Result<Generation> {
        let complete = output.finish_reason == FinishReason::Stop;
        let value = match constraint {
            Constraint::JsonObject | Constraint::JsonSchema(_) if complete => {
                // The constraint admits only complete, valid documents; a parse failure here
                // would be an engine bug, reported rather than hidden.
                Some(serde_json::from_str(&output.text).map_err(Error::Deserialize)?)
            }
            _ => None,
        };
        Ok(Generation {
            value,
            text: output.text,
            finish_reason: output.finish_reason,
            usage: Usage {
                prompt_tokens: output.prompt_tokens,
                completion_tokens: output.completion_tokens,
                total_tokens: output.prompt_tokens + output.completion_tokens,
            },
            ignored,
            constraint_cached,
            logprobs: output.logprobs,
            stats: output.stats,
        })
    }

    /// The document, or [`Error::Truncated`] when `max_tokens` cut it off.
    pub fn json(&self) -> Result<&Value> {
        self.value.as_ref().ok_or_else(|| Error::Truncated {
            text: self.text.clone(),
            completion_tokens: self.usage.completion_tokens,
        })
    }

    /// Completion tokens per second after the first one.
    pub fn tokens_per_second(&self) -> Option<f64> {
        self.stats
            .decode_tokens_per_second(self.usage.completion_tokens)
    }
}

/// The instruction appended to the system message when the schema goes into the prompt.
fn schema_instruction(constraint: &Constraint) -> Option<String> {
    match constraint {
        Constraint::JsonSchema(schema) => Some(format!(
            "Answer in JSON that conforms to this JSON Schema:\n{}",
            serde_json::to_string(schema).unwrap_or_default()
        )),
        Constraint::JsonObject => Some("Answer with a JSON object.".to_string()),
        Constraint::Text | Constraint::Regex(_) => None,
    }
}

/// `messages` with `instruction` put before the first user message's text (for chat
/// templates that refuse a system message).
fn with_instruction_in_user(messages: &[Message], instruction: &str) -> Vec<Message> {
    let mut out = messages.to_vec();
    match out.iter_mut().find(|m| m.role == "user") {
        Some(user) => user.content = format!("{instruction}\n\n{}", user.content),
        None => out.insert(0, Message::user(instruction)),
    }
    out
}

impl Constraint {
    /// The messages the model sees when `schema_in_prompt` is on: the schema (or "answer
    /// with a JSON object") appended to the system message, which is added when missing.
    pub fn prompt_messages(&self, messages: &[Message]) -> Vec<Message> {
        match schema_instruction(self) {
            Some(instruction) => crate::chat::with_system_text(messages, &instruction),
            None => messages.to_vec(),
        }
    }

    /// Like [`Constraint::prompt_messages`], with the instruction at the start of the first
    /// user message instead of in a system message.
    pub fn prompt_messages_in_user(&self, messages: &[Message]) -> Vec<Message> {
        match schema_instruction(self) {
            Some(instruction) => with_instruction_in_user(messages, &instruction),
            None => messages.to_vec(),
        }
    }
}

impl Model {
    /// Compile a constraint (cached per model by its text and options). `None` for
    /// [`Constraint::Text`].
    fn compile(
        &self,
        constraint: &Constraint,
        options: &GenerateOptions,
    ) -> Result<Option<(Compiled, bool)>> {
        let schema_options = |max_any_depth: usize, additional: bool| corral_schema::Options {
            whitespace: options.whitespace.clone(),
            lenient: options.lenient,
            allow_additional_properties: additional,
            any_property_order: options.any_property_order,
            max_any_depth,
            ..corral_schema::Options::default()
        };
        let (key, schema, opts) = match constraint {
            Constraint::Text => return Ok(None),
            Constraint::Regex(regex) => {
                let key = format!("regex\0{regex}");
                let vocab = self.vocabulary();
                return self
                    .cache
                    .get_or_build(key, || {
                        Ok(Compiled {
                            index: Index::new(regex, vocab)?,
                            ignored: Vec::new(),
                        })
                    })
                    .map(Some);
            }
            Constraint::JsonObject => (
                "object".to_string(),
                serde_json::json!({"type": "object"}),
                // Any object: its members are all "additional".
                schema_options(corral_schema::Options::default().max_any_depth, true),
            ),
            Constraint::JsonSchema(schema) => (
                serde_json::to_string(schema).unwrap_or_default(),
                schema.clone(),
                schema_options(
                    corral_schema::Options::default().max_any_depth,
                    options.additional_properties,
                ),
            ),
        };
        let key = format!(
            "json\0{:?}\0{}\0{}\0{}\0{}\0{key}",
            opts.whitespace,
            opts.lenient,
            opts.max_any_depth,
            opts.allow_additional_properties,
            opts.any_property_order
        );
        let vocab = self.vocabulary();
        self.cache
            .get_or_build(key, || {
                let compiled = corral_schema::compile(&schema, &opts)?;
                Ok(Compiled {
                    index: Index::from_program(compiled.program, vocab)?,
                    ignored: compiled.ignored,
                })
            })
            .map(Some)
    }

    /// Compile the constraint (or fetch it from the cache) and render and tokenize the
    /// prompt: everything before the first forward pass. A bad schema, regex, sampling
    /// parameter or message list is an error here, before any token is generated.
    pub fn prepare(
        &self,
        messages: &[Message],
        constraint: &Constraint,
        options: &GenerateOptions,
    ) -> Result<Prepared> {
        options.sampling.validate()?;
        let compiling = Instant::now();
        let compiled = self.compile(constraint, options)?;
        let compile_time = compiling.elapsed();
        let prompt = if options.schema_in_prompt {
            match self.encode_chat(&constraint.prompt_messages(messages)) {
                Ok(prompt) => prompt,
                // Templates that refuse a system message (or a system message the caller did
                // not send): the instruction goes into the first user message.
                Err(Error::Template(_)) => {
                    self.encode_chat(&constraint.prompt_messages_in_user(messages))?
                }
                Err(e) => return Err(e),
            }
        } else {
            self.encode_chat(messages)?
        };
        let (guide, ignored, cached) = match compiled {
            Some((c, cached)) => (Some(Guide::new(c.index)), c.ignored, cached),
            None => (None, Vec::new(), false),
        };
        Ok(Prepared {
            request: DecodeRequest {
                prompt,
                params: options.sampling.clone(),
                max_tokens: options.max_tokens,
                stop: match constraint {
                    Constraint::Text => options.stop.clone(),
                    _ => Vec::new(),
                },
                guide,
                fast_forward: options.fast_forward,
                mask_first: options.mask_first,
                ignore_eos: options.ignore_eos,
                logprobs: options.logprobs,
            },
            ignored,
            constraint_cached: cached,
            compile_time,
        })
    }

    /// The tokenizer's canonical encoding for fast-forward (no special tokens; an encoding
    /// failure forces nothing).
    pub fn tokenize_fn(&self) -> impl Fn(&str) -> Vec<u32> + '_ {
        |text: &str| self.encode(text).unwrap_or_default()
    }

    /// Generate under `constraint`; `on_text` receives the text as it is produced (cut at
    /// UTF-8 boundaries). The constraint is compiled (or fetched from the cache) before
    /// any token is generated: a bad schema is an error, never a silent fallback.
    pub fn generate_with(
        &self,
        messages: &[Message],
        constraint: &Constraint,
        options: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let prepared = self.prepare(messages, constraint, options)?;
        let tokenize = self.tokenize_fn();
        let decoder = Decoder::new(self.backend(), self.vocabulary()).with_tokenizer(&tokenize);
        let output = decoder.run(prepared.request, on_text)?;
        Generation::from_output(
            output,
            constraint,
            prepared.ignored,
            prepared.constraint_cached,
        )
    }

    /// JSON valid under `schema`.
    pub fn generate_json(
        &self,
        messages: &[Message],
        schema: &Value,
        options: &GenerateOptions,
    ) -> Result<Generation> {
        self.generate_with(
            messages,
            &Constraint::JsonSchema(schema.clone()),
            options,
            &mut |_| {},
        )
    }

    /// Any JSON object (JSON mode without a schema).
    pub fn generate_json_object(
        &self,
        messages: &[Message],
        options: &GenerateOptions,
    ) -> Result<Generation> {
        self.generate_with(messages, &Constraint::JsonObject, options, &mut |_| {})
    }

    /// Text matching `regex` as a whole.
    pub fn generate_regex(
        &self,
        messages: &[Message],
        regex: &str,
        options: &GenerateOptions,
    ) -> Result<Generation> {
        self.generate_with(
            messages,
            &Constraint::Regex(regex.to_string()),
            options,
            &mut |_| {},
        )
    }

    /// Unconstrained chat.
    pub fn chat(&self, messages: &[Message], options: &GenerateOptions) -> Result<Generation> {
        self.generate_with(messages, &Constraint::Text, options, &mut |_| {})
    }

    /// A value of type `T`, constrained by the JSON Schema that schemars derives for it.
    pub fn generate<T: JsonSchema + DeserializeOwned>(
        &self,
        messages: &[Message],
        options: &GenerateOptions,
    ) -> Result<T> {
        self.generate_typed(messages, options)
            .map(|(value, _)| value)
    }

    /// [`Model::generate`], also returning the [`Generation`] (text, usage, timing).
    pub fn generate_typed<T: JsonSchema + DeserializeOwned>(
        &self,
        messages: &[Message],
        options: &GenerateOptions,
    ) -> Result<(T, Generation)> {
        let schema = serde_json::to_value(schemars::schema_for!(T)).map_err(Error::Deserialize)?;
        let generation = self.generate_json(messages, &schema, options)?;
        let value = T::deserialize(generation.json()?).map_err(Error::Deserialize)?;
        Ok((value, generation))
    }
}

/// JSON valid under `schema` from `model`: [`Model::generate_json`].
///
/// ```no_run
/// use corral::{generate_json, GenerateOptions, Message, Model};
/// use serde_json::json;
///
/// let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
/// let schema = json!({
///     "type": "object",
///     "properties": {"name": {"type": "string"}, "address": {"type": "string"}},
///     "required": ["name", "address"]
/// });
/// let messages = [Message::user("Create a user named Alice, who lives in 42, Wonderland Avenue.")];
/// let answer = generate_json(&model, &messages, &schema, &GenerateOptions::greedy())?;
/// println!("{}", answer.json()?);
/// # Ok::<(), corral::Error>(())
/// ```
pub fn generate_json(
    model: &Model,
    messages: &[Message],
    schema: &Value,
    options: &GenerateOptions,
) -> Result<Generation> {
    model.generate_json(messages, schema, options)
}

/// A value of type `T` from `model`: [`Model::generate`].
///
/// ```no_run
/// use corral::{generate, GenerateOptions, Message, Model};
/// use schemars::JsonSchema;
/// use serde::Deserialize;
///
/// #[derive(JsonSchema, Deserialize)]
/// struct User { name: String, address: String }
///
/// let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
/// let messages = [Message::user("Create a user named Alice, who lives in 42, Wonderland Avenue.")];
/// let user: User = generate(&model, &messages, &GenerateOptions::greedy())?;
/// # Ok::<(), corral::Error>(())
/// ```
pub fn generate<T: JsonSchema + DeserializeOwned>(
    model: &Model,
    messages: &[Message],
    options: &GenerateOptions,
) -> Result<T> {
    model.generate(messages, options)
}
