//! Where a document leaves a schema's automaton: the byte offset and the text around it.
//!
//! `cargo run --release -p corral-schema --example reject_point -- <schema.json> <document file>`
use corral_automaton::LazyDfa;
use corral_schema::{compile, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(args.next().ok_or("schema path")?)?)?;
    let text = std::fs::read_to_string(args.next().ok_or("document path")?)?;
    let compiled = compile(&schema, &Options::default())?;
    let mut dfa = LazyDfa::new(compiled.program.clone(), 1 << 30);
    let mut state = dfa.start();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        match dfa.next(state, b)? {
            Some(next) => state = next,
            None => {
                let mut from = i.saturating_sub(120);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (i + 40).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                println!(
                    "rejected at byte {i}: …{}⟦{}",
                    text.get(from..i).unwrap_or(""),
                    text.get(i..to).unwrap_or("")
                );
                return Ok(());
            }
        }
    }
    println!("accepted: {}", dfa.is_accepting(state));
    Ok(())
}
