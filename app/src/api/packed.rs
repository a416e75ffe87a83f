//! How the dashboard's server functions answer, and the one resource type that holds the answers.
//!
//! Every answer travels as a [`Packed`] value: the typed value in postcard (a compact binary serde
//! format), written as base64 text, so to JSON and to the hydration script it is a plain string.
//! The reason is the browser bundle. Read as JSON, every answer type compiled its own JSON reader
//! into the wasm (dozens of them, 3 to 8 KB each), and every resource's type its own copy of the
//! reactive machinery. Here the wasm reads one JSON string per answer and a short postcard reader
//! per type, and all pages share one resource type ([`Answer`] erases the answer's type until the
//! page reads it). The `/v1` read API is JSON and is not affected.

use crate::error::AppError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as BASE64;
use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

/// A server function's answer of type `T`, encoded once on the server (`Packed<()>`: of a type the
/// holder no longer names; see [`Answer`]).
pub struct Packed<T> {
    text: String,
    kind: PhantomData<fn() -> T>,
}

impl<T> Packed<T> {
    fn of_text(text: String) -> Self {
        Packed { text, kind: PhantomData }
    }

    /// The same text under another type: `()` to forget it, or the type it was made from.
    fn retype<U>(self) -> Packed<U> {
        Packed::of_text(self.text)
    }
}

#[cfg(feature = "ssr")]
impl<T: Serialize> Packed<T> {
    /// Encodes `value`. Fails only for a type postcard can't write (none of the answer types).
    pub fn new(value: &T) -> Result<Self, AppError> {
        let bytes = postcard::to_allocvec(value).map_err(|e| {
            tracing::error!(error = %e, "encoding a server function's answer");
            AppError::Internal
        })?;
        Ok(Packed::of_text(BASE64.encode(bytes)))
    }
}

impl<T: DeserializeOwned> Packed<T> {
    /// Decodes the value. An error means the text was not made by [`Packed::new`] for a `T` of
    /// this build (a page open across an upgrade): the page shows it and a reload fixes it.
    pub fn unpack(&self) -> Result<T, AppError> {
        let unreadable = |what: &str| {
            AppError::Transport(format!("the server's answer is unreadable ({what}); reload the page"))
        };
        let bytes = BASE64.decode(&self.text).map_err(|_| unreadable("base64"))?;
        let (value, rest) = postcard::take_from_bytes(&bytes).map_err(|_| unreadable("postcard"))?;
        if rest.is_empty() { Ok(value) } else { Err(unreadable("trailing bytes")) }
    }
}

impl<T> Clone for Packed<T> {
    fn clone(&self) -> Self {
        Packed::of_text(self.text.clone())
    }
}

impl<T> PartialEq for Packed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<T> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} base64 chars)", self.text.len())
    }
}

impl<T> Serialize for Packed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Packed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Packed::of_text)
    }
}

/// What every [`Answer`] holds: the one resource type of the dashboard.
type Held = Result<Packed<()>, AppError>;

type Fetch<S> = Arc<dyn Fn(S) -> Pin<Box<dyn Future<Output = Held> + Send>> + Send + Sync>;

/// A resource of a server function's answer of type `T`, loaded on the server and hydrated like
/// any resource; `.await` it for the decoded value.
pub struct Answer<T> {
    held: Resource<Held>,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Answer<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Answer<T> {}

impl<T: DeserializeOwned + 'static> Answer<T> {
    /// Like [`Resource::new`]: `fetch` runs whenever `source`'s value changes.
    #[track_caller]
    pub fn new<S, Fut>(
        source: impl Fn() -> S + Send + Sync + 'static,
        fetch: impl Fn(S) -> Fut + Send + Sync + 'static,
    ) -> Self
    where
        S: PartialEq + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Packed<T>, AppError>> + Send + 'static,
    {
        let fetch: Fetch<S> = Arc::new(move |s| {
            let answer = fetch(s);
            Box::pin(async move { answer.await.map(Packed::retype) })
        });
        Answer { held: held_resource(Box::new(source), fetch), kind: PhantomData }
    }

    /// Loads the answer again (same source).
    pub fn refetch(&self) {
        self.held.refetch();
    }
}

/// The resource behind an [`Answer`], built from trait objects so it is compiled once per source
/// type rather than once per answer type.
#[track_caller]
fn held_resource<S>(source: Box<dyn Fn() -> S + Send + Sync>, fetch: Fetch<S>) -> Resource<Held>
where
    S: PartialEq + Clone + Send + Sync + 'static,
{
    Resource::new(source, move |s| fetch(s))
}

impl<T: DeserializeOwned + 'static> IntoFuture for Answer<T> {
    type Output = Result<T, AppError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let held = self.held;
        Box::pin(async move { held.await.and_then(|packed| packed.retype::<T>().unpack()) })
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::error::AppError;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        nano: i64,
        tokens: [u64; 4],
        note: Option<String>,
        rows: Vec<(String, u64)>,
        outcome: Result<u32, AppError>,
    }

    fn sample() -> Sample {
        Sample {
            name: "user \"ü\" <7>".into(),
            nano: -1_234_567_890_123,
            tokens: [0, 1, u64::MAX, 42],
            note: None,
            rows: vec![("a".into(), 1), ("".into(), u64::MAX)],
            outcome: Err(AppError::BadParam { param: "user".into(), message: "too long".into() }),
        }
    }

    #[test]
    fn a_packed_answer_reads_back_equal_through_json() {
        let packed = Packed::new(&sample()).expect("pack");
        // The way it travels: a JSON string (server function body, hydration script).
        let json = serde_json::to_string(&packed).expect("json");
        assert!(json.starts_with('"') && json.ends_with('"'), "{json}");
        let back: Packed<Sample> = serde_json::from_str(&json).expect("json back");
        assert_eq!(back.unpack().expect("unpack"), sample());
        // Erased and typed again, as an Answer does.
        assert_eq!(back.retype::<()>().retype::<Sample>().unpack().expect("unpack"), sample());
    }

    #[test]
    fn text_that_is_not_an_answer_of_that_type_is_an_error_not_a_panic() {
        let packed = Packed::new(&sample()).expect("pack");
        for bad in ["", "!!!", "AAAA", &packed.text[..packed.text.len() / 2]] {
            let err = Packed::<Sample>::of_text(bad.to_string()).unpack().expect_err(bad);
            assert!(matches!(err, AppError::Transport(_)), "{bad}: {err:?}");
        }
        // A value of another type: trailing bytes or a wrong shape, never a wrong value.
        let small = Packed::new(&7u8).expect("pack");
        assert!(small.retype::<Sample>().unpack().is_err());
        assert!(packed.retype::<u8>().unpack().is_err());
    }
}
