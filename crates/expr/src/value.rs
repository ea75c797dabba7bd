//! Values of the expression language and GitHub's coercions between them.

use std::fmt;
use std::hash::{Hash, Hasher};

use indexmap::IndexMap;

use crate::number;

/// The kind of a [`Value`], named as GitHub names them in messages and the oracles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` / `false`
    Boolean,
    /// A 64-bit float (NaN, ±Infinity and -0 included).
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object (dictionary) with case-insensitive keys.
    Object,
}

impl Kind {
    /// `"Null"`, `"Boolean"`, `"Number"`, `"String"`, `"Array"` or `"Object"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Null => "Null",
            Kind::Boolean => "Boolean",
            Kind::Number => "Number",
            Kind::String => "String",
            Kind::Array => "Array",
            Kind::Object => "Object",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value of the expression language: what contexts hold and what expressions yield.
///
/// `PartialEq` is structural equality (for tests and callers); the language's own `==`
/// (loose, case-insensitive, reference equality for arrays and objects) is
/// [`Value::loose_eq`].
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// `null`
    #[default]
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number (IEEE double, as in JavaScript and C#).
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object with case-insensitive keys.
    Object(Object),
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    /// Whether the value is a primitive (null, boolean, number or string).
    pub fn is_primitive(&self) -> bool {
        !matches!(self, Value::Array(_) | Value::Object(_))
    }

    /// GitHub's truthiness: `null`, `false`, `0`, `-0`, `NaN` and `''` are false;
    /// everything else (including empty arrays and objects) is true.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// The string a value becomes inside a template, `format()`, `join()` or a string
    /// function: `null` → `""`, booleans → `"true"`/`"false"`, numbers as the official
    /// evaluator prints them (at most 15 decimals, JavaScript notation: `1.5`, `1e+21`),
    /// arrays → `"Array"`, objects → `"Object"`.
    pub fn to_coerced_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(true) => "true".to_owned(),
            Value::Bool(false) => "false".to_owned(),
            Value::Number(n) => number::coerce_to_string(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) => "Array".to_owned(),
            Value::Object(_) => "Object".to_owned(),
        }
    }

    /// The number a value becomes when compared with a number: `null` → 0, booleans → 0/1,
    /// strings as JavaScript's `Number()` reads them (`''` → 0, `'0x1F'` → 31, `'abc'` → NaN),
    /// arrays and objects → NaN.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => number::parse_js_number(s),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// The language's `==`: loose equality with GitHub's coercions (strings compared
    /// case-insensitively, NaN equal to nothing, `null == null`). Distinct arrays and
    /// objects are never equal (GitHub compares them by reference).
    pub fn loose_eq(&self, other: &Value) -> bool {
        crate::compare::equals(&self.as_operand(), &other.as_operand())
    }

    /// Converts to JSON. NaN and ±Infinity (which JSON cannot hold) become `null`,
    /// as `toJSON()` prints them.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => serde_json::Value::Object(
                o.iter().map(|(k, v)| (k.to_owned(), v.to_json())).collect(),
            ),
        }
    }

    /// `toJSON(value)`: pretty JSON with two-space indentation, exactly as GitHub prints it.
    pub fn to_pretty_json(&self) -> String {
        crate::json::to_pretty_string(self)
    }

    /// Reads JSON text the way `fromJSON()` does.
    pub fn from_json_str(text: &str) -> Result<Value, String> {
        crate::json::parse(text)
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object inside, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The array inside, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Property access as `value.name` does it (case-insensitive; `None` unless an object
    /// holds the key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    fn as_operand(&self) -> crate::evaluator::Operand<'_> {
        crate::evaluator::Operand::from_value(self)
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if !n.is_finite() {
        return serde_json::Value::Null;
    }
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // Whole numbers stay integers in JSON (`1`, not `1.0`); -0 becomes 0 as in JSON.stringify.
        #[allow(clippy::cast_possible_truncation)]
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                let mut obj = Object::with_capacity(o.len());
                for (k, v) in o {
                    obj.insert_if_absent(k, Value::from(v));
                }
                Value::Object(obj)
            }
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Value {
        Value::from(v.clone())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Number(f64::from(n))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Array(a)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Value {
        Value::Object(o)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

/// A key compared and hashed case-insensitively, keeping its original spelling.
#[derive(Clone, Debug)]
struct Key(String);

/// A borrowed key for lookups (no allocation for ASCII keys).
#[derive(Clone, Copy)]
struct KeyRef<'a>(&'a str);

fn hash_folded<H: Hasher>(s: &str, state: &mut H) {
    if s.is_ascii() {
        for b in s.bytes() {
            state.write_u32(u32::from(b.to_ascii_lowercase()));
        }
    } else {
        for c in s.to_lowercase().chars() {
            state.write_u32(u32::from(c));
        }
    }
    state.write_u32(u32::MAX);
}

/// Case-insensitive equality the way GitHub folds keys (Unicode lower case).
pub(crate) fn eq_folded(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(&self.0, state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        eq_folded(&self.0, &other.0)
    }
}

impl Eq for Key {}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(self.0, state);
    }
}

impl indexmap::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        eq_folded(self.0, &key.0)
    }
}

/// An object: insertion-ordered, keys looked up case-insensitively, original spelling kept.
#[derive(Clone, Debug, Default)]
pub struct Object {
    map: IndexMap<Key, Value>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object::default()
    }

    /// An empty object with room for `n` keys.
    pub fn with_capacity(n: usize) -> Object {
        Object {
            map: IndexMap::with_capacity(n),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sets `key` to `value`. If a key equal ignoring case exists, its value is replaced
    /// (keeping the first spelling and position) and the old value returned.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        if let Some(slot) = self.map.get_mut(&KeyRef(&key)) {
            return Some(std::mem::replace(slot, value));
        }
        self.map.insert(Key(key), value);
        None
    }

    /// Adds `key` only if no key equal ignoring case exists (the first one wins, as when
    /// GitHub reads JSON with keys differing only in case). Returns whether it was added.
    pub fn insert_if_absent(&mut self, key: impl Into<String>, value: impl Into<Value>) -> bool {
        let key = key.into();
        if self.map.contains_key(&KeyRef(&key)) {
            return false;
        }
        self.map.insert(Key(key), value.into());
        true
    }

    /// The value of `key`, compared case-insensitively.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(&KeyRef(key))
    }

    /// The value of `key` for changing it, compared case-insensitively.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.map.get_mut(&KeyRef(key))
    }

    /// The stored spelling of `key` and its value.
    pub fn get_key_value(&self, key: &str) -> Option<(&str, &Value)> {
        self.map
            .get_key_value(&KeyRef(key))
            .map(|(k, v)| (k.0.as_str(), v))
    }

    /// Whether `key` (case-insensitive) is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(&KeyRef(key))
    }

    /// Removes `key` (case-insensitive), keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.map.shift_remove(&KeyRef(key))
    }

    /// Keys (original spelling) and values in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + DoubleEndedIterator {
        self.map.iter().map(|(k, v)| (k.0.as_str(), v))
    }

    /// Keys in insertion order, as first spelled.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator {
        self.map.keys().map(|k| k.0.as_str())
    }

    /// Values in insertion order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> + DoubleEndedIterator {
        self.map.values()
    }
}

impl PartialEq for Object {
    /// Same keys (ignoring case and order) with structurally equal values.
    fn eq(&self, other: &Object) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Object {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Object {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

impl IntoIterator for Object {
    type Item = (String, Value);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter(self.map.into_iter())
    }
}

/// Owning iterator over an [`Object`]'s keys and values, in insertion order.
#[derive(Debug)]
pub struct IntoIter(indexmap::map::IntoIter<Key, Value>);

impl Iterator for IntoIter {
    type Item = (String, Value);

    fn next(&mut self) -> Option<(String, Value)> {
        self.0.next().map(|(k, v)| (k.0, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_lookup_ignores_case_and_keeps_spelling() {
        let mut o = Object::new();
        o.insert("MiXeD", 1);
        assert_eq!(o.get("mixed"), Some(&Value::from(1)));
        assert_eq!(o.insert("MIXED", 2), Some(Value::from(1)));
        assert_eq!(o.keys().collect::<Vec<_>>(), ["MiXeD"]);
        assert!(!o.insert_if_absent("mixed", 3));
        assert_eq!(o.get("mixed"), Some(&Value::from(2)));
    }

    #[test]
    fn json_keys_differing_in_case_keep_the_first() {
        let v = Value::from(serde_json::json!({"a": 1, "A": 2}));
        assert_eq!(v.get("A"), Some(&Value::from(1)));
    }
}
