//! How the dashboard's server functions answer, and the one resource type that holds the answers.
//!
//! Every answer travels as a [`Packed`] value: the typed value in postcard (a compact binary serde
//! format). A server function's response body is those bytes ([`PackedEncoding`], errors too);
//! a resource's value goes into the page's hydration script as text ([`HeldCodec`]).
//! The reason is the browser bundle. Read as JSON, every answer type compiled its own JSON reader
//! into the wasm (dozens of them, 3 to 8 KB each), and every resource's type its own copy of the
//! reactive machinery. Here the wasm holds no JSON reader, a short postcard reader per type, and
//! one resource type for all pages ([`Answer`] erases the answer's type until the page reads it).
//! The `/v1` read API is JSON and is not affected.

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, percent_encode};
use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

/// A server function's answer of type `T`, encoded once on the server (`Packed<()>`: of a type the
/// holder no longer names; see [`Answer`]).
pub struct Packed<T> {
    bytes: Vec<u8>,
    kind: PhantomData<fn() -> T>,
}

impl<T> Packed<T> {
    fn of_bytes(bytes: Vec<u8>) -> Self {
        Packed { bytes, kind: PhantomData }
    }

    /// The same bytes under another type: `()` to forget it, or the type they were made from.
    fn retype<U>(self) -> Packed<U> {
        Packed::of_bytes(self.bytes)
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
        Ok(Packed::of_bytes(bytes))
    }
}

impl<T: DeserializeOwned> Packed<T> {
    /// Decodes the value. An error means the bytes were not made by [`Packed::new`] for a `T` of
    /// this build (a page open across an upgrade): the page shows it and a reload fixes it.
    pub fn unpack(&self) -> Result<T, AppError> {
        whole(&self.bytes).map_err(|_| AppError::Unreadable)
    }
}

impl<T> Clone for Packed<T> {
    fn clone(&self) -> Self {
        Packed::of_bytes(self.bytes.clone())
    }
}

impl<T> PartialEq for Packed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} bytes)", self.bytes.len())
    }
}

/// As bytes, for [`HeldCodec`].
impl<T> Serialize for Packed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.bytes)
    }
}

impl<'de, T> Deserialize<'de> for Packed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor).map(Packed::of_bytes)
    }
}

/// A server function's response body (or error) as postcard bytes: `#[server(output = PackedOutput)]`.
pub struct PackedEncoding;

/// The output encoding of the dashboard's server functions.
pub type PackedOutput = leptos::server_fn::codec::Post<PackedEncoding>;

impl ContentType for PackedEncoding {
    const CONTENT_TYPE: &'static str = "application/octet-stream";
}

impl FormatType for PackedEncoding {
    const FORMAT_TYPE: Format = Format::Binary;
}

impl<T> Encodes<Packed<T>> for PackedEncoding {
    type Error = std::convert::Infallible;

    fn encode(output: &Packed<T>) -> Result<Bytes, Self::Error> {
        Ok(Bytes::from(output.bytes.clone()))
    }
}

impl<T> Decodes<Packed<T>> for PackedEncoding {
    type Error = std::convert::Infallible;

    fn decode(bytes: Bytes) -> Result<Packed<T>, Self::Error> {
        Ok(Packed::of_bytes(bytes.to_vec()))
    }
}

impl Encodes<AppError> for PackedEncoding {
    type Error = postcard::Error;

    fn encode(error: &AppError) -> Result<Bytes, Self::Error> {
        postcard::to_allocvec(error).map(Bytes::from)
    }
}

impl Decodes<AppError> for PackedEncoding {
    type Error = postcard::Error;

    fn decode(bytes: Bytes) -> Result<AppError, Self::Error> {
        whole(&bytes)
    }
}

/// What every [`Answer`] holds: the one resource type of the dashboard.
type Held = Result<Packed<()>, AppError>;

/// How a [`Held`] value goes from the server's render into the page's hydration script and back:
/// its postcard bytes, percent-encoded where they are not printable ASCII (and `%`, `<`). A
/// rendered view is mostly ASCII text, so it stays readable there and compresses with the page.
pub struct HeldCodec;

/// Bytes written as `%XX` in the hydration script: `<` too, so it can't close the script.
const ESCAPED: &AsciiSet = &CONTROLS.add(b'%').add(b'<');

impl Encoder<Held> for HeldCodec {
    type Error = postcard::Error;
    type Encoded = String;

    fn encode(held: &Held) -> Result<String, Self::Error> {
        postcard::to_allocvec(held).map(|bytes| percent_encode(&bytes, ESCAPED).to_string())
    }
}

impl Decoder<Held> for HeldCodec {
    type Error = postcard::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<Held, Self::Error> {
        whole(&percent_decode_str(text).collect::<Vec<u8>>())
    }
}

/// A value that is all of `bytes` (postcard's `from_bytes` ignores bytes after the value).
fn whole<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    match postcard::take_from_bytes(bytes)? {
        (value, []) => Ok(value),
        _ => Err(postcard::Error::DeserializeBadEncoding),
    }
}

type Fetch<S> = Arc<dyn Fn(S) -> Pin<Box<dyn Future<Output = Held> + Send>> + Send + Sync>;

/// A resource of a server function's answer of type `T`, loaded on the server and hydrated like
/// any resource; `.await` it for the decoded value.
pub struct Answer<T> {
    held: Resource<Held, HeldCodec>,
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
fn held_resource<S>(source: Box<dyn Fn() -> S + Send + Sync>, fetch: Fetch<S>) -> Resource<Held, HeldCodec>
where
    S: PartialEq + Clone + Send + Sync + 'static,
{
    Resource::new_with_options(source, move |s| fetch(s), false)
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
    use leptos::server::{FromEncodedStr, IntoEncodedString};

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
    fn an_answer_reads_back_equal_through_a_response_body_and_a_hydration_script() {
        let packed = Packed::new(&sample()).expect("pack");
        // A server function's response body.
        let body = <PackedEncoding as Encodes<Packed<Sample>>>::encode(&packed).expect("encode");
        let back = <PackedEncoding as Decodes<Packed<Sample>>>::decode(body).expect("decode");
        assert_eq!(back.unpack().expect("unpack"), sample());
        // A resource's value in the page, as leptos writes it and reads it back.
        for held in [Ok(back.clone().retype::<()>()), Err(AppError::Internal)] {
            let text = HeldCodec::encode(&held).expect("encode").into_encoded_string();
            assert!(text.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{text}");
            assert!(!text.contains('<'), "{text}");
            let again = HeldCodec::decode(str::from_encoded_str(&text).expect("text")).expect("decode");
            assert_eq!(again, held);
        }
        let again =
            HeldCodec::decode(&HeldCodec::encode(&Ok(back.retype())).expect("encode")).expect("decode");
        assert_eq!(again.expect("ok").retype::<Sample>().unpack().expect("unpack"), sample());
    }

    #[test]
    fn an_error_travels_as_itself() {
        for error in [AppError::Internal, AppError::BadParam { param: "by".into(), message: "empty".into() }]
        {
            let body = <PackedEncoding as Encodes<AppError>>::encode(&error).expect("encode");
            assert_eq!(<PackedEncoding as Decodes<AppError>>::decode(body.clone()).expect("decode"), error);
            // A body that only starts like one (a proxy's error page, say) is not an error value.
            let longer = Bytes::from([&body[..], b"<html>"].concat());
            assert!(<PackedEncoding as Decodes<AppError>>::decode(longer).is_err());
        }
        // Nor is a hydration value with bytes after it.
        let held: Held = Err(AppError::Internal);
        let text = HeldCodec::encode(&held).expect("encode");
        assert_eq!(HeldCodec::decode(&text).expect("decode"), held);
        assert!(HeldCodec::decode(&format!("{text}%00")).is_err());
    }

    #[test]
    fn bytes_that_are_not_an_answer_of_that_type_are_an_error_not_a_panic() {
        let packed = Packed::new(&sample()).expect("pack");
        let half = packed.bytes[..packed.bytes.len() / 2].to_vec();
        for bad in [vec![], vec![0xff; 3], half] {
            let err = Packed::<Sample>::of_bytes(bad.clone()).unpack().expect_err("unreadable");
            assert_eq!(err, AppError::Unreadable, "{bad:?}");
        }
        // A value of another type: trailing bytes or a wrong shape, never a wrong value.
        let small = Packed::new(&7u8).expect("pack");
        assert!(small.retype::<Sample>().unpack().is_err());
        assert!(packed.retype::<u8>().unpack().is_err());
    }
}
