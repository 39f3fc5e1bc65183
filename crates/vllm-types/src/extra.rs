//! [`Extra`]: the members of a JSON object that a model does not name.

use std::ops::{Deref, DerefMut};
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// The members of a JSON object that its model does not name, kept verbatim.
///
/// Every model in this crate ends with `pub extra: Extra`. Parsing puts each member the model
/// does not know into it, and serialization writes them back, so a newer server's fields reach
/// the caller and a parsed value re-serializes to the same JSON. It dereferences to a
/// [`serde_json::Map`], so it is read and written like one:
///
/// ```
/// use vllm_types::ChatCompletion;
///
/// let json = r#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[],
///               "timings":{"prompt_n":7}}"#;
/// let parsed: ChatCompletion = serde_json::from_str(json).unwrap();
/// assert_eq!(parsed.extra["timings"]["prompt_n"], 7);
/// ```
///
/// Building a request, it is also the place for a parameter this crate does not model yet:
/// its members are sent as top-level members of the object. A member whose name is a modelled
/// field that is set is not written twice: the field wins.
///
/// It also remembers which modelled optional fields were an explicit `null` in the input (and
/// which defaulted fields were missing), so that `"logprobs": null` is written back as it came
/// and a member the server left out is not invented. That record is not part of equality: two
/// values that differ only in it compare equal.
///
/// It is 24 bytes: the map is allocated only when a member is added (most parsed objects have
/// none), which keeps the models small to move while a stream chunk is parsed.
#[derive(Clone, Default)]
pub struct Extra {
    members: Option<Box<Map<String, Value>>>,
    /// Bit `i` set: the model's field number `i` was an explicit `null` in the input (optional
    /// fields) or missing from it (defaulted fields).
    nulls: [u64; 2],
}

/// What an `Extra` without members dereferences to.
static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl Extra {
    /// An empty set of members.
    pub fn new() -> Self {
        Self::default()
    }

    /// The members as a map.
    pub fn into_map(self) -> Map<String, Value> {
        self.members.map_or_else(Map::new, |members| *members)
    }

    pub(crate) fn is_null_field(&self, bit: u8) -> bool {
        self.nulls[usize::from(bit >> 6)] & (1u64 << (bit & 63)) != 0
    }

    pub(crate) fn set_null_field(&mut self, bit: u8) {
        self.nulls[usize::from(bit >> 6)] |= 1u64 << (bit & 63);
    }

    pub(crate) fn clear_null_field(&mut self, bit: u8) {
        self.nulls[usize::from(bit >> 6)] &= !(1u64 << (bit & 63));
    }
}

impl std::fmt::Debug for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Deref for Extra {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        self.members.as_deref().unwrap_or(&EMPTY)
    }
}

impl DerefMut for Extra {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.members.get_or_insert_with(Box::default)
    }
}

impl From<Map<String, Value>> for Extra {
    fn from(members: Map<String, Value>) -> Self {
        Self {
            members: (!members.is_empty()).then(|| Box::new(members)),
            nulls: [0; 2],
        }
    }
}

impl FromIterator<(String, Value)> for Extra {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Map<String, Value>>())
    }
}

impl<'a> IntoIterator for &'a Extra {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        (**self).iter()
    }
}
