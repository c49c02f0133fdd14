//! The recursive schema → regex compiler.
//!
//! Each schema node is first *normalized* into a disjunction of plain schema objects
//! (`$ref`, `allOf`, `anyOf` and `oneOf` resolved and merged, siblings intersected into
//! every branch), then each branch is compiled type by type.
use std::collections::HashMap;
use std::sync::OnceLock;

use corral_automaton::LeafDfa;
use regex_automata::meta::Regex;
use serde_json::{Map, Value};

use crate::automaton::{self, LowerError, Matcher};
use crate::error::SchemaError;
use crate::format;
use crate::json::{
    canonical_string, escape, Syntax, INTEGER, LARGEST, LARGEST_INTEGER, NUMBER, STRING_CHAR,
};
use crate::merge::{self, all_of, json_equal, ANNOTATIONS};
use crate::number;
use crate::pattern::{self, Lengths};
use crate::pointer;
use crate::rx::{Rx, Slot};
use crate::{Compiled, Options};

/// An expression, or `None` when no value is possible.
type Re = Option<Rx>;

/// Keywords the compiler enforces (beyond the combinators handled by normalization).
const SUPPORTED: &[&str] = &[
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "propertyNames",
    "dependentRequired",
    "unevaluatedProperties",
    "items",
    "prefixItems",
    "unevaluatedItems",
    "minItems",
    "maxItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    NOT_STRINGS,
    NOT_PATTERNS,
];

/// Internal keyword produced by negating `enum`/`const`: strings whose value is none of
/// these.
const NOT_STRINGS: &str = "x-corral-not-strings";

/// Internal keyword produced by negating `pattern`: strings matching none of these
/// patterns.
const NOT_PATTERNS: &str = "x-corral-not-patterns";

/// Validation keywords we know and cannot (yet) enforce.
const UNSUPPORTED: &[&str] = &["$dynamicRef", "$recursiveRef", "$recursiveAnchor"];

/// Most branches one schema node may normalize into (anyOf × anyOf products).
const MAX_BRANCHES: usize = 256;
/// Most states of a DFA built for one string leaf ([`LeafDfa`]): products of a pattern
/// and long length bounds grow with the bound.
const MAX_LEAF_DFA_STATES: usize = 10_000;

/// Deepest object/array nesting generated (deeper levels admit scalars only).
const MAX_NESTING: usize = 32;

const ALL_TYPES: &[&str] = &["null", "boolean", "object", "array", "string", "number"];

/// A normalized schema object, with the `$ref`s expanded to produce it (their
/// expansion stays "open" while its subschemas are compiled, for recursion limits).
#[derive(Clone, Debug)]
struct Branch {
    map: Map<String, Value>,
    refs: Vec<String>,
    /// Built from a negation (`not`, the `else` side of `if`, overlapping `oneOf`): its
    /// properties must not count as evaluated for an enclosing `unevaluated*`.
    negated: bool,
}

pub(crate) struct Compiler<'a> {
    root: &'a Value,
    options: &'a Options,
    syntax: Syntax,
    ignored: Vec<String>,
    /// `$ref` targets currently being expanded, outermost first.
    open_refs: Vec<String>,
    /// `$id` / `$anchor` → JSON pointer fragment.
    ids: HashMap<String, String>,
    /// Compiled `pattern`s for property-name tests.
    pattern_cache: HashMap<String, Option<Regex>>,
    /// Objects/arrays entered on the current path.
    nesting: usize,
    /// Compiled bare `$ref`s by (target, references open around the use).
    ref_memo: HashMap<(String, Vec<String>), Re>,
    /// Leaves by text (see [`Compiler::leaf`]).
    leaves: HashMap<String, Rx>,
}

impl<'a> Compiler<'a> {
    pub fn new(root: &'a Value, options: &'a Options) -> Compiler<'a> {
        let mut ids = HashMap::new();
        collect_ids(root, "", "", &mut ids);
        Compiler {
            root,
            options,
            syntax: Syntax::new(&options.whitespace),
            ignored: Vec::new(),
            open_refs: Vec::new(),
            ids,
            pattern_cache: HashMap::new(),
            nesting: 0,
            ref_memo: HashMap::new(),
            leaves: HashMap::new(),
        }
    }

    pub fn compile_root(mut self) -> Result<Compiled, SchemaError> {
        let value = self
            .compile(self.root, "#")?
            .ok_or(SchemaError::Unsatisfiable)?;
        // Whitespace may surround the document: SentencePiece models often start their
        // answer with a space-prefixed token (`▁{`), and many end it with a newline.
        let rx = Rx::seq([self.syntax.ws.clone(), value, self.syntax.ws.clone()]);
        let program = automaton::build_program(&rx, self.options.max_states)
            .map_err(|e| self.lower_error(e, "#"))?;
        self.ignored.sort();
        self.ignored.dedup();
        Ok(Compiled {
            rx,
            program: std::sync::Arc::new(program),
            ignored: self.ignored,
        })
    }

    fn lower_error(&self, e: LowerError, ptr: &str) -> SchemaError {
        match e {
            LowerError::TooLarge => SchemaError::TooLarge {
                limit: self.options.max_states,
                pointer: ptr.into(),
            },
            LowerError::Leaf(reason) => {
                SchemaError::invalid(ptr, format!("internal regex: {reason}"))
            }
        }
    }

    /// A whole-string matcher for `rx` (the compiler's own membership checks).
    fn matcher(&self, rx: &Rx, ptr: &str) -> Result<Matcher, SchemaError> {
        Matcher::new(rx, self.options.max_states).map_err(|e| self.lower_error(e, ptr))
    }

    /// Compile any schema value (object or boolean).
    fn compile(&mut self, schema: &Value, ptr: &str) -> Result<Re, SchemaError> {
        // A bare `$ref` compiles to the same expression wherever it is used with the same
        // references open: build it once, so that the automaton holds one copy (a
        // procedure) instead of one per use.
        let memo_key = match Self::bare_ref(schema) {
            Some(reference) => {
                let key = (self.ref_target(reference, ptr)?, self.open_refs.clone());
                if let Some(re) = self.ref_memo.get(&key) {
                    return Ok(re.clone());
                }
                Some(key)
            }
            None => None,
        };
        let re = self.compile_uncached(schema, ptr)?;
        if let Some(key) = memo_key {
            self.ref_memo.insert(key, re.clone());
        }
        Ok(re)
    }

    /// The leaf for `text`, one shared node per distinct text in this compilation: the
    /// same string, number or name grammar under many properties is then built once.
    fn leaf(&mut self, text: &str) -> Rx {
        if let Some(rx) = self.leaves.get(text) {
            return rx.clone();
        }
        let rx = Rx::text(text);
        self.leaves.insert(text.to_string(), rx.clone());
        rx
    }

    /// The strings (quoted) whose content matches `parts`.
    /// One regex alone is a text leaf. Otherwise the first regex (the pattern, usually)
    /// stays an NFA and everything else becomes one DFA — the other regexes determinized,
    /// the lengths as a counter of JSON string characters, the excluded names as a small
    /// DFA — and the leaf is their product ([`Rx::restricted`]): what a regex cannot say
    /// (`pattern` with lengths it cannot be folded with, `pattern` with `format`, names
    /// other than some). `Ok(None)` when no string is left.
    fn string_intersection(
        &mut self,
        parts: &StringParts,
        keyword: &str,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let Some((first, rest)) = parts.bodies.split_first() else {
            return Ok(None);
        };
        if rest.is_empty()
            && parts.lengths == Lengths::ANY
            && parts.excluded.is_empty()
            && parts.avoided.is_empty()
        {
            return Ok(Some(self.leaf(&format!("\"{first}\""))));
        }
        let too_large = |e: corral_automaton::BuildError| {
            SchemaError::unsupported(
                keyword,
                ptr,
                format!("the intersection of its string constraints is too large ({e})"),
            )
        };
        let mut side: Vec<LeafDfa> = Vec::new();
        for body in rest {
            side.push(LeafDfa::from_regex(body, MAX_LEAF_DFA_STATES).map_err(too_large)?);
        }
        if parts.lengths != Lengths::ANY {
            let counted = string_char_dfa()
                .map_err(too_large)?
                .counted(parts.lengths.min, parts.lengths.max, MAX_LEAF_DFA_STATES)
                .map_err(too_large)?;
            side.push(counted);
        }
        if !parts.excluded.is_empty() {
            // Written without escapes, which could spell an excluded string another way.
            side.push(plain_strings_except(&parts.excluded).map_err(too_large)?);
        }
        if !parts.avoided.is_empty() {
            // A negation that is too large to build contributes no strings.
            match strings_avoiding(&parts.avoided) {
                Some(dfa) => side.push(dfa),
                None => return Ok(None),
            }
        }
        let mut dfas = side.into_iter();
        let Some(mut product) = dfas.next() else {
            return Ok(Some(self.leaf(&format!("\"{first}\""))));
        };
        for dfa in dfas {
            product = product
                .intersect(&dfa, MAX_LEAF_DFA_STATES)
                .map_err(too_large)?;
        }
        if product.is_empty() {
            return Ok(None);
        }
        Ok(Some(Rx::seq([
            Rx::literal("\""),
            Rx::restricted(first, product),
            Rx::literal("\""),
        ])))
    }

    /// The reference of a schema that is only a `$ref` (and annotations).
    fn bare_ref(schema: &Value) -> Option<&str> {
        let map = schema.as_object()?;
        let reference = map.get("$ref")?.as_str()?;
        map.keys()
            .all(|k| k == "$ref" || ANNOTATIONS.contains(&k.as_str()))
            .then_some(reference)
    }

    fn compile_uncached(&mut self, schema: &Value, ptr: &str) -> Result<Re, SchemaError> {
        let branches = self.normalize(schema, ptr)?;
        let mut alternatives = Vec::new();
        for branch in branches {
            let depth = self.open_refs.len();
            self.open_refs.extend(branch.refs.iter().cloned());
            let re = self.compile_branch(&branch.map, ptr);
            self.open_refs.truncate(depth);
            if let Some(re) = re? {
                alternatives.push(re);
            }
        }
        Ok(Rx::alt(alternatives))
    }

    fn unsupported(&mut self, keyword: &str, ptr: &str, reason: &str) -> Result<(), SchemaError> {
        if self.options.lenient {
            self.ignored.push(format!("{ptr}/{keyword}: {reason}"));
            Ok(())
        } else {
            Err(SchemaError::unsupported(keyword, ptr, reason))
        }
    }

    // ----- normalization -------------------------------------------------------------

    /// Resolve `$ref`, `allOf`, `anyOf`, `oneOf` into a disjunction of plain objects.
    fn normalize(&mut self, schema: &Value, ptr: &str) -> Result<Vec<Branch>, SchemaError> {
        let map = match schema {
            Value::Bool(true) => {
                return Ok(vec![Branch {
                    map: Map::new(),
                    refs: vec![],
                    negated: false,
                }])
            }
            Value::Bool(false) => return Ok(vec![]),
            Value::Object(map) => map,
            _ => {
                return Err(SchemaError::invalid(
                    ptr,
                    "a schema must be an object or a boolean",
                ))
            }
        };
        let mut base = map.clone();
        merge::upgrade(&mut base, ptr)?;
        let reference = base.remove("$ref");
        let all = base.remove("allOf");
        let any = base.remove("anyOf");
        let one = base.remove("oneOf");
        let negated = base.remove("not");
        let (condition, then, otherwise) =
            (base.remove("if"), base.remove("then"), base.remove("else"));
        let dependent = base.remove("dependentSchemas");
        let base_has_unevaluated =
            base.contains_key("unevaluatedProperties") || base.contains_key("unevaluatedItems");
        for keyword in UNSUPPORTED {
            if base.contains_key(*keyword) {
                let relevant = match *keyword {
                    // `then`/`else` without `if`, and `if` alone, have no effect.
                    "if" => base.contains_key("then") || base.contains_key("else"),
                    "then" | "else" => false,
                    _ => true,
                };
                base.remove(*keyword);
                if relevant {
                    self.unsupported(keyword, ptr, "this keyword is not supported")?;
                }
            }
        }
        if base.get("uniqueItems") == Some(&Value::Bool(true)) {
            // Enforceable only when at most one item can exist.
            let max_items = base.get("maxItems").and_then(Value::as_u64);
            if max_items.is_none_or(|m| m > 1) {
                self.unsupported(
                    "uniqueItems",
                    ptr,
                    "uniqueness of array items is not regular",
                )?;
            }
        }
        base.remove("uniqueItems");
        let mut conjuncts: Vec<Vec<Branch>> = vec![vec![Branch {
            map: base,
            refs: vec![],
            negated: false,
        }]];
        if let Some(reference) = reference {
            let Some(reference) = reference.as_str() else {
                return Err(SchemaError::invalid(ptr, "`$ref` must be a string"));
            };
            let (target_ptr, target) = self.resolve_ref(reference, ptr)?;
            let expansions = self.open_refs.iter().filter(|r| **r == target_ptr).count();
            if expansions > self.options.max_recursion_depth {
                return Ok(vec![]);
            }
            self.open_refs.push(target_ptr.clone());
            let branches = self.normalize(&target, &target_ptr);
            self.open_refs.pop();
            let mut branches = branches?;
            for b in &mut branches {
                b.refs.insert(0, target_ptr.clone());
            }
            conjuncts.push(branches);
        }
        if let Some(all) = all {
            let items = all
                .as_array()
                .ok_or_else(|| SchemaError::invalid(ptr, "`allOf` must be an array"))?;
            for (i, sub) in items.iter().enumerate() {
                let p = format!("{ptr}/allOf/{i}");
                conjuncts.push(self.normalize(sub, &p)?);
            }
        }
        if let Some(any) = any {
            let items = any
                .as_array()
                .ok_or_else(|| SchemaError::invalid(ptr, "`anyOf` must be an array"))?;
            let mut branches = Vec::new();
            for (i, sub) in items.iter().enumerate() {
                branches.extend(self.normalize(sub, &format!("{ptr}/anyOf/{i}"))?);
            }
            conjuncts.push(branches);
        }
        if let Some(one) = one {
            let items = one
                .as_array()
                .ok_or_else(|| SchemaError::invalid(ptr, "`oneOf` must be an array"))?;
            let disjoint = self.pairwise_disjoint(items);
            let has_unevaluated =
                map.contains_key("unevaluatedProperties") || map.contains_key("unevaluatedItems");
            let mut branches = Vec::new();
            for (i, sub) in items.iter().enumerate() {
                let p = format!("{ptr}/oneOf/{i}");
                if disjoint {
                    branches.extend(self.normalize(sub, &p)?);
                    continue;
                }
                if has_unevaluated {
                    self.unsupported("oneOf", ptr, "overlapping branches next to `unevaluated*`")?;
                }
                // Overlapping branches: branch i and the negation of every other branch,
                // so an accepted instance matches exactly one (negations that cannot be
                // expressed shrink the branch: still sound).
                let mut parts = vec![sub.clone()];
                for (j, other) in items.iter().enumerate() {
                    if j != i {
                        parts.push(self.negate(other, &format!("{ptr}/oneOf/{j}"), 0)?);
                    }
                }
                branches.extend(mark_negated(
                    self.normalize(&serde_json::json!({ "allOf": parts }), &p)?,
                ));
                if branches.len() > MAX_BRANCHES {
                    return Err(SchemaError::unsupported(
                        "oneOf",
                        ptr,
                        format!(
                            "overlapping branches expand to more than {MAX_BRANCHES} alternatives"
                        ),
                    ));
                }
            }
            conjuncts.push(branches);
        }
        // if/then/else = (if ∧ then) ∨ (¬if ∧ else); `if` alone, or `then`/`else` without
        // `if`, have no effect.
        if let Some(condition) = condition.filter(|_| then.is_some() || otherwise.is_some()) {
            let p = format!("{ptr}/if");
            if base_has_unevaluated {
                // The negated condition's properties would count as evaluated.
                self.unsupported(
                    "if",
                    ptr,
                    "`if` next to `unevaluatedProperties`/`unevaluatedItems`",
                )?;
            }
            let not_condition = self.negate(&condition, &p, 0)?;
            let yes = serde_json::json!({"allOf": [condition, then.unwrap_or(Value::Bool(true))]});
            let no = serde_json::json!({"allOf": [not_condition, otherwise.unwrap_or(Value::Bool(true))]});
            conjuncts.push(mark_negated(
                self.normalize(&serde_json::json!({"anyOf": [yes, no]}), &p)?,
            ));
        }
        // dependentSchemas {a: S}: a non-object, an object without `a`, or `a` present and S.
        if let Some(dependent) = dependent {
            let Some(dependent) = dependent.as_object() else {
                return Err(SchemaError::invalid(
                    ptr,
                    "`dependentSchemas` must be an object",
                ));
            };
            for (name, schema) in dependent {
                let p = pointer::join(&format!("{ptr}/dependentSchemas"), name);
                let either = serde_json::json!({"anyOf": [
                    {"type": ["null", "boolean", "number", "string", "array"]},
                    {"type": "object", "properties": {name.as_str(): false}},
                    {"allOf": [{"required": [name]}, schema]},
                ]});
                conjuncts.push(self.normalize(&either, &p)?);
            }
        }
        if let Some(negated) = negated {
            if conjuncts.len() > 1
                || ["unevaluatedProperties", "unevaluatedItems"]
                    .iter()
                    .any(|k| conjuncts[0][0].map.contains_key(*k))
            {
                // Annotations from `not` never count as evaluated; merging its positive
                // form with `unevaluated*` (here or in a combined branch) would.
                let has_unevaluated = |b: &Branch| {
                    b.map.contains_key("unevaluatedProperties")
                        || b.map.contains_key("unevaluatedItems")
                };
                if conjuncts.iter().flatten().any(has_unevaluated) {
                    self.unsupported(
                        "not",
                        ptr,
                        "`not` next to `unevaluatedProperties`/`unevaluatedItems`",
                    )?;
                }
            }
            let positive = self.negate(&negated, &format!("{ptr}/not"), 0)?;
            conjuncts.push(mark_negated(
                self.normalize(&positive, &format!("{ptr}/not"))?,
            ));
        }
        if base_has_unevaluated && conjuncts.iter().skip(1).flatten().any(|b| b.negated) {
            self.unsupported(
                "unevaluatedProperties",
                ptr,
                "`unevaluated*` over a subschema built from a negation",
            )?;
        }
        // Distribute: the product of all conjuncts, each combination merged.
        let mut result = vec![Branch {
            map: Map::new(),
            refs: vec![],
            negated: false,
        }];
        for alternatives in conjuncts {
            let mut next = Vec::new();
            for left in &result {
                for right in &alternatives {
                    let merged = self.merge_maps(&left.map, &right.map, ptr)?;
                    if let Some(map) = merged {
                        let mut refs = left.refs.clone();
                        refs.extend(right.refs.iter().cloned());
                        next.push(Branch {
                            map,
                            refs,
                            negated: left.negated || right.negated,
                        });
                    }
                }
            }
            if next.len() > MAX_BRANCHES {
                return Err(SchemaError::unsupported(
                    "anyOf",
                    ptr,
                    format!("the combination expands to more than {MAX_BRANCHES} alternatives"),
                ));
            }
            result = next;
        }
        // `unevaluated*` sees the in-place applicators of its own schema object, which are
        // all merged now: from here on (for a parent that merges this branch) it acts like
        // `additionalProperties` / `items` of the merged object.
        for branch in &mut result {
            if let Some(unevaluated) = branch.map.remove("unevaluatedProperties") {
                let combined = match branch.map.get("additionalProperties") {
                    Some(existing) => all_of(existing, &unevaluated),
                    None => unevaluated,
                };
                branch.map.insert("additionalProperties".into(), combined);
            }
            if let Some(unevaluated) = branch.map.remove("unevaluatedItems") {
                let combined = match branch.map.get("items") {
                    Some(existing) => all_of(existing, &unevaluated),
                    None => unevaluated,
                };
                branch.map.insert("items".into(), combined);
            }
        }
        Ok(result)
    }

    fn merge_maps(
        &mut self,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        ptr: &str,
    ) -> Result<Option<Map<String, Value>>, SchemaError> {
        if a.is_empty() {
            return Ok(Some(b.clone()));
        }
        if b.is_empty() {
            return Ok(Some(a.clone()));
        }
        let cache = std::cell::RefCell::new(std::mem::take(&mut self.pattern_cache));
        let result = merge::merge(a, b, ptr, &|p, k| {
            pattern_matches(&mut cache.borrow_mut(), p, k)
        });
        self.pattern_cache = cache.into_inner();
        match result {
            Err(e) if self.options.lenient => {
                self.ignored.push(e.to_string());
                Ok(Some(a.clone()))
            }
            other => other,
        }
    }

    fn resolve_ref(&self, reference: &str, ptr: &str) -> Result<(String, Value), SchemaError> {
        let full = self.ref_target(reference, ptr)?;
        let target =
            pointer::resolve(self.root, &full[1..]).ok_or_else(|| SchemaError::UnresolvedRef {
                reference: reference.to_string(),
                pointer: ptr.to_string(),
            })?;
        Ok((full, target.clone()))
    }

    /// The JSON pointer (`#/…`) a reference resolves to.
    fn ref_target(&self, reference: &str, ptr: &str) -> Result<String, SchemaError> {
        let unresolved = || SchemaError::UnresolvedRef {
            reference: reference.to_string(),
            pointer: ptr.to_string(),
        };
        let (base, fragment) = match reference.split_once('#') {
            Some((base, fragment)) => (base, fragment),
            None => (reference, ""),
        };
        let mut root_fragment = String::new();
        if !base.is_empty() {
            let root_id = self.root.get("$id").and_then(Value::as_str).unwrap_or("");
            let absolute = resolve_uri(root_id, base);
            match self.ids.get(&absolute) {
                Some(p) => root_fragment = p.clone(),
                None if strip_fragment(root_id) == absolute => {}
                None => return Err(unresolved()),
            }
        }
        let full = if fragment.starts_with('/') || fragment.is_empty() {
            format!("{root_fragment}{fragment}")
        } else {
            // A plain-name fragment: `$anchor`.
            self.ids
                .get(&format!("#{fragment}"))
                .cloned()
                .ok_or_else(unresolved)?
        };
        pointer::resolve(self.root, &full).ok_or_else(unresolved)?;
        Ok(format!("#{full}"))
    }

    /// Whether the `oneOf` branches provably never both accept an instance.
    fn pairwise_disjoint(&self, branches: &[Value]) -> bool {
        let infos: Vec<Shape> = branches.iter().map(|b| self.shape(b, 0)).collect();
        for i in 0..infos.len() {
            for j in i + 1..infos.len() {
                if !infos[i].disjoint(&infos[j]) {
                    return false;
                }
            }
        }
        true
    }

    /// A coarse over-approximation of the instances a schema accepts.
    fn shape(&self, schema: &Value, depth: usize) -> Shape {
        let mut shape = Shape::any();
        let Value::Object(map) = schema else {
            return if schema == &Value::Bool(false) {
                Shape::none()
            } else {
                shape
            };
        };
        if depth > 8 {
            return shape;
        }
        if let Some(types) = map.get("type") {
            shape.types = TypeSet::from_value(types);
        }
        if let Some(values) = map.get("enum").and_then(Value::as_array) {
            shape.types = shape.types.and(TypeSet::of_values(values));
            shape.values = Some(values.clone());
        }
        if let Some(value) = map.get("const") {
            shape.types = shape
                .types
                .and(TypeSet::of_values(std::slice::from_ref(value)));
            shape.values = Some(vec![value.clone()]);
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(props)) = map.get("properties") {
            for key in &required {
                if let Some(sub) = props.get(*key) {
                    let s = self.shape(sub, depth + 1);
                    if let Some(values) = s.values {
                        shape.tags.push((key.to_string(), values));
                    } else if s.types != TypeSet::ALL {
                        shape.tag_types.push((key.to_string(), s.types));
                    }
                }
            }
        }
        if let Some(Value::String(r)) = map.get("$ref") {
            if let Ok((_, target)) = self.resolve_ref(r, "#") {
                shape = shape.and(self.shape(&target, depth + 1));
            }
        }
        if let Some(Value::Array(all)) = map.get("allOf") {
            for sub in all {
                shape = shape.and(self.shape(sub, depth + 1));
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(alts)) = map.get(key) {
                let types = alts
                    .iter()
                    .fold(TypeSet::NONE, |t, s| t.or(self.shape(s, depth + 1).types));
                shape.types = shape.types.and(types);
            }
        }
        shape
    }

    // ----- negation ------------------------------------------------------------------

    /// A schema accepting exactly (or, where marked, a subset of) the instances `schema`
    /// rejects: `not` is pushed inward keyword by keyword (¬(A∧B) = ¬A ∨ ¬B). A keyword
    /// whose negation is not expressible contributes nothing — a smaller, still sound set.
    fn negate(&mut self, schema: &Value, ptr: &str, depth: usize) -> Result<Value, SchemaError> {
        if depth > 8 {
            return Err(SchemaError::unsupported(
                "not",
                ptr,
                "negation nested too deeply",
            ));
        }
        let map = match schema {
            Value::Bool(b) => return Ok(Value::Bool(!b)),
            Value::Object(map) => map,
            _ => {
                return Err(SchemaError::invalid(
                    ptr,
                    "a schema must be an object or a boolean",
                ))
            }
        };
        let mut map = map.clone();
        merge::upgrade(&mut map, ptr)?;
        let mut alternatives = Vec::new();
        for (key, value) in &map {
            if ANNOTATIONS.contains(&key.as_str()) {
                continue;
            }
            if let Some(alt) = self.negate_keyword(key, value, &map, ptr, depth)? {
                alternatives.push(alt);
            }
        }
        Ok(match alternatives.len() {
            0 => Value::Bool(false),
            1 => alternatives.pop().unwrap_or(Value::Bool(false)),
            _ => serde_json::json!({ "anyOf": alternatives }),
        })
    }

    /// The instances violating one keyword (`None`: not expressible, contributes nothing).
    fn negate_keyword(
        &mut self,
        key: &str,
        value: &Value,
        map: &Map<String, Value>,
        ptr: &str,
        depth: usize,
    ) -> Result<Option<Value>, SchemaError> {
        use serde_json::json;
        let number = |bound: &str, v: &Value| json!({"type": "number", bound: v});
        Ok(Some(match key {
            "not" => value.clone(),
            "type" => {
                let excluded = TypeSet::from_value(value);
                let kept: Vec<&str> = ["null", "boolean", "string", "array", "object"]
                    .into_iter()
                    .filter(|t| excluded.and(TypeSet(TypeSet::bit(t))) == TypeSet::NONE)
                    .collect();
                // Numbers stay only when neither integers nor numbers are excluded (the
                // non-integers left by excluding "integer" alone are dropped: a subset).
                let mut kept: Vec<Value> = kept.into_iter().map(Value::from).collect();
                if excluded.and(TypeSet(4 | 8)) == TypeSet::NONE {
                    kept.push(Value::from("number"));
                }
                if kept.is_empty() {
                    return Ok(None);
                }
                json!({ "type": kept })
            }
            "enum" => {
                let values = value.as_array().cloned().unwrap_or_default();
                let present = TypeSet::of_values(&values);
                let mut alts = Vec::new();
                let mut kept: Vec<Value> = Vec::new();
                for t in ["null", "boolean", "string", "array", "object"] {
                    if present.and(TypeSet(TypeSet::bit(t))) == TypeSet::NONE {
                        kept.push(Value::from(t));
                    }
                }
                if present.and(TypeSet(4 | 8)) == TypeSet::NONE {
                    kept.push(Value::from("number"));
                }
                if !kept.is_empty() {
                    alts.push(json!({ "type": kept }));
                }
                let strings: Vec<Value> =
                    values.iter().filter(|v| v.is_string()).cloned().collect();
                if !strings.is_empty() {
                    alts.push(json!({ "type": "string", NOT_STRINGS: strings }));
                }
                let bools: Vec<bool> = values.iter().filter_map(Value::as_bool).collect();
                if bools.len() == 1 {
                    alts.push(json!({ "enum": [!bools[0]] }));
                }
                // Other numbers, arrays and objects than the listed ones: not generated.
                json!({ "anyOf": alts })
            }
            "required" => {
                let names: Vec<&str> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let alts: Vec<Value> = names
                    .iter()
                    .map(|n| json!({"type": "object", "properties": { *n: false }}))
                    .collect();
                if alts.is_empty() {
                    return Ok(None);
                }
                json!({ "anyOf": alts })
            }
            "properties" => {
                let mut alts = Vec::new();
                for (name, sub) in value.as_object().into_iter().flatten() {
                    let negated = self.negate(
                        sub,
                        &pointer::join(&format!("{ptr}/properties"), name),
                        depth + 1,
                    )?;
                    if negated != Value::Bool(false) {
                        alts.push(json!({"type": "object", "required": [name], "properties": { name.as_str(): negated }}));
                    }
                }
                if alts.is_empty() {
                    return Ok(None);
                }
                json!({ "anyOf": alts })
            }
            "anyOf" => {
                let mut parts = Vec::new();
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    parts.push(self.negate(sub, &format!("{ptr}/anyOf/{i}"), depth + 1)?);
                }
                json!({ "allOf": parts })
            }
            "allOf" => {
                let mut parts = Vec::new();
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    parts.push(self.negate(sub, &format!("{ptr}/allOf/{i}"), depth + 1)?);
                }
                json!({ "anyOf": parts })
            }
            // ¬oneOf = (no branch) ∨ (two or more branches): the first part only.
            "oneOf" => {
                let mut parts = Vec::new();
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    parts.push(self.negate(sub, &format!("{ptr}/oneOf/{i}"), depth + 1)?);
                }
                json!({ "allOf": parts })
            }
            "$ref" => {
                let Some(reference) = value.as_str() else {
                    return Err(SchemaError::invalid(ptr, "`$ref` must be a string"));
                };
                let (target_ptr, target) = self.resolve_ref(reference, ptr)?;
                self.negate(&target, &target_ptr, depth + 1)?
            }
            "items" => {
                let negated = self.negate(value, &format!("{ptr}/items"), depth + 1)?;
                if negated == Value::Bool(false) {
                    return Ok(None);
                }
                let skip = map
                    .get("prefixItems")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                if skip > 0 {
                    return Ok(None);
                }
                json!({"type": "array", "contains": negated})
            }
            "pattern" => match value.as_str() {
                Some(p) => json!({"type": "string", NOT_PATTERNS: [p]}),
                None => return Err(SchemaError::invalid(ptr, "`pattern` must be a string")),
            },
            "minimum" => number("exclusiveMaximum", value),
            "exclusiveMinimum" => number("maximum", value),
            "maximum" => number("exclusiveMinimum", value),
            "exclusiveMaximum" => number("minimum", value),
            "minLength" | "minItems" | "minProperties" => {
                let Some(n) = value.as_u64() else {
                    return Ok(None);
                };
                if n == 0 {
                    return Ok(None);
                }
                let (t, k) = match key {
                    "minLength" => ("string", "maxLength"),
                    "minItems" => ("array", "maxItems"),
                    _ => ("object", "maxProperties"),
                };
                json!({"type": t, k: n - 1})
            }
            "maxLength" | "maxItems" | "maxProperties" => {
                let Some(n) = value.as_u64() else {
                    return Ok(None);
                };
                let (t, k) = match key {
                    "maxLength" => ("string", "minLength"),
                    "maxItems" => ("array", "minItems"),
                    _ => ("object", "minProperties"),
                };
                json!({"type": t, k: n + 1})
            }
            // Not expressible as a regular language here (pattern complement, multiples,
            // uniqueness, …): the negation contributes no instances (a sound subset).
            _ => return Ok(None),
        }))
    }

    // ----- branches ----------------------------------------------------------------

    fn compile_branch(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Re, SchemaError> {
        if map.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) {
            // Unconstrained: any value, nested up to the configured depth.
            return Ok(Some(self.syntax.any_value(self.options.max_any_depth)));
        }
        if self.nesting > MAX_NESTING {
            // Deeper structure than any real document needs: only scalars from here.
            let mut scalars = map.clone();
            let types: Vec<Value> = ["null", "boolean", "number", "string"]
                .iter()
                .map(|t| Value::from(*t))
                .collect();
            let merged = merge::merge(
                &scalars,
                &Map::from_iter([("type".to_string(), Value::Array(types))]),
                ptr,
                &|_, _| true,
            )?;
            match merged {
                Some(m) if self.nesting <= MAX_NESTING + 1 => scalars = m,
                _ => return Ok(None),
            }
            self.nesting += 1;
            let re = self.compile_branch(&scalars, ptr);
            self.nesting -= 1;
            return re;
        }
        for key in map.keys() {
            if !SUPPORTED.contains(&key.as_str()) && !ANNOTATIONS.contains(&key.as_str()) {
                // Unknown keywords are annotations under the spec: ignore, but report.
                self.ignored.push(format!(
                    "{ptr}/{}: unknown keyword",
                    pointer::escape_token(key)
                ));
            }
        }
        let types: Vec<String> = match map.get("type") {
            None => ALL_TYPES.iter().map(|s| s.to_string()).collect(),
            Some(t) => {
                let set = match t {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|v| v.as_str().map(String::from))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            SchemaError::invalid(ptr, "`type` entries must be strings")
                        })?,
                    _ => {
                        return Err(SchemaError::invalid(
                            ptr,
                            "`type` must be a string or an array",
                        ))
                    }
                };
                for t in &set {
                    if !ALL_TYPES.contains(&t.as_str()) && t != "integer" {
                        return Err(SchemaError::invalid(ptr, format!("unknown type `{t}`")));
                    }
                }
                set
            }
        };
        if let Some(values) = map.get("enum") {
            let values = values
                .as_array()
                .ok_or_else(|| SchemaError::invalid(ptr, "`enum` must be an array"))?;
            return self.compile_enum(map, values, ptr);
        }
        let has = |t: &str| types.iter().any(|x| x == t);
        let mut alternatives = Vec::new();
        for t in ALL_TYPES.iter().chain(["integer"].iter()) {
            if !has(t) {
                continue;
            }
            let re = match *t {
                "null" => Some(self.leaf("null")),
                "boolean" => Some(self.leaf("true|false")),
                "number" => self.compile_number(map, false, ptr)?,
                "integer" if has("number") => continue,
                "integer" => self.compile_number(map, true, ptr)?,
                "string" => self.compile_string(map, ptr)?,
                "array" => {
                    self.nesting += 1;
                    let re = self.compile_array(map, ptr);
                    self.nesting -= 1;
                    re?
                }
                "object" => {
                    self.nesting += 1;
                    let re = self.compile_object(map, ptr);
                    self.nesting -= 1;
                    re?
                }
                _ => None,
            };
            alternatives.extend(re);
        }
        Ok(Rx::alt(alternatives))
    }

    /// `enum`: the literals that also satisfy the sibling keywords.
    fn compile_enum(
        &mut self,
        map: &Map<String, Value>,
        values: &[Value],
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let mut rest = map.clone();
        rest.remove("enum");
        // `type` is tested on each value's JSON type; only other sibling keywords need an
        // automaton to test the values against.
        let other_keywords = rest
            .keys()
            .any(|k| k != "type" && !ANNOTATIONS.contains(&k.as_str()));
        let types = rest.get("type").map(TypeSet::from_value);
        let candidates: Vec<&Value> = values
            .iter()
            .filter(|v| types.is_none_or(|t| t.admits(v)))
            .collect();
        // Built only when some value is left to test.
        let checker = if other_keywords && !candidates.is_empty() {
            match self.compile_branch(&rest, ptr)? {
                None => return Ok(None),
                Some(re) => Some(self.matcher(&re, ptr)?),
            }
        } else {
            None
        };
        let mut alternatives = Vec::new();
        for value in candidates {
            if let Some(checker) = &checker {
                let text = serde_json::to_string(value).unwrap_or_default();
                if !checker.is_match(&text) {
                    continue;
                }
            }
            alternatives.push(self.syntax.literal(value));
        }
        Ok(Rx::alt(alternatives))
    }

    fn compile_number(
        &mut self,
        map: &Map<String, Value>,
        integer: bool,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let number_text = |key: &str| -> Result<Option<String>, SchemaError> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(_) => Err(SchemaError::invalid(
                    ptr,
                    format!("`{key}` must be a number"),
                )),
            }
        };
        let decimal = |key: &str| -> Result<Option<number::Decimal>, SchemaError> {
            number_text(key)?
                .map(|t| number::Decimal::parse(&t))
                .transpose()
                .map_err(|e| SchemaError::invalid(ptr, format!("`{key}`: {e}")))
        };
        let mut bounds = number::Bounds::unbounded();
        if let Some(v) = decimal("minimum")? {
            bounds.tighten_minimum(v, false);
        }
        if let Some(v) = decimal("exclusiveMinimum")? {
            bounds.tighten_minimum(v, true);
        }
        if let Some(v) = decimal("maximum")? {
            bounds.tighten_maximum(v, false);
        }
        if let Some(v) = decimal("exclusiveMaximum")? {
            bounds.tighten_maximum(v, true);
        }
        let multiple_of = decimal("multipleOf")?;
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
                let keyword = if map.contains_key("multipleOf") {
                    "multipleOf"
                } else {
                    "minimum"
                };
                Err(SchemaError::unsupported(keyword, ptr, e.to_string()))
            }
        }
    }

    fn lengths(
        map: &Map<String, Value>,
        min_key: &str,
        max_key: &str,
        ptr: &str,
    ) -> Result<Lengths, SchemaError> {
        let get = |key: &str| -> Result<Option<u32>, SchemaError> {
            match map.get(key) {
                None => Ok(None),
                Some(v) => match v.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 => {
                        Ok(Some(f.min(u32::MAX as f64) as u32))
                    }
                    _ => Err(SchemaError::invalid(
                        ptr,
                        format!("`{key}` must be a non-negative integer"),
                    )),
                },
            }
        };
        Ok(Lengths {
            min: get(min_key)?.unwrap_or(0),
            max: get(max_key)?,
        })
    }

    fn compile_string(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Re, SchemaError> {
        let lengths = Self::lengths(map, "minLength", "maxLength", ptr)?;
        if lengths.max.is_some_and(|m| m < lengths.min) {
            return Ok(None);
        }
        let format_regex = match map.get("format") {
            None => None,
            Some(Value::String(name)) => match format::format_regex(name) {
                None if format::ASSERTED_ELSEWHERE.contains(&name.as_str()) => {
                    self.unsupported(
                        "format",
                        ptr,
                        &format!(
                            "`{name}` is checked by common validators and cannot be \
                             enforced exactly"
                        ),
                    )?;
                    None
                }
                None => {
                    self.ignored
                        .push(format!("{ptr}/format: `{name}` is not enforced"));
                    None
                }
                Some(Ok(re)) => Some(re),
                Some(Err(e)) => return Err(SchemaError::unsupported("format", ptr, e.to_string())),
            },
            Some(_) => return Err(SchemaError::invalid(ptr, "`format` must be a string")),
        };
        // From negations: string values and patterns the strings must avoid.
        let strings_of = |key: &str| -> Vec<String> {
            map.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        let excluded = strings_of(NOT_STRINGS);
        let mut avoided = Vec::new();
        for p in strings_of(NOT_PATTERNS) {
            match pattern::pattern_body(&p, Lengths::ANY, ptr) {
                Ok(Some(body)) => avoided.push(body),
                Ok(None) => {}
                // A negated pattern that does not translate: no such strings are
                // generated (a sound subset).
                Err(_) => return Ok(None),
            }
        }
        let keyword = if excluded.is_empty() && avoided.is_empty() {
            "pattern"
        } else {
            "not"
        };
        match self.string_bodies(map, format_regex, lengths, ptr)? {
            Some(parts) => {
                let parts = StringParts {
                    excluded,
                    avoided,
                    ..parts
                };
                self.string_intersection(&parts, keyword, ptr)
            }
            None => Ok(None),
        }
    }

    /// The string-content regexes a string must match all of (`pattern`, `format`) and
    /// the lengths they could not take in, or `None` when no string can match.
    fn string_bodies(
        &mut self,
        map: &Map<String, Value>,
        format_regex: Option<String>,
        lengths: Lengths,
        ptr: &str,
    ) -> Result<Option<StringParts>, SchemaError> {
        let pattern = match map.get("pattern") {
            None => None,
            Some(Value::String(p)) => Some(p),
            Some(_) => return Err(SchemaError::invalid(ptr, "`pattern` must be a string")),
        };
        let pattern_ptr = format!("{ptr}/pattern");
        Ok(match (pattern, &format_regex) {
            (Some(p), None) => match pattern::pattern_body(p, lengths, &pattern_ptr) {
                Ok(body) => body.map(StringParts::matching),
                // Lengths the pattern's text cannot take in: an automaton counts them.
                // (A pattern that does not translate fails again here, without lengths.)
                Err(_) if lengths != Lengths::ANY => {
                    pattern::pattern_body(p, Lengths::ANY, &pattern_ptr)?.map(|body| StringParts {
                        lengths,
                        ..StringParts::matching(body)
                    })
                }
                Err(e) => return Err(e),
            },
            (Some(p), Some(re)) => {
                let body = pattern::pattern_body(p, Lengths::ANY, &pattern_ptr)?;
                let format = pattern::anchored_body(re, lengths, "format", ptr)?;
                body.zip(format).map(|(body, format)| StringParts {
                    bodies: vec![body, format],
                    ..StringParts::default()
                })
            }
            (None, Some(re)) => {
                pattern::anchored_body(re, lengths, "format", ptr)?.map(StringParts::matching)
            }
            (None, None) => Some(StringParts::matching(pattern::length_body(lengths))),
        })
    }

    fn compile_array(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Re, SchemaError> {
        let lengths = Self::lengths(map, "minItems", "maxItems", ptr)?;
        let (min, max) = (lengths.min, lengths.max);
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        let mut prefix = Vec::new();
        if let Some(items) = map.get("prefixItems") {
            let items = items
                .as_array()
                .ok_or_else(|| SchemaError::invalid(ptr, "`prefixItems` must be an array"))?;
            for (i, item) in items.iter().enumerate() {
                prefix.push(self.compile(item, &format!("{ptr}/prefixItems/{i}"))?);
            }
        }
        let items_schema = map.get("items").or_else(|| map.get("unevaluatedItems"));
        let items = match items_schema {
            Some(schema) => self.compile(schema, &format!("{ptr}/items"))?,
            None => Some(self.syntax.any_value(self.options.max_any_depth)),
        };
        let comma = self.syntax.comma();
        let min_contains = match map.get("minContains") {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| SchemaError::invalid(ptr, "`minContains` must be an integer"))?,
            None => 1,
        };
        if map.contains_key("contains") && map.contains_key("maxContains") {
            self.unsupported(
                "maxContains",
                ptr,
                "an upper bound on matching items is not supported",
            )?;
        }
        if let Some(contains) = map.get("contains").filter(|_| min_contains > 0) {
            if !prefix.is_empty()
                || map.contains_key("maxContains")
                || min > min_contains as u32
                || max.is_some()
            {
                self.unsupported(
                    "contains",
                    ptr,
                    "`contains` is supported without prefixItems, maxContains, and item-count bounds",
                )?;
                return Ok(self.finish_array(&prefix, &items, min, max));
            }
            let base = items_schema.cloned().unwrap_or(Value::Bool(true));
            let matching = self.compile(&all_of(&base, contains), &format!("{ptr}/contains"))?;
            let Some(matching) = matching else {
                return Ok(None);
            };
            let items = items.unwrap_or_else(never);
            // (item ,)* match ( , (item ,)* match ){m-1} (, item)*
            let before = Rx::repeat(Rx::seq([items.clone(), comma.clone()]), 0, None);
            let more = Rx::seq([comma.clone(), before.clone(), matching.clone()]);
            let count = min_contains.saturating_sub(1) as u32;
            let elements = Rx::seq([
                before,
                matching,
                Rx::repeat(more, count, Some(count)),
                Rx::repeat(Rx::seq([comma, items]), 0, None),
            ]);
            return Ok(Some(self.syntax.array(elements)));
        }
        Ok(self.finish_array(&prefix, &items, min, max))
    }

    /// `[ P0 , P1 , … , I , I … ]` with between `min` and `max` items.
    fn finish_array(&self, prefix: &[Re], items: &Re, min: u32, max: Option<u32>) -> Re {
        let comma = self.syntax.comma();
        // tail(j): what may follow once j items are written (j >= 1).
        // Items after the prefix, once the prefix is written.
        let mut tail: Re = {
            let written = prefix.len() as u32;
            let lo = min.saturating_sub(written);
            let hi = max.map(|m| m.saturating_sub(written));
            match items {
                Some(item) => Some(Rx::repeat(Rx::seq([comma.clone(), item.clone()]), lo, hi)),
                None if lo == 0 => Some(Rx::empty()),
                None => None,
            }
        };
        // Walk the prefix backwards: after writing j items, the (j+1)-th is prefix[j].
        for j in (1..prefix.len()).rev() {
            let written = j as u32;
            let next = match (&prefix[j], &tail) {
                (Some(p), Some(t)) if max.is_none_or(|m| m > written) => {
                    Some(Rx::seq([comma.clone(), p.clone(), t.clone()]))
                }
                _ => None,
            };
            tail = if written >= min {
                Some(next.map(Rx::opt).unwrap_or_else(Rx::empty))
            } else {
                next
            };
        }
        let first = if prefix.is_empty() {
            // No prefix: `items` items, one copy of the item however many there are.
            match items {
                Some(item) if max != Some(0) => Rx::list(item.clone(), comma, min.max(1), max),
                _ => None,
            }
        } else {
            match (&prefix[0], &tail) {
                (Some(p), Some(t)) if max != Some(0) => Some(Rx::seq([p.clone(), t.clone()])),
                _ => None,
            }
        };
        let elements = match (first, min) {
            (Some(f), 0) => f.opt(),
            (Some(f), _) => f,
            (None, 0) => Rx::empty(),
            (None, _) => return None,
        };
        Some(self.syntax.array(elements))
    }

    fn compile_object(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Re, SchemaError> {
        let counts = Self::lengths(map, "minProperties", "maxProperties", ptr)?;
        if counts.max.is_some_and(|m| m < counts.min) {
            return Ok(None);
        }
        let empty = Map::new();
        let properties = match map.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => return Err(SchemaError::invalid(ptr, "`properties` must be an object")),
        };
        let patterns = match map.get("patternProperties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(SchemaError::invalid(
                    ptr,
                    "`patternProperties` must be an object",
                ))
            }
        };
        let required: Vec<String> = match map.get("required") {
            None => vec![],
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| SchemaError::invalid(ptr, "`required` entries must be strings"))?,
            Some(_) => return Err(SchemaError::invalid(ptr, "`required` must be an array")),
        };
        let additional: Option<Value> = match map
            .get("additionalProperties")
            .or_else(|| map.get("unevaluatedProperties"))
        {
            Some(Value::Bool(false)) => None,
            Some(v) => Some(v.clone()),
            None if self.options.allow_additional_properties => Some(Value::Bool(true)),
            None => None,
        };
        let names_re = match map.get("propertyNames") {
            None => None,
            Some(schema) => {
                let mut names = match schema {
                    Value::Object(m) => m.clone(),
                    Value::Bool(true) => Map::new(),
                    _ => {
                        // `false`: no property at all.
                        Map::from_iter([("enum".to_string(), Value::Array(vec![]))])
                    }
                };
                names.insert("type".into(), Value::String("string".into()));
                let schema = Value::Object(names);
                match self.compile(&schema, &format!("{ptr}/propertyNames"))? {
                    Some(re) => Some(re),
                    None => Some(never()),
                }
            }
        };
        let names_checker = match &names_re {
            Some(re) => Some(self.matcher(re, &format!("{ptr}/propertyNames"))?),
            None => None,
        };

        // Listed properties in order, then required ones that are not listed.
        let mut listed: Vec<(String, Value)> = properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for name in &required {
            if !properties.contains_key(name) {
                let schema = match additional.clone() {
                    Some(a) => a,
                    None => Value::Bool(false),
                };
                listed.push((name.clone(), schema));
            }
        }
        // Pattern properties also apply to listed names they match.
        for (name, schema) in listed.iter_mut() {
            for (pattern, ps) in patterns {
                if self.pattern_matches(pattern, name) {
                    *schema = all_of(schema, ps);
                }
            }
            if patterns.keys().any(|p| self.pattern_matches(p, name))
                && !properties.contains_key(name)
            {
                // A required-but-unlisted name matched by a pattern is not "additional".
                let mut only_patterns = Value::Bool(true);
                for (pattern, ps) in patterns {
                    if self.pattern_matches(pattern, name) {
                        only_patterns = all_of(&only_patterns, ps);
                    }
                }
                *schema = only_patterns;
            }
        }
        let colon = self.syntax.colon();
        let mut members: Vec<Member> = Vec::new();
        for (name, schema) in &listed {
            let is_required = required.contains(name);
            let key = canonical_string(name);
            let name_ok = names_checker.as_ref().is_none_or(|c| c.is_match(&key));
            let value = if name_ok {
                self.compile(schema, &pointer::join(&format!("{ptr}/properties"), name))?
            } else {
                None
            };
            match value {
                Some(v) => members.push(Member {
                    name: name.clone(),
                    regex: Rx::seq([Rx::text(escape(&key)), colon.clone(), v]),
                    required: is_required,
                }),
                None if is_required => return Ok(None),
                None => {}
            }
        }

        // Additional members, after the listed ones.
        // Every listed name, including those that can never be present (`false`), and the
        // triggers of `dependentRequired` (an extra member must never trigger a dependency).
        let mut listed_names: Vec<String> = listed.iter().map(|(name, _)| name.clone()).collect();
        if let Some(Value::Object(deps)) = map.get("dependentRequired") {
            listed_names.extend(
                deps.keys()
                    .filter(|k| !listed_names.contains(k))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        let mut extra_alternatives = Vec::new();
        if !patterns.is_empty() && names_re.is_none() {
            // Names that match no pattern take `additionalProperties`, when allowed.
            if let Some(additional) = &additional {
                // A pattern that does not translate: no such names (a sound subset); one
                // that no string matches leaves every name to `additionalProperties`.
                let bodies: Option<Vec<Option<String>>> = patterns
                    .keys()
                    .map(|p| pattern::pattern_body(p, Lengths::ANY, ptr).ok())
                    .collect();
                let bodies: Option<Vec<String>> = bodies.map(|b| b.into_iter().flatten().collect());
                let names = bodies.and_then(|b| names_outside_patterns(&listed_names, &b));
                if let Some(names) = names {
                    let value = self.compile(additional, &format!("{ptr}/additionalProperties"))?;
                    if let Some(v) = value {
                        let quote = || Rx::literal("\"");
                        let key = Rx::seq([quote(), Rx::dfa(names), quote()]);
                        extra_alternatives.push(Rx::seq([key, colon.clone(), v]));
                    }
                }
            }
        }
        if !patterns.is_empty() {
            for (pattern, schema) in patterns {
                if names_re.is_some() {
                    continue;
                }
                let matches_listed = listed_names
                    .iter()
                    .any(|name| self.pattern_matches(pattern, name));
                let mut value_schema = schema.clone();
                for (other, s) in patterns {
                    if other != pattern {
                        value_schema = all_of(&value_schema, s);
                    }
                }
                let Some(body) = pattern::pattern_body(
                    pattern,
                    Lengths::ANY,
                    &pointer::join(&format!("{ptr}/patternProperties"), pattern),
                )?
                else {
                    continue;
                };
                let value = self.compile(
                    &value_schema,
                    &pointer::join(&format!("{ptr}/patternProperties"), pattern),
                )?;
                let key = if matches_listed {
                    // Extra names match the pattern and are none of the listed names: the
                    // intersection of two automata. When it is too large, this pattern
                    // gets no extra names (a sound subset).
                    let parts = StringParts {
                        excluded: listed_names.clone(),
                        ..StringParts::matching(body)
                    };
                    match self.string_intersection(&parts, "patternProperties", ptr) {
                        Ok(Some(key)) => key,
                        Ok(None) | Err(_) => continue,
                    }
                } else {
                    Rx::text(format!("\"{body}\""))
                };
                if let Some(v) = value {
                    extra_alternatives.push(Rx::seq([key, colon.clone(), v]));
                }
            }
        } else if let Some(additional) = &additional {
            let key = match (&names_re, listed_names.is_empty()) {
                (None, _) => Some(self.leaf(&format!("\"{}\"", complement_body(&listed_names)))),
                (Some(re), true) => Some(re.clone()),
                // Names must avoid the listed ones *and* match propertyNames: not generated.
                (Some(_), false) => None,
            };
            if let Some(key) = key {
                if let Some(v) = self.compile(additional, &format!("{ptr}/additionalProperties"))? {
                    extra_alternatives.push(Rx::seq([key, colon.clone(), v]));
                }
            }
        }
        let extra = Rx::alt(extra_alternatives);

        // dependentRequired: split into "trigger absent" | "trigger and dependents present".
        let mut variants = vec![members];
        if let Some(Value::Object(deps)) = map.get("dependentRequired") {
            for (trigger, needed) in deps {
                let needed: Vec<String> = needed
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                let mut next = Vec::new();
                for members in variants {
                    let Some(t) = members.iter().position(|m| &m.name == trigger) else {
                        next.push(members);
                        continue;
                    };
                    let all_needed_listed =
                        needed.iter().all(|n| members.iter().any(|m| &m.name == n));
                    let trigger_required = members[t].required;
                    if !members[t].required {
                        let mut absent = members.clone();
                        absent.remove(t);
                        next.push(absent);
                    }
                    if all_needed_listed {
                        let mut present = members.clone();
                        for m in present.iter_mut() {
                            if &m.name == trigger || needed.contains(&m.name) {
                                m.required = true;
                            }
                        }
                        next.push(present);
                    } else if trigger_required {
                        // A needed property can only come from the extras: not generated.
                        return Err(SchemaError::unsupported(
                            "dependentRequired",
                            ptr,
                            "a dependent property is neither listed in `properties` nor required",
                        ));
                    }
                }
                variants = next;
                if variants.len() > 16 {
                    return Err(SchemaError::unsupported(
                        "dependentRequired",
                        ptr,
                        "too many optional dependencies to enumerate",
                    ));
                }
            }
        }
        let mut alternatives = Vec::new();
        for members in &variants {
            if let Some(re) = self.members_regex(members, extra.as_ref(), counts, ptr)? {
                alternatives.push(re);
            }
        }
        Ok(Rx::alt(alternatives))
    }

    /// The members of an object, in order: listed ones (required or optional), then
    /// `extra` repeated, with the member count within `counts`.
    fn members_regex(
        &mut self,
        members: &[Member],
        extra: Option<&Rx>,
        counts: Lengths,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let n = members.len() as u32;
        let n_required = members.iter().filter(|m| m.required).count() as u32;
        let all_required = n == n_required;
        let mut extra = extra.cloned();
        // Bounds on the number of extra members.
        let (mut extra_min, mut extra_max) = (0u32, None::<u32>);
        if all_required {
            if counts.max.is_some_and(|m| m < n) {
                return Ok(None);
            }
            extra_min = counts.min.saturating_sub(n);
            extra_max = counts.max.map(|m| m - n);
        } else {
            let max_ok = counts.max.is_none_or(|m| m >= n);
            if counts.max.is_some() && extra.is_some() {
                // Counting optional listed members against extras: drop the extras.
                extra = None;
            }
            if !max_ok || counts.min > n_required.max(1) {
                self.unsupported(
                    "minProperties",
                    ptr,
                    "minProperties/maxProperties with optional properties are only supported \
                     when they do not constrain the optional ones beyond 'at least one'",
                )?;
            }
        }
        if extra.is_none() && extra_min > 0 {
            return Ok(None);
        }
        // Listed members in order, each built once however many before it are optional,
        // then the extras.
        let mut slots: Vec<Slot> = members
            .iter()
            .map(|m| {
                if m.required {
                    Slot::required(m.regex.clone())
                } else {
                    Slot::optional(m.regex.clone())
                }
            })
            .collect();
        if let Some(e) = extra {
            slots.push(Slot {
                item: e,
                min: extra_min,
                max: extra_max,
            });
        }
        let allow_empty = counts.min == 0 && extra_min == 0;
        Ok(Rx::members(slots, self.syntax.comma(), allow_empty)
            .map(|body| self.syntax.object(body)))
    }

    fn pattern_matches(&mut self, pattern: &str, key: &str) -> bool {
        pattern_matches(&mut self.pattern_cache, pattern, key)
    }
}

/// Whether an ECMA `pattern` matches `key`. An untranslatable pattern is treated as
/// matching (the conservative choice: its schema is applied).
fn pattern_matches(cache: &mut HashMap<String, Option<Regex>>, pattern: &str, key: &str) -> bool {
    let re = cache.entry(pattern.to_string()).or_insert_with(|| {
        let body = pattern::pattern_body(pattern, Lengths::ANY, "#").ok()??;
        crate::json::matcher(&format!("\"(?:{body})\"")).ok()
    });
    match re {
        Some(re) => re.is_match(&canonical_string(key)),
        None => true,
    }
}

#[derive(Clone, Debug)]
struct Member {
    name: String,
    regex: Rx,
    required: bool,
}

/// What a string's content must match: all of `bodies` (regexes) and `lengths`; and, from
/// negations or listed property names, none of the values `excluded` nor any value
/// matching a body of `avoided` (pattern bodies).
#[derive(Default)]
struct StringParts {
    bodies: Vec<String>,
    lengths: Lengths,
    excluded: Vec<String>,
    avoided: Vec<String>,
}

impl StringParts {
    /// Strings matching `body`.
    fn matching(body: String) -> StringParts {
        StringParts {
            bodies: vec![body],
            ..StringParts::default()
        }
    }
}

/// String contents in the one spelling serde_json writes for the characters it needs
/// (plain characters, `\"`, `\\`, `\n`, `\r`, `\t`) whose value matches none of the
/// pattern `bodies`. A pattern body takes every spelling of a matching value, so its
/// complement within this one spelling holds exactly the values that do not match
/// (within all spellings it would hold other spellings of matching values). `None` when
/// a pattern's DFA would be too large.
fn strings_avoiding(bodies: &[String]) -> Option<LeafDfa> {
    static CANONICAL: OnceLock<Option<LeafDfa>> = OnceLock::new();
    let canonical = CANONICAL
        .get_or_init(|| {
            LeafDfa::from_regex(r#"(?:[^"\\\x00-\x1F]|\\["\\nrt])*"#, MAX_LEAF_DFA_STATES).ok()
        })
        .as_ref()?;
    avoiding(canonical.clone(), canonical, bodies)
}

/// `start` minus the strings of `within` that match one of the pattern `bodies` (each
/// determinized within `within` and complemented, so kept small); `None` when one is too
/// large.
fn avoiding(start: LeafDfa, within: &LeafDfa, bodies: &[String]) -> Option<LeafDfa> {
    /// Each pattern is determinized to be complemented: keep that cheap.
    const MAX_PATTERN_STATES: usize = 2_000;
    let mut out = start;
    for body in bodies {
        let matching = LeafDfa::from_regex_within(body, within, MAX_PATTERN_STATES).ok()?;
        out = out
            .intersect(&matching.complement(), MAX_LEAF_DFA_STATES)
            .ok()?;
    }
    Some(out)
}

/// One character of a JSON string's content (prefix-free: see [`LeafDfa::counted`]).
fn string_char_dfa() -> Result<LeafDfa, corral_automaton::BuildError> {
    LeafDfa::from_regex(STRING_CHAR, 1_000)
}

/// String contents written without escapes: plain characters only.
fn plain_strings() -> Option<&'static LeafDfa> {
    static PLAIN: OnceLock<Option<LeafDfa>> = OnceLock::new();
    PLAIN
        .get_or_init(|| LeafDfa::from_regex(r#"[^"\\\x00-\x1F]*"#, MAX_LEAF_DFA_STATES).ok())
        .as_ref()
}

/// The string contents written without escapes (plain characters only) other than
/// `names`: a DFA of a few states per name character. Without escapes, no other spelling
/// of an excluded name gets through.
fn plain_strings_except(names: &[String]) -> Result<LeafDfa, corral_automaton::BuildError> {
    let plain = plain_strings().ok_or(corral_automaton::BuildError::TooLarge {
        limit: MAX_LEAF_DFA_STATES,
    })?;
    if names.is_empty() {
        return Ok(plain.clone());
    }
    let names: Vec<String> = names.iter().map(|n| regex_syntax::escape(n)).collect();
    let names = LeafDfa::from_regex(&names.join("|"), MAX_LEAF_DFA_STATES)?;
    plain.intersect(&names.complement(), MAX_LEAF_DFA_STATES)
}

/// Plain-text names (see [`plain_strings_except`]) that are none of `listed` and match
/// none of `bodies` (pattern bodies): the names `additionalProperties` governs next to
/// `patternProperties`. `None` when a pattern's automaton is too large to complement
/// (then no such names are generated: a sound subset).
fn names_outside_patterns(listed: &[String], bodies: &[String]) -> Option<LeafDfa> {
    let names = avoiding(plain_strings_except(listed).ok()?, plain_strings()?, bodies)?;
    (!names.is_empty()).then_some(names)
}

/// A string body (between quotes) whose decoded value is none of `names`. Only unescaped
/// characters are generated (a subset), so the value is its own spelling.
fn complement_body(names: &[String]) -> String {
    let plain = r#"[^"\\\x00-\x1F]"#;
    if names.is_empty() {
        return format!("{STRING_CHAR}*");
    }
    // Trie of names.
    #[derive(Default)]
    struct Node {
        terminal: bool,
        children: std::collections::BTreeMap<char, Node>,
    }
    let mut root = Node::default();
    for name in names {
        let mut node = &mut root;
        for c in name.chars() {
            node = node.children.entry(c).or_default();
        }
        node.terminal = true;
    }
    fn walk(node: &Node, plain: &str) -> String {
        let mut alts = Vec::new();
        if !node.terminal {
            alts.push(String::new());
        }
        // A character not continuing any name, then anything.
        let excluded: String = node
            .children
            .keys()
            .map(|c| regex_syntax::escape(&c.to_string()))
            .collect();
        if excluded.is_empty() {
            alts.push(format!("{plain}+"));
        } else {
            alts.push(format!("[^\"\\\\\\x00-\\x1F{excluded}]{plain}*"));
        }
        for (c, child) in &node.children {
            alts.push(format!(
                "{}{}",
                regex_syntax::escape(&c.to_string()),
                walk(child, plain)
            ));
        }
        format!("(?:{})", alts.join("|"))
    }
    walk(&root, plain)
}

/// Matches no string (e.g. the names allowed by `propertyNames: false`).
fn never() -> Rx {
    Rx::text("[^\\x{0}-\\x{10FFFF}]")
}

fn mark_negated(mut branches: Vec<Branch>) -> Vec<Branch> {
    for b in &mut branches {
        b.negated = true;
    }
    branches
}

fn strip_fragment(uri: &str) -> &str {
    uri.split('#').next().unwrap_or(uri)
}

/// Resolve a URI reference against a base URI (RFC 3986, enough for `$id`/`$ref`:
/// absolute URIs, absolute paths and relative paths; no dot-segment removal).
fn resolve_uri(base: &str, reference: &str) -> String {
    let base = strip_fragment(base);
    let reference = strip_fragment(reference);
    if reference.contains("://") || reference.starts_with("urn:") || base.is_empty() {
        return reference.to_string();
    }
    if reference.is_empty() {
        return base.to_string();
    }
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .map(|i| base[i..].find('/').map_or(base.len(), |j| i + j));
    if let Some(rest) = reference.strip_prefix('/') {
        return match authority_end {
            Some(end) => format!("{}/{rest}", &base[..end]),
            None => reference.to_string(),
        };
    }
    match base.rfind('/') {
        Some(i) if authority_end.is_none_or(|end| i >= end) => {
            format!("{}/{reference}", &base[..i])
        }
        _ => match authority_end {
            Some(end) => format!("{}/{reference}", &base[..end]),
            None => reference.to_string(),
        },
    }
}

fn collect_ids(value: &Value, ptr: &str, base: &str, ids: &mut HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            let mut base = base.to_string();
            if let Some(Value::String(id)) = map.get("$id") {
                base = resolve_uri(&base, id);
                ids.insert(base.clone(), ptr.to_string());
                if let Some((_, anchor)) = id.split_once('#') {
                    ids.insert(format!("#{anchor}"), ptr.to_string());
                }
            }
            if let Some(Value::String(anchor)) = map.get("$anchor") {
                ids.insert(format!("#{anchor}"), ptr.to_string());
            }
            for (k, v) in map {
                let here = pointer::join(ptr, k);
                match k.as_str() {
                    // Keywords whose values are maps of schemas.
                    "properties" | "patternProperties" | "$defs" | "definitions"
                    | "dependentSchemas" | "dependencies" => {
                        for (name, sub) in v.as_object().into_iter().flatten() {
                            collect_ids(sub, &pointer::join(&here, name), &base, ids);
                        }
                    }
                    // Keywords whose values are a schema or an array of schemas. Anything
                    // else (unknown keywords, `enum`, `examples`, …) holds data, not schemas.
                    "items"
                    | "prefixItems"
                    | "allOf"
                    | "anyOf"
                    | "oneOf"
                    | "not"
                    | "if"
                    | "then"
                    | "else"
                    | "additionalProperties"
                    | "additionalItems"
                    | "contains"
                    | "propertyNames"
                    | "unevaluatedProperties"
                    | "unevaluatedItems" => {
                        collect_ids(v, &here, &base, ids);
                    }
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_ids(v, &format!("{ptr}/{i}"), base, ids);
            }
        }
        _ => {}
    }
}

// ----- oneOf disjointness ---------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TypeSet(u8);

impl TypeSet {
    const NONE: TypeSet = TypeSet(0);
    const ALL: TypeSet = TypeSet(0b111_1111);

    fn bit(t: &str) -> u8 {
        match t {
            "null" => 1,
            "boolean" => 2,
            "integer" => 4,
            "number" => 4 | 8,
            "string" => 16,
            "array" => 32,
            "object" => 64,
            _ => 0x7f,
        }
    }

    fn from_value(v: &Value) -> TypeSet {
        match v {
            Value::String(s) => TypeSet(Self::bit(s)),
            Value::Array(items) => TypeSet(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .fold(0, |acc, s| acc | Self::bit(s)),
            ),
            _ => TypeSet::ALL,
        }
    }

    fn of_values(values: &[Value]) -> TypeSet {
        TypeSet(values.iter().fold(0, |acc, v| {
            acc | match v {
                Value::Null => 1,
                Value::Bool(_) => 2,
                Value::Number(n) if n.is_i64() || n.is_u64() => 4,
                Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => 4,
                Value::Number(_) => 8,
                Value::String(_) => 16,
                Value::Array(_) => 32,
                Value::Object(_) => 64,
            }
        }))
    }

    fn and(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & other.0)
    }

    /// Whether `value` has one of these types.
    fn admits(self, value: &Value) -> bool {
        self.and(TypeSet::of_values(std::slice::from_ref(value))).0 != 0
    }

    fn or(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }
}

/// Over-approximation of a schema's instances, for `oneOf` disjointness.
#[derive(Clone, Debug)]
struct Shape {
    types: TypeSet,
    /// The instance is one of these values.
    values: Option<Vec<Value>>,
    /// Required properties whose value is one of these constants.
    tags: Vec<(String, Vec<Value>)>,
    /// Required properties whose value has one of these types.
    tag_types: Vec<(String, TypeSet)>,
}

impl Shape {
    fn any() -> Shape {
        Shape {
            types: TypeSet::ALL,
            values: None,
            tags: vec![],
            tag_types: vec![],
        }
    }

    fn none() -> Shape {
        Shape {
            types: TypeSet::NONE,
            values: Some(vec![]),
            tags: vec![],
            tag_types: vec![],
        }
    }

    fn and(mut self, other: Shape) -> Shape {
        self.types = self.types.and(other.types);
        if let Some(v) = other.values {
            self.values = Some(match self.values {
                Some(mine) => mine
                    .into_iter()
                    .filter(|x| v.iter().any(|y| json_equal(x, y)))
                    .collect(),
                None => v,
            });
        }
        self.tags.extend(other.tags);
        self.tag_types.extend(other.tag_types);
        self
    }

    fn disjoint(&self, other: &Shape) -> bool {
        if self.types.and(other.types) == TypeSet::NONE {
            return true;
        }
        if let (Some(a), Some(b)) = (&self.values, &other.values) {
            if !a.iter().any(|x| b.iter().any(|y| json_equal(x, y))) {
                return true;
            }
        }
        let objects_only = |s: &Shape| s.types == TypeSet(64);
        if objects_only(self) || objects_only(other) {
            for (key, values) in &self.tags {
                for (k2, v2) in &other.tags {
                    if key == k2 && !values.iter().any(|x| v2.iter().any(|y| json_equal(x, y))) {
                        return true;
                    }
                }
            }
            for (key, types) in &self.tag_types {
                for (k2, t2) in &other.tag_types {
                    if key == k2 && types.and(*t2) == TypeSet::NONE {
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::automaton::Matcher;
    use crate::{compile, Options};

    /// Compile `schema` (compact whitespace) and check documents against it.
    fn check(schema: serde_json::Value, yes: &[&str], no: &[&str]) {
        let options = Options {
            whitespace: crate::Whitespace::Compact,
            ..Options::default()
        };
        let compiled = compile(&schema, &options).unwrap();
        let matcher = Matcher::new(&compiled.rx, 1 << 20).unwrap();
        for doc in yes {
            assert!(matcher.is_match(doc), "{schema}: should accept {doc}");
        }
        for doc in no {
            assert!(!matcher.is_match(doc), "{schema}: should refuse {doc}");
        }
    }

    #[test]
    fn pattern_with_lengths_is_an_intersection() {
        check(
            json!({"type": "string", "pattern": "^(ab)+$", "maxLength": 4, "minLength": 2}),
            &[r#""ab""#, r#""abab""#],
            &[r#""ababab""#, r#""a""#, r#""""#],
        );
        // Groups that the lengths cannot be folded into: a counter automaton.
        check(
            json!({"type": "string", "pattern": "^([a-z0-9-]+):([a-z.]+):([a-z]+)?:([a-z]+)$",
                   "maxLength": 12}),
            &[r#""a:b::c""#, r#""a-1:b.c:d:ef""#],
            &[r#""a:b:c""#, r#""aaaa:bbbb::cc""#],
        );
        check(
            json!({"type": "string", "pattern": "^x(y|zz)?", "maxLength": 3, "minLength": 2}),
            &[r#""xyz""#, r#""x\n""#, r#""xzz""#],
            &[r#""x""#, r#""xyzzy""#, r#""a""#],
        );
    }

    #[test]
    fn pattern_with_a_format_is_an_intersection() {
        check(
            json!({"type": "string", "format": "date", "pattern": "^2024-"}),
            &[r#""2024-01-31""#],
            &[r#""2023-01-31""#, r#""2024-13-01""#, r#""2024-""#],
        );
    }

    #[test]
    fn excluded_strings_with_other_constraints() {
        check(
            json!({"type": "string", "pattern": "^a", "not": {"enum": ["ab"]}}),
            &[r#""ac""#, r#""abc""#, r#""a""#],
            &[r#""ab""#, r#""a\u0062""#, r#""b""#],
        );
    }

    #[test]
    fn negated_patterns_are_complements() {
        check(
            json!({"type": "string", "not": {"pattern": "^a"}}),
            &[r#""b""#, r#""""#, r#""\"a""#, r#""ba""#],
            &[r#""a""#, r#""ab""#, r#""\u0062""#],
        );
        // The value, not its spelling: `"` inside is written `\"`.
        check(
            json!({"type": "string", "not": {"pattern": "\""}}),
            &[r#""ab""#, r#""a\nb""#],
            &[r#""a\"b""#, r#""\"""#],
        );
        // Overlapping string branches of `oneOf`: exactly one pattern matches.
        check(
            json!({"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]}),
            &[r#""ax""#, r#""xb""#, r#""a""#],
            &[r#""ab""#, r#""xx""#, r#""a-b""#],
        );
    }

    #[test]
    fn names_outside_the_patterns_are_additional() {
        check(
            json!({"type": "object", "properties": {"id": {"type": "integer"}},
                   "patternProperties": {"^S_": {"type": "string"}}}),
            &[
                r#"{"id":1}"#,
                r#"{"id":1,"S_x":"a"}"#,
                r#"{"id":1,"other":[5]}"#,
                r#"{"id":1,"Sz":true}"#,
            ],
            &[
                r#"{"id":1,"S_x":5}"#,
                r#"{"id":1,"id":2}"#,
                r#"{"id":1,"\u0053_x":5}"#,
            ],
        );
    }

    #[test]
    fn pattern_properties_that_also_match_listed_names() {
        // `.*` matches "default" too: the extra names are every other name, and the
        // listed name can neither repeat nor be spelled with an escape.
        check(
            json!({"type": "object", "properties": {"default": {"type": "string"}},
                   "patternProperties": {".*": {"type": "string"}}, "required": ["default"],
                   "additionalProperties": false}),
            &[
                r#"{"default":"a"}"#,
                r#"{"default":"a","print":"b","web":"c"}"#,
            ],
            &[
                r#"{"default":"a","default":"b"}"#,
                r#"{"default":"a","d\u0065fault":"b"}"#,
                r#"{"default":"a","print":1}"#,
                r#"{"print":"b"}"#,
            ],
        );
        check(
            json!({"type": "object", "properties": {"line1": {"type": "string"}},
                   "patternProperties": {"^line[1-3]$": {"type": "string"}},
                   "required": ["line1"], "additionalProperties": false}),
            &[r#"{"line1":"a","line2":"b","line3":"c"}"#],
            &[
                r#"{"line1":"a","line4":"b"}"#,
                r#"{"line1":"a","line1":"b"}"#,
            ],
        );
    }
}
