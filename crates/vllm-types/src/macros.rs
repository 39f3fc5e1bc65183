//! The two macros every model in this crate is written with.
//!
//! `model!` declares a struct with public fields and a trailing [`Extra`](crate::Extra), and
//! writes its `Serialize` / `Deserialize` by hand instead of with `#[serde(flatten)]`:
//!
//! - members the struct does not model are kept in `extra` and written back, so nothing a newer
//!   server sends is lost and re-serializing a parsed value gives the same JSON;
//! - an explicit `null` for a modelled optional field is remembered (one bit, no allocation),
//!   so `"logprobs": null` survives a round trip while a `None` the caller set is not sent;
//!   likewise a `def` field that was absent is not written back while it holds the default;
//! - keys are matched borrowed, without buffering the object (`flatten` buffers every member),
//!   and each member is deserialized into its field where it lies (nested models fill
//!   themselves in rather than being built and moved), which keeps stream chunk decoding fast;
//! - parsing into a value that already holds one ([`crate::from_str_in_place`]) overwrites
//!   its strings, vectors and nested models where they are, keeping their allocations.
//!
//! Each field is declared with a mode:
//! - `opt name: T`: the field is `Option<T>`, skipped when `None`;
//! - `req name: T`: the member must be present (a missing one is a deserialization error);
//! - `def name: T`: a missing member reads as `T::default()`; the field is written unless it
//!   was missing from the input and still holds the default;
//! - `each name: T`: like `def` for a `Vec<T>` of models, each element deserialized in place.
//!
//! A field may be renamed with `as "key"` (for keys that are Rust keywords, like `type`).

/// Declares a model struct; see the module docs.
macro_rules! model {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $mode:ident $field:ident : $ty:ty $(as $key:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $crate::macros::__field_ty!($mode $ty),
            )*
            /// Members this version does not model, kept verbatim so that they reach the
            /// caller and are written back on serialization.
            pub extra: $crate::Extra,
        }

        const _: () = {
            #[allow(non_camel_case_types, dead_code)]
            #[repr(u8)]
            enum __Field { $($field,)* }
            const _: () = assert!(
                [$(stringify!($field)),*].len() <= 128,
                "a model has at most 128 fields (one bit each in Extra's null record)"
            );

            impl $name {
                /// Sets the optional member `member` (its JSON name) to `None`, written as an
                /// explicit `null` while it stays `None` (as a server that sends
                /// `"logprobs": null` does). Returns `false`, changing nothing, when `member` is
                /// not an optional member of this type.
                pub fn set_null(&mut self, member: &str) -> bool {
                    match member {
                        $( $crate::macros::__key!($field $($key)?) =>
                            $crate::macros::__set_null!($mode self, $field, __Field::$field as u8), )*
                        _ => false,
                    }
                }

                fn __shadows(&self, key: &str) -> bool {
                    match key {
                        $( $crate::macros::__key!($field $($key)?) =>
                            $crate::macros::__present!($mode self.$field), )*
                        _ => false,
                    }
                }
            }

            impl ::serde::Serialize for $name {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    use ::serde::ser::SerializeMap as _;
                    let mut len = 0usize;
                    $(
                        if $crate::macros::__written!($mode self, $field, __Field::$field as u8) {
                            len += 1;
                        }
                    )*
                    len += self.extra.iter().filter(|(k, _)| !self.__shadows(k)).count();
                    let mut map = serializer.serialize_map(Some(len))?;
                    $(
                        $crate::macros::__ser!(
                            $mode map, self, $field, __Field::$field as u8,
                            $crate::macros::__key!($field $($key)?)
                        );
                    )*
                    for (k, v) in self.extra.iter() {
                        if !self.__shadows(k) {
                            map.serialize_entry(k, v)?;
                        }
                    }
                    map.end()
                }
            }

            impl<'de> ::serde::Deserialize<'de> for $name {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    let mut value = Self::default();
                    deserializer.deserialize_map(Visitor(&mut value))?;
                    Ok(value)
                }

                fn deserialize_in_place<D: ::serde::Deserializer<'de>>(
                    deserializer: D,
                    place: &mut Self,
                ) -> Result<(), D::Error> {
                    deserializer.deserialize_map(Visitor(place))
                }
            }

            /// Overwrites a value with a JSON object: each member is read into its field
            /// where it lies, and the fields of missing members are reset.
            struct Visitor<'a>(&'a mut $name);

            impl<'de> ::serde::de::Visitor<'de> for Visitor<'_> {
                type Value = ();
                fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                }
                fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                    let place = self.0;
                    place.extra = $crate::Extra::new();
                    // Bit `i`: field number `i` was present.
                    let mut seen = 0u128;
                    while let Some(key) = map.next_key::<$crate::macros::Key<'de>>()? {
                        match key.as_str() {
                            $(
                                $crate::macros::__key!($field $($key)?) => {
                                    $crate::macros::__de!(
                                        $mode map, place, $field, $ty, __Field::$field as u8
                                    );
                                    seen |= 1u128 << (__Field::$field as u8);
                                }
                            )*
                            _ => {
                                let value: ::serde_json::Value = map.next_value()?;
                                place.extra.insert(key.into_string(), value);
                            }
                        }
                    }
                    $(
                        $crate::macros::__finish!(
                            $mode place, $field, $crate::macros::__key!($field $($key)?),
                            seen, __Field::$field as u8
                        );
                    )*
                    let _ = seen;
                    Ok(())
                }
            }
        };
    };
}

macro_rules! __field_ty {
    (opt $ty:ty) => { Option<$ty> };
    (each $ty:ty) => { Vec<$ty> };
    (req $ty:ty) => { $ty };
    (def $ty:ty) => { $ty };
}

macro_rules! __key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $key:literal) => {
        $key
    };
}

macro_rules! __present {
    (opt $e:expr) => {
        $e.is_some()
    };
    (req $e:expr) => {
        true
    };
    (def $e:expr) => {
        true
    };
    (each $e:expr) => {
        true
    };
}

macro_rules! __set_null {
    (opt $this:ident, $field:ident, $bit:expr) => {{
        $this.$field = None;
        $this.extra.set_null_field($bit);
        true
    }};
    ($other:ident $this:ident, $field:ident, $bit:expr) => {
        false
    };
}

macro_rules! __written {
    (opt $this:ident, $field:ident, $bit:expr) => {
        $this.$field.is_some() || $this.extra.is_null_field($bit)
    };
    (req $this:ident, $field:ident, $bit:expr) => {
        true
    };
    ($def:ident $this:ident, $field:ident, $bit:expr) => {
        !$crate::macros::__def_absent!($this, $field, $bit)
    };
}

macro_rules! __ser {
    (opt $map:ident, $this:ident, $field:ident, $bit:expr, $key:expr) => {
        match &$this.$field {
            Some(v) => $map.serialize_entry($key, v)?,
            None if $this.extra.is_null_field($bit) => $map.serialize_entry($key, &())?,
            None => {}
        }
    };
    (req $map:ident, $this:ident, $field:ident, $bit:expr, $key:expr) => {
        $map.serialize_entry($key, &$this.$field)?
    };
    ($def:ident $map:ident, $this:ident, $field:ident, $bit:expr, $key:expr) => {
        if !$crate::macros::__def_absent!($this, $field, $bit) {
            $map.serialize_entry($key, &$this.$field)?
        }
    };
}

/// A `def` field that was absent from the input and still holds the default is not written.
macro_rules! __def_absent {
    ($this:ident, $field:ident, $bit:expr) => {
        $this.extra.is_null_field($bit) && $crate::macros::is_default(&$this.$field)
    };
}

macro_rules! __de {
    (opt $map:ident, $place:ident, $field:ident, $ty:ty, $bit:expr) => {
        if $map.next_value_seed($crate::macros::OptInPlace(&mut $place.$field))? {
            $place.extra.clear_null_field($bit);
        } else {
            $place.extra.set_null_field($bit);
        }
    };
    (each $map:ident, $place:ident, $field:ident, $ty:ty, $bit:expr) => {
        $map.next_value_seed($crate::macros::EachInPlace(&mut $place.$field))?
    };
    ($other:ident $map:ident, $place:ident, $field:ident, $ty:ty, $bit:expr) => {
        $map.next_value_seed($crate::macros::InPlace(&mut $place.$field))?
    };
}

/// After the members were read: a missing `req` field is an error, the field of another
/// missing member is reset (`None`, or the default, noted as missing).
macro_rules! __finish {
    (opt $place:ident, $field:ident, $key:expr, $seen:ident, $bit:expr) => {
        if $seen & (1u128 << $bit) == 0 {
            $place.$field = None;
        }
    };
    (req $place:ident, $field:ident, $key:expr, $seen:ident, $bit:expr) => {
        if $seen & (1u128 << $bit) == 0 {
            return Err(<A::Error as ::serde::de::Error>::missing_field($key));
        }
    };
    ($def:ident $place:ident, $field:ident, $key:expr, $seen:ident, $bit:expr) => {
        if $seen & (1u128 << $bit) == 0 {
            $place.$field = Default::default();
            $place.extra.set_null_field($bit);
        }
    };
}

/// Declares a string enum with known values and an `Other(String)` catch-all, so a value a
/// newer server sends is kept rather than rejected. The first variant is the `Default`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $value, )+
                    Self::Other(s) => s,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $crate::macros::__first!($(Self::$variant),+)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $value => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $value => Self::$variant, )+
                    _ => Self::Other(s),
                }
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let key = $crate::macros::Key::deserialize(deserializer)?;
                Ok(Self::from(key.as_str()))
            }
        }
    };
}

macro_rules! __first {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}

pub(crate) use {
    __de, __def_absent, __field_ty, __finish, __first, __key, __present, __ser, __set_null,
    __written, model, string_enum,
};

use std::borrow::Cow;

/// Whether `value` is its type's default.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Deserializes a member into its field, where the field lies: a model overwrites
/// itself ([`Deserialize::deserialize_in_place`](serde::Deserialize::deserialize_in_place)),
/// rather than being built elsewhere and moved (a chunk's models are hundreds of
/// bytes, moved several times on their way up through `serde_json`).
pub(crate) struct InPlace<'a, T>(pub(crate) &'a mut T);

impl<'de, T: serde::Deserialize<'de>> serde::de::DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        T::deserialize_in_place(deserializer, self.0)
    }
}

/// Deserializes an optional member into its field: `null` makes it `None`; a value
/// overwrites the one already there in place (reusing its allocations), or is built
/// when there is none. Returns whether the member was not `null`.
pub(crate) struct OptInPlace<'a, T>(pub(crate) &'a mut Option<T>);

impl<'de, T: serde::Deserialize<'de>> serde::de::DeserializeSeed<'de> for OptInPlace<'_, T> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for OptInPlace<'_, T> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<bool, E> {
        *self.0 = None;
        Ok(false)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        self.visit_none()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        match self.0 {
            Some(value) => T::deserialize_in_place(deserializer, value)?,
            None => *self.0 = Some(T::deserialize(deserializer)?),
        }
        Ok(true)
    }
}

/// Deserializes an array into a `Vec` of models, each filled in where it lies in the
/// `Vec` ([`InPlace`]); `serde`'s own `Vec` builds each element elsewhere and moves it.
pub(crate) struct EachInPlace<'a, T>(pub(crate) &'a mut Vec<T>);

impl<'de, T: serde::Deserialize<'de> + Default> serde::de::DeserializeSeed<'de>
    for EachInPlace<'_, T>
{
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: serde::Deserialize<'de> + Default> serde::de::Visitor<'de> for EachInPlace<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = self.0;
        if !items.is_empty() {
            // The elements already there are overwritten in place, keeping their
            // allocations. The end of the array is usually next: looking for it with
            // `next_element` builds nothing, where a slot for one more would be built
            // and dropped.
            for i in 0..items.len() {
                if seq.next_element_seed(InPlace(&mut items[i]))?.is_none() {
                    items.truncate(i);
                    return Ok(());
                }
            }
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            return Ok(());
        }
        loop {
            // Not `push`: it builds the default elsewhere and moves it in.
            let last = items.len();
            items.resize_with(last + 1, T::default);
            if seq.next_element_seed(InPlace(&mut items[last]))?.is_none() {
                items.truncate(last);
                return Ok(());
            }
        }
    }
}

/// A map key or short string, borrowed from the input when it can be.

#[derive(Debug)]
pub(crate) struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}
