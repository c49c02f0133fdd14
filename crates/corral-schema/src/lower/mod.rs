//! Phase 5: a normalized branch's constraints into an expression ([`Rx`]), type by
//! type: scalars and `enum` here, strings, arrays and objects in their own files.
//! Subschemas are compiled where they are used, through [`Compiler::compile`].
mod array;
mod enumerated;
mod object;
mod spelling;
mod string;

use serde_json::Value;

use crate::compiler::{Compiler, Re};
use crate::error::SchemaError;
use crate::ir::{Constraints, Sub, TypeSet};
use crate::json::{INTEGER, LARGEST, LARGEST_INTEGER, NUMBER};
use crate::number;
use crate::pointer;
use crate::rx::Rx;

/// Deepest object/array nesting generated (deeper levels admit scalars only).
const MAX_NESTING: usize = 32;

impl<'a> Compiler<'a> {
    /// Compile any subschema (found at `ptr`).
    pub(crate) fn compile(&mut self, schema: &Sub<'a>, ptr: &str) -> Result<Re, SchemaError> {
        // A bare `$ref` compiles to the same expression wherever it is used with the same
        // references open: build it once, so that the automaton holds one copy (a
        // procedure) instead of one per use.
        let memo_key = match schema {
            Sub::Doc(value @ Value::Object(_)) => {
                let node = self.node(value, ptr)?;
                match node.reference.filter(|_| node.is_bare_ref()) {
                    Some(reference) => {
                        // What the body compiles to depends on how often each reference
                        // is open, not on the order they were opened in.
                        let mut open = self.open_refs.clone();
                        open.sort_unstable();
                        let key = (self.references.target(reference, ptr)?, open);
                        if let Some(re) = self.ref_memo.get(&key) {
                            return Ok(re.clone());
                        }
                        Some(key)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let branches = self.normalize(schema, ptr)?;
        let mut alternatives = Vec::new();
        for branch in branches {
            let depth = self.open_refs.len();
            self.open_refs.extend(branch.refs.iter().cloned());
            let re = self.compile_branch(&branch.constraints, ptr);
            self.open_refs.truncate(depth);
            if let Some(re) = re? {
                alternatives.push(re);
            }
        }
        let re = Rx::alt(alternatives);
        if let Some(key) = memo_key {
            self.ref_memo.insert(key, re.clone());
        }
        Ok(re)
    }

    /// The leaf for `text`, one shared node per distinct text in this compilation: the
    /// same string, number or name grammar under many properties is then built once.
    pub(crate) fn leaf(&mut self, text: &str) -> Rx {
        if let Some(rx) = self.leaves.get(text) {
            return rx.clone();
        }
        let rx = Rx::text(text);
        self.leaves.insert(text.to_string(), rx.clone());
        rx
    }

    /// One branch: the alternatives of its types.
    pub(crate) fn compile_branch(
        &mut self,
        c: &Constraints<'a>,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        if c.is_unconstrained() {
            // Unconstrained: any value, nested up to the configured depth.
            return Ok(Some(self.syntax.any_value(self.options.max_any_depth)));
        }
        let mut types = c.types.unwrap_or(TypeSet::ALL);
        if self.nesting > MAX_NESTING {
            // Deeper structure than any real document needs: only scalars from here.
            types = types.and(TypeSet::SCALARS);
        }
        for keyword in &c.unknown {
            // Unknown keywords are annotations under the spec: ignore, but report.
            self.ignored.push(format!(
                "{ptr}/{}: unknown keyword",
                pointer::escape_token(keyword)
            ));
        }
        if let Some(values) = &c.values {
            return self.compile_enum(c, values, types, ptr);
        }
        let mut alternatives = Vec::new();
        if types.contains(TypeSet::NULL) {
            alternatives.push(self.leaf("null"));
        }
        if types.contains(TypeSet::BOOLEAN) {
            alternatives.push(self.leaf("true|false"));
        }
        if types.contains(TypeSet::OBJECT) {
            self.nesting += 1;
            let re = self.compile_object(c, ptr);
            self.nesting -= 1;
            alternatives.extend(re?);
        }
        if types.contains(TypeSet::ARRAY) {
            self.nesting += 1;
            let re = self.compile_array(c, ptr);
            self.nesting -= 1;
            alternatives.extend(re?);
        }
        if types.contains(TypeSet::STRING) {
            alternatives.extend(self.compile_string(c, ptr)?);
        }
        if types.contains(TypeSet::NUMBER) {
            alternatives.extend(self.compile_number(c, false, ptr)?);
        } else if types.contains(TypeSet::INTEGER) {
            alternatives.extend(self.compile_number(c, true, ptr)?);
        }
        Ok(Rx::alt(alternatives))
    }

    /// Numbers (or integers) within the bounds, multiples of `multipleOf`.
    fn compile_number(
        &mut self,
        c: &Constraints<'a>,
        integer: bool,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let decimal = |key: &str, n: &serde_json::Number| {
            number::Decimal::parse(&n.to_string())
                .map_err(|e| SchemaError::invalid(ptr, format!("`{key}`: {e}")))
        };
        let mut bounds = number::Bounds::unbounded();
        if let Some(v) = &c.minimum {
            bounds.tighten_minimum(decimal("minimum", v)?, false);
        }
        if let Some(v) = &c.exclusive_minimum {
            bounds.tighten_minimum(decimal("exclusiveMinimum", v)?, true);
        }
        if let Some(v) = &c.maximum {
            bounds.tighten_maximum(decimal("maximum", v)?, false);
        }
        if let Some(v) = &c.exclusive_maximum {
            bounds.tighten_maximum(decimal("exclusiveMaximum", v)?, true);
        }
        let multiple_of = c
            .multiple_of
            .as_ref()
            .map(|m| decimal("multipleOf", m))
            .transpose()?;
        if bounds.is_unbounded() && multiple_of.is_none() {
            return Ok(Some(self.leaf(if integer { INTEGER } else { NUMBER })));
        }
        // Keep generated numbers within what parsers read as finite doubles.
        let largest = if integer { LARGEST_INTEGER } else { LARGEST };
        let parse = |text: &str| {
            number::Decimal::parse(text).map_err(|e| SchemaError::invalid(ptr, e.to_string()))
        };
        bounds.tighten_maximum(parse(largest)?, false);
        bounds.tighten_minimum(parse(&format!("-{largest}"))?, false);
        let result = if integer {
            number::integer_regex_exact(&bounds, multiple_of.as_ref())
        } else {
            number::number_regex_exact(&bounds, multiple_of.as_ref())
        };
        match result {
            Ok(re) => Ok(Some(self.leaf(&re))),
            Err(number::NumberError::EmptyRange(_)) => Ok(None),
            Err(e) => {
                let keyword = if c.multiple_of.is_some() {
                    "multipleOf"
                } else {
                    "minimum"
                };
                Err(SchemaError::unsupported(keyword, ptr, e.to_string()))
            }
        }
    }
}

/// Matches no string (e.g. the names allowed by `propertyNames: false`).
pub(crate) fn never() -> Rx {
    Rx::text("[^\\x{0}-\\x{10FFFF}]")
}

#[cfg(test)]
mod tests;
