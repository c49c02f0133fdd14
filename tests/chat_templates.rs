//! Chat templates: the models' own Hugging Face templates rendered with minijinja give the
//! reference strings and token ids (rendered by transformers / mistral-common), and the
//! built-in fallbacks render what those templates render.
mod common;

use corral::{BuiltinTemplate, ChatTemplate, Message};
use serde_json::Value;
use tokenizers::Tokenizer;

fn json(rel: &str) -> Value {
    let text = std::fs::read_to_string(common::data(rel)).expect("fixture");
    serde_json::from_str(&text).expect("fixture parses")
}

fn hf_template(family: &str) -> ChatTemplate {
    let config = json(&format!("tokenizers/{family}/tokenizer_config.json"));
    let token = |k: &str| config[k].as_str().unwrap_or_default().to_string();
    ChatTemplate::new(
        config["chat_template"].as_str().expect("chat_template"),
        token("bos_token"),
        token("eos_token"),
    )
    .expect("template compiles")
}

fn messages(value: &Value) -> Vec<Message> {
    serde_json::from_value(value.clone()).expect("messages")
}

fn ids(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer.encode(text, false).unwrap().get_ids().to_vec()
}

#[test]
fn mistral_reference_conversations() {
    let reference = json("tokenizers/mistral-7b-v0.1/reference_encodings.json");
    let tokenizer =
        Tokenizer::from_file(common::data("tokenizers/mistral-7b-v0.1/tokenizer.json")).unwrap();
    let template = hf_template("mistral-7b-v0.1");
    let builtin = ChatTemplate::builtin(BuiltinTemplate::MistralInstruct, "<s>", "</s>");
    let cases = reference["chat"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let msgs = messages(&case["messages"]);
        let rendered = template.render(&msgs, true).unwrap();
        assert_eq!(rendered, case["rendered"].as_str().unwrap());
        assert_eq!(builtin.render(&msgs, true).unwrap(), rendered);
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(ids(&tokenizer, &rendered), expected);
    }
}

#[test]
fn smollm2_reference_prompt() {
    let reference = json("../../crates/corral-models/tests/fixtures/smollm2-135m/reference.json");
    let chat = &reference["prompts"][1];
    let tokenizer =
        Tokenizer::from_file(common::data("tokenizers/smollm2-135m/tokenizer.json")).unwrap();
    let template = hf_template("smollm2-135m");
    let rendered = template.render(&messages(&chat["messages"]), true).unwrap();
    assert_eq!(rendered, chat["text"].as_str().unwrap());
    let expected: Vec<u32> = serde_json::from_value(chat["prompt_ids"].clone()).unwrap();
    assert_eq!(ids(&tokenizer, &rendered), expected);
    // The built-in ChatML renders the same once the system message is explicit.
    let with_system = [
        Message::system("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        messages(&chat["messages"])[0].clone(),
    ];
    let builtin = ChatTemplate::builtin(BuiltinTemplate::ChatMl, "", "<|im_end|>");
    assert_eq!(builtin.render(&with_system, true).unwrap(), rendered);
}

#[test]
fn llama3_template_and_builtin() {
    let template = hf_template("llama-3");
    let msgs = [
        Message::system("Answer in JSON."),
        Message::user("  Name?  "),
        Message::assistant("{\"name\": \"Alice\"}"),
        Message::user("Age?"),
    ];
    let rendered = template.render(&msgs, true).unwrap();
    assert_eq!(
        rendered,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer in JSON.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nName?<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"Alice\"}<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nAge?<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    let builtin = ChatTemplate::builtin(BuiltinTemplate::Llama3, "<|begin_of_text|>", "<|eot_id|>");
    assert_eq!(builtin.render(&msgs, true).unwrap(), rendered);
    let tokenizer =
        Tokenizer::from_file(common::data("tokenizers/llama-3/tokenizer.json")).unwrap();
    let ids = ids(&tokenizer, &rendered);
    assert_eq!(ids[0], 128000);
    assert_eq!(ids.iter().filter(|&&t| t == 128009).count(), 4);
}

/// The chat template of Hugging Face's `meta-llama/Llama-2-7b-chat-hf` `tokenizer_config.json`
/// (no Llama-2 tokenizer is vendored here).
const LLAMA2_HF_TEMPLATE: &str = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

#[test]
fn llama2_builtin_renders_the_hf_template() {
    let hf = ChatTemplate::new(LLAMA2_HF_TEMPLATE, "<s>", "</s>").unwrap();
    let builtin = ChatTemplate::builtin(BuiltinTemplate::Llama2Chat, "<s>", "</s>");
    for msgs in [
        vec![Message::user(" Hi ")],
        vec![Message::system("Answer in JSON."), Message::user("Name?")],
        vec![
            Message::system("S"),
            Message::user("a"),
            Message::assistant(" b "),
            Message::user("c"),
        ],
    ] {
        assert_eq!(
            builtin.render(&msgs, true).unwrap(),
            hf.render(&msgs, true).unwrap()
        );
    }
    assert_eq!(
        hf.render(&[Message::system("S"), Message::user("U")], true)
            .unwrap(),
        "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]"
    );
}
