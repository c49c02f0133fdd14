//! Objects: listed properties (required and optional, each built once) in order, then
//! the additional members — names matching `patternProperties`, or the names left to
//! `additionalProperties` — or, with `any_property_order`, all of them in any order; with
//! `propertyNames`,
//! `minProperties`/`maxProperties` and `dependentRequired`.
use indexmap::IndexMap;

use crate::compiler::{Compiler, Re};
use crate::error::SchemaError;
use crate::ir::{Constraints, Sub, TypeSet};
use crate::json::{canonical_string, escape, STRING_CHAR};
use crate::pattern::{self, Lengths};
use crate::pointer;
use crate::rx::{Rx, Slot};

use super::never;
use super::string::{names_outside_patterns, strings_except, StringParts};

#[derive(Clone, Debug)]
struct Member {
    name: String,
    regex: Rx,
    required: bool,
}

impl<'a> Compiler<'a> {
    pub(crate) fn compile_object(
        &mut self,
        c: &Constraints<'a>,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let counts = Lengths {
            min: c.min_properties.unwrap_or(0),
            max: c.max_properties,
        };
        if counts.max.is_some_and(|m| m < counts.min) {
            return Ok(None);
        }
        let empty = IndexMap::new();
        let properties = c.properties.as_ref().unwrap_or(&empty);
        let patterns = c.pattern_properties.as_ref().unwrap_or(&empty);
        let required: &[String] = c.required.as_deref().unwrap_or(&[]);
        // (`unevaluatedProperties` was folded into `additionalProperties` by
        // normalization.)
        let additional: Option<Sub<'a>> = match &c.additional_properties {
            Some(s) if s.is_false() => None,
            Some(s) => Some(s.clone()),
            None if self.options.allow_additional_properties => Some(Sub::Bool(true)),
            None => None,
        };
        let names_re = match &c.property_names {
            None => None,
            Some(schema) => {
                let strings = Sub::leaf(Constraints {
                    types: Some(TypeSet::STRING),
                    ..Constraints::default()
                });
                let names = Sub::and(&strings, schema);
                match self.compile(&names, &format!("{ptr}/propertyNames"))? {
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
        let mut listed: Vec<(String, Sub<'a>)> = properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for name in required {
            if !properties.contains_key(name) {
                let schema = additional.clone().unwrap_or(Sub::Bool(false));
                listed.push((name.clone(), schema));
            }
        }
        // Pattern properties also apply to listed names they match.
        for (name, schema) in listed.iter_mut() {
            let mut only_patterns = Sub::Bool(true);
            let mut matched = false;
            for (pattern, ps) in patterns {
                if self.pattern_matches(pattern, name, ptr)? {
                    matched = true;
                    *schema = Sub::and(schema, ps);
                    only_patterns = Sub::and(&only_patterns, ps);
                }
            }
            if matched && !properties.contains_key(name) {
                // A required-but-unlisted name matched by a pattern is not "additional".
                *schema = only_patterns;
            }
        }
        let colon = self.syntax.colon();
        let properties_ptr = format!("{ptr}/properties");
        let mut members: Vec<Member> = Vec::new();
        for (name, schema) in &listed {
            let is_required = required.contains(name);
            let key = canonical_string(name);
            let name_ok = names_checker.as_ref().is_none_or(|m| m.is_match(&key));
            let value = if name_ok {
                self.compile(schema, &pointer::join(&properties_ptr, name))?
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
        for trigger in c.dependent_required.iter().flat_map(IndexMap::keys) {
            if !listed_names.contains(trigger) {
                listed_names.push(trigger.clone());
            }
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
            if patterns.len() <= MAX_PATTERN_REGIONS_OF {
                self.pattern_regions(
                    patterns,
                    &listed_names,
                    &colon,
                    ptr,
                    &mut extra_alternatives,
                )?;
            } else {
                for (pattern, schema) in patterns {
                    let mut matches_listed = false;
                    for name in &listed_names {
                        matches_listed |= self.pattern_matches(pattern, name, ptr)?;
                    }
                    let mut value_schema = schema.clone();
                    for (other, s) in patterns {
                        if other != pattern {
                            value_schema = Sub::and(&value_schema, s);
                        }
                    }
                    let pattern_ptr = pointer::join(&format!("{ptr}/patternProperties"), pattern);
                    let Some(body) = pattern::pattern_body(pattern, Lengths::ANY, &pattern_ptr)?
                    else {
                        continue;
                    };
                    let value = self.compile(&value_schema, &pattern_ptr)?;
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
            }
        } else if patterns.is_empty() {
            if let Some(additional) = &additional {
                let key = match (&names_re, listed_names.is_empty()) {
                    (None, _) => self.names_except(&listed_names),
                    (Some(re), true) => Some(re.clone()),
                    // Names must avoid the listed ones *and* match propertyNames: not
                    // generated.
                    (Some(_), false) => None,
                };
                if let Some(key) = key {
                    let value = self.compile(additional, &format!("{ptr}/additionalProperties"))?;
                    if let Some(v) = value {
                        extra_alternatives.push(Rx::seq([key, colon.clone(), v]));
                    }
                }
            }
        }
        let extra = Rx::alt(extra_alternatives);

        let variants = dependent_variants(members, c.dependent_required.as_ref(), ptr)?;
        let mut alternatives = Vec::new();
        for members in &variants {
            if let Some(re) = self.members_regex(members, extra.as_ref(), counts, ptr)? {
                alternatives.push(re);
            }
        }
        Ok(Rx::alt(alternatives))
    }

    /// The members of an object: listed ones (required or optional) in order, then
    /// `extra` repeated, with the member count within `counts` — or, with
    /// `any_property_order` where the count does not bound the extras, all in any order.
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
        let allow_empty = counts.min == 0 && extra_min == 0;
        if self.options.any_property_order && extra_min == 0 && extra_max.is_none() {
            let members = members
                .iter()
                .map(|m| crate::rx::Member {
                    item: m.regex.clone(),
                    required: m.required,
                })
                .collect();
            return Ok(
                Rx::unordered(members, extra, self.syntax.comma(), allow_empty)
                    .map(|body| self.syntax.object(body)),
            );
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
        Ok(Rx::members(slots, self.syntax.comma(), allow_empty)
            .map(|body| self.syntax.object(body)))
    }
}

/// Most `patternProperties` patterns whose regions (the names matching exactly a subset of
/// them, `2^n - 1` subsets) are built one by one; past it, every pattern's names take
/// all the patterns' schemas (a sound subset).
const MAX_PATTERN_REGIONS_OF: usize = 4;

impl<'a> Compiler<'a> {
    /// `patternProperties` as regions: the names that match exactly the patterns of a
    /// subset (all of them, none of the others, no listed name) take the schemas of
    /// those patterns — a name gets every schema whose pattern it matches, and no other.
    fn pattern_regions(
        &mut self,
        patterns: &IndexMap<String, Sub<'a>>,
        listed_names: &[String],
        colon: &Rx,
        ptr: &str,
        out: &mut Vec<Rx>,
    ) -> Result<(), SchemaError> {
        let list: Vec<(&String, &Sub<'a>)> = patterns.iter().collect();
        let mut bodies = Vec::with_capacity(list.len());
        for (pattern, _) in &list {
            let pattern_ptr = pointer::join(&format!("{ptr}/patternProperties"), pattern);
            bodies.push(pattern::pattern_body(pattern, Lengths::ANY, &pattern_ptr)?);
        }
        for subset in 1u32..(1 << list.len()) {
            let chosen = |i: usize| subset >> i & 1 == 1;
            // A pattern no string matches empties its regions; it has nothing to avoid.
            let Some(matched) = (0..list.len())
                .filter(|&i| chosen(i))
                .map(|i| bodies[i].clone())
                .collect::<Option<Vec<String>>>()
            else {
                continue;
            };
            let avoided: Vec<String> = (0..list.len())
                .filter(|&i| !chosen(i))
                .filter_map(|i| bodies[i].clone())
                .collect();
            let first = (0..list.len()).find(|&i| chosen(i)).unwrap_or(0);
            let pattern_ptr = pointer::join(&format!("{ptr}/patternProperties"), list[first].0);
            let mut value_schema = Sub::Bool(true);
            for i in (0..list.len()).filter(|&i| chosen(i)) {
                value_schema = Sub::and(&value_schema, list[i].1);
            }
            let Some(value) = self.compile(&value_schema, &pattern_ptr)? else {
                continue;
            };
            let mut excluded = Vec::new();
            for name in listed_names {
                let mut all = true;
                for i in (0..list.len()).filter(|&i| chosen(i)) {
                    all &= self.pattern_matches(list[i].0, name, ptr)?;
                }
                if all {
                    excluded.push(name.clone());
                }
            }
            let parts = StringParts {
                bodies: matched,
                excluded,
                avoided,
                ..StringParts::default()
            };
            // Too large an intersection: no such names (a sound subset).
            if let Ok(Some(key)) = self.string_intersection(&parts, "patternProperties", ptr) {
                out.push(Rx::seq([key, colon.clone(), value]));
            }
        }
        Ok(())
    }
}

impl Compiler<'_> {
    /// Quoted names other than `listed` (the names that `additionalProperties`
    /// governs), in every spelling: a DFA ([`strings_except`]), one node per set of names
    /// in this compilation. `None` when the DFA would be too large (no such names: a
    /// sound subset).
    fn names_except(&mut self, listed: &[String]) -> Option<Rx> {
        if listed.is_empty() {
            // Every name, in every spelling.
            return Some(self.leaf(&format!("\"{STRING_CHAR}*\"")));
        }
        if let Some(rx) = self.other_names.get(listed) {
            return Some(rx.clone());
        }
        let names = strings_except(listed).ok()?;
        let quote = || Rx::literal("\"");
        let rx = Rx::seq([quote(), Rx::dfa(names), quote()]);
        self.other_names.insert(listed.to_vec(), rx.clone());
        Some(rx)
    }
}

/// `dependentRequired`: each trigger splits the member lists into "trigger absent" and
/// "trigger and its dependents present".
fn dependent_variants(
    members: Vec<Member>,
    dependent_required: Option<&IndexMap<String, Vec<String>>>,
    ptr: &str,
) -> Result<Vec<Vec<Member>>, SchemaError> {
    /// Most member lists the splits may produce.
    const MAX_VARIANTS: usize = 16;
    let mut variants = vec![members];
    for (trigger, needed) in dependent_required.into_iter().flatten() {
        let mut next = Vec::new();
        for members in variants {
            let Some(t) = members.iter().position(|m| &m.name == trigger) else {
                next.push(members);
                continue;
            };
            let all_needed_listed = needed.iter().all(|n| members.iter().any(|m| &m.name == n));
            let trigger_required = members[t].required;
            if !trigger_required {
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
        if variants.len() > MAX_VARIANTS {
            return Err(SchemaError::unsupported(
                "dependentRequired",
                ptr,
                "too many optional dependencies to enumerate",
            ));
        }
    }
    Ok(variants)
}
