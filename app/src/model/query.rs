//! The query string of a list view (dashboard URL and read API): parsing with errors that name
//! the parameter, and building links. Pure functions, used on both sides.

use super::users::{DEFAULT_PAGE, Dir, MAX_PAGE, UserSort, Window};
use serde::{Deserialize, Serialize};

/// A rejected query parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.param, self.message)
    }
}

fn bad(param: &str, message: impl Into<String>) -> ParamError {
    ParamError { param: param.to_string(), message: message.into() }
}

/// What the spend-over-time chart stacks by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    #[default]
    Model,
    Provider,
}

impl Stack {
    pub fn as_str(self) -> &'static str {
        match self {
            Stack::Model => "model",
            Stack::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Stack::Model, Stack::Provider].into_iter().find(|k| k.as_str() == s)
    }
}

/// Most tag filters one query may carry.
pub const MAX_TAG_FILTERS: usize = 16;

/// The read API's cursor for the rows from `offset` on, in the window `[from_ms, to_ms)`.
pub fn cursor(offset: u32, from_ms: i64, to_ms: i64) -> String {
    format!("{offset}.{from_ms}.{to_ms}")
}

/// `offset.from_ms.to_ms` (from [`cursor`]), or a bare offset: an offset of 1–9 digits, bounds
/// of 1–15 digits (the read API's document gives the same pattern).
fn parse_cursor(v: &str) -> Option<(u32, Option<(i64, i64)>)> {
    let number = |s: &str, most: usize| {
        (!s.is_empty() && s.len() <= most && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())?
    };
    let mut parts = v.split('.');
    let offset = u32::try_from(number(parts.next()?, 9)?).ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Some((offset, None)),
        (Some(f), Some(t), None) => Some((offset, Some((number(f, 15)?, number(t, 15)?)))),
        _ => None,
    }
}

/// Adds one tag filter, checking its size and the filter count.
fn push_tag(tags: &mut Vec<(String, String)>, param: &str, key: &str, value: &str) -> Result<(), ParamError> {
    if !(1..=64).contains(&key.chars().count()) || value.chars().count() > 512 {
        return Err(bad(param, "tag keys are 1-64 and values at most 512 characters"));
    }
    if tags.len() == MAX_TAG_FILTERS {
        return Err(bad(param, format!("at most {MAX_TAG_FILTERS} tag filters")));
    }
    tags.push((key.to_string(), value.to_string()));
    Ok(())
}

/// The columns a list view sorts by.
pub trait SortKey: Copy + Default + PartialEq + Eq + std::fmt::Debug + 'static {
    /// Every column, for parsing and error messages.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// The direction a first click on the column sorts in.
    fn natural_dir(self) -> Dir;
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl SortKey for UserSort {
    const ALL: &'static [Self] = &UserSort::ALL;
    fn as_str(self) -> &'static str {
        UserSort::as_str(self)
    }
    fn natural_dir(self) -> Dir {
        UserSort::natural_dir(self)
    }
}

/// Everything a list view is narrowed and ordered by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewParams<S> {
    pub window: Window,
    /// RFC 3339 bounds that replace `window` when given (both required).
    pub from: Option<String>,
    pub to: Option<String>,
    /// `tag.<key>=<value>` filters, AND-ed, in URL order.
    pub tags: Vec<(String, String)>,
    /// Only this end user (`user=`).
    pub user: Option<String>,
    /// Only calls to this provider (`provider=`) / made by this agent (`agent=`).
    pub provider: Option<String>,
    pub agent: Option<String>,
    /// Text search (`q=`): the Traces view matches it in route tags.
    pub q: Option<String>,
    /// What the Overview's spend chart stacks by (`stack=model|provider`).
    pub stack: Stack,
    /// The tag key the Segments view groups by (`by=plan`).
    pub by: Option<String>,
    pub sort: S,
    pub dir: Dir,
    pub limit: u32,
    /// Rows to skip (the read API's `cursor`, the dashboard's `page`).
    pub offset: u32,
    /// The exact bounds (ms) a cursor pins, so later pages of a rolling window read the same
    /// range as the first even as the clock moves on.
    pub pin: Option<(i64, i64)>,
}

/// The Users view's parameters.
pub type UsersParams = ViewParams<UserSort>;

impl<S: SortKey> ViewParams<S> {
    /// Parses decoded `(key, value)` pairs. `page` (1-based) is the dashboard's pagination,
    /// `cursor` the API's; unknown parameters are rejected so typos don't silently widen a view.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ParamError> {
        let mut p = ViewParams::<S> {
            window: Window::default(),
            from: None,
            to: None,
            tags: Vec::new(),
            user: None,
            provider: None,
            agent: None,
            q: None,
            stack: Stack::default(),
            by: None,
            sort: S::default(),
            dir: Dir::default(),
            limit: DEFAULT_PAGE,
            offset: 0,
            pin: None,
        };
        let mut sort_given = false;
        let mut dir_given = false;
        let mut page = None;
        let mut tag_params = 0;
        for (k, v) in pairs {
            match k {
                "window" => p.window = Window::parse(v).ok_or_else(|| bad(k, "must be 1d, 7d or 28d"))?,
                // An empty bound is an unfilled date field of the range form: no range.
                "from" => p.from = (!v.is_empty()).then(|| v.to_string()),
                "to" => p.to = (!v.is_empty()).then(|| v.to_string()),
                "by" if (1..=64).contains(&v.chars().count()) => p.by = Some(v.to_string()),
                "by" => return Err(bad(k, "must be a tag key of 1 to 64 characters")),
                "stack" => p.stack = Stack::parse(v).ok_or_else(|| bad(k, "must be model or provider"))?,
                "user" if (1..=512).contains(&v.chars().count()) => p.user = Some(v.to_string()),
                "user" => return Err(bad(k, "must be 1 to 512 characters")),
                "provider" | "agent" if !(1..=256).contains(&v.chars().count()) => {
                    return Err(bad(k, "must be 1 to 256 characters"));
                }
                "provider" => p.provider = Some(v.to_string()),
                "agent" => p.agent = Some(v.to_string()),
                "q" if v.chars().count() <= 256 => p.q = (!v.is_empty()).then(|| v.to_string()),
                "q" => return Err(bad(k, "must be at most 256 characters")),
                "sort" => {
                    p.sort = S::parse(v).ok_or_else(|| {
                        let all: Vec<&str> = S::ALL.iter().map(|s| s.as_str()).collect();
                        bad(k, format!("must be one of {}", all.join(", ")))
                    })?;
                    sort_given = true;
                }
                "dir" => {
                    p.dir = Dir::parse(v).ok_or_else(|| bad(k, "must be asc or desc"))?;
                    dir_given = true;
                }
                "limit" => {
                    p.limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| bad(k, format!("must be an integer from 1 to {MAX_PAGE}")))?;
                }
                "cursor" => {
                    let (offset, pin) =
                        parse_cursor(v).ok_or_else(|| bad(k, "is not a cursor returned by this API"))?;
                    p.offset = offset;
                    p.pin = pin;
                }
                "page" => {
                    page = Some(
                        v.parse::<u32>()
                            .ok()
                            .filter(|n| *n >= 1 && *n <= 1_000_000)
                            .ok_or_else(|| bad(k, "must be a positive integer"))?,
                    );
                }
                // `tag=plan=pro` is `tag.plan=pro`: what the filter bar's one-field form sends.
                // An empty `tag=` is ignored, but counts toward the most `tag` parameters (the
                // document's `maxItems`).
                "tag" if v.is_empty() => {
                    tag_params += 1;
                    if tag_params > MAX_TAG_FILTERS {
                        return Err(bad(k, format!("at most {MAX_TAG_FILTERS} tag parameters")));
                    }
                }
                "tag" => {
                    tag_params += 1;
                    if tag_params > MAX_TAG_FILTERS {
                        return Err(bad(k, format!("at most {MAX_TAG_FILTERS} tag parameters")));
                    }
                    let (key, value) = v.split_once('=').ok_or_else(|| bad(k, "must look like key=value"))?;
                    push_tag(&mut p.tags, k, key.trim_matches(' '), value.trim())?;
                }
                _ => match k.strip_prefix("tag.") {
                    Some(key) => push_tag(&mut p.tags, k, key, v)?,
                    None => return Err(bad(k, "unknown parameter")),
                },
            }
        }
        if sort_given && !dir_given {
            p.dir = p.sort.natural_dir();
        }
        if let Some(page) = page {
            p.offset = (page - 1).saturating_mul(p.limit);
        }
        Ok(p)
    }

    /// The same filters (window, tags, user) for another view, with its default order.
    pub fn for_view<T: SortKey>(&self) -> ViewParams<T> {
        ViewParams {
            window: self.window,
            from: self.from.clone(),
            to: self.to.clone(),
            tags: self.tags.clone(),
            user: self.user.clone(),
            provider: self.provider.clone(),
            agent: self.agent.clone(),
            q: None,
            stack: self.stack,
            by: None,
            sort: T::default(),
            dir: Dir::default(),
            limit: self.limit,
            offset: 0,
            pin: None,
        }
    }

    /// Parses a raw query string (`a=1&b=2`, percent-encoded, `+` as space).
    pub fn parse_query(query: &str) -> Result<Self, ParamError> {
        let pairs = decode_pairs(query);
        Self::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// 1-based page number of this offset.
    pub fn page(&self) -> u32 {
        self.offset / self.limit.max(1) + 1
    }

    /// The parameters that differ from the defaults, as decoded `(key, value)` pairs in URL
    /// order. `page` is left out when `with_page` is false (forms that restart at page 1).
    pub fn pairs(&self, with_page: bool) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: &str| out.push((k.to_string(), v.to_string()));
        if self.window != Window::default() {
            push("window", self.window.as_str());
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to) {
            push("from", from);
            push("to", to);
        }
        if let Some(user) = &self.user {
            push("user", user);
        }
        if let Some(provider) = &self.provider {
            push("provider", provider);
        }
        if let Some(agent) = &self.agent {
            push("agent", agent);
        }
        for (k, v) in &self.tags {
            push(&format!("tag.{k}"), v);
        }
        if let Some(q) = &self.q {
            push("q", q);
        }
        if self.stack != Stack::default() {
            push("stack", self.stack.as_str());
        }
        if let Some(by) = &self.by {
            push("by", by);
        }
        if self.sort != S::default() || self.dir != Dir::default() {
            push("sort", self.sort.as_str());
            push("dir", self.dir.as_str());
        }
        if with_page && self.offset > 0 {
            push("page", &self.page().to_string());
        }
        out
    }

    /// The dashboard query string for these parameters, leaving defaults out.
    pub fn to_query(&self) -> String {
        query_string(&self.pairs(true))
    }

    /// The same view in another window, back on page 1.
    pub fn with_window(&self, window: Window) -> Self {
        ViewParams { window, from: None, to: None, offset: 0, ..self.clone() }
    }

    /// The same view sorted by `sort`: flips the direction when already sorted by it.
    pub fn with_sort(&self, sort: S) -> Self {
        let dir = if self.sort == sort { self.dir.flip() } else { sort.natural_dir() };
        ViewParams { sort, dir, offset: 0, ..self.clone() }
    }

    /// The same view at another offset.
    pub fn with_offset(&self, offset: u32) -> Self {
        ViewParams { offset, ..self.clone() }
    }
}

/// `?k=v&...` of decoded pairs, or "" when there are none.
pub fn query_string(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// Percent-encodes a value for a URL path segment or query value (RFC 3986 unreserved
/// characters stay as they are; a space is `%20`, which both a path and a query read as a space).
pub fn encode(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

/// Splits and decodes an `application/x-www-form-urlencoded` query string into pairs (empty
/// parts skipped, `+` a space, invalid UTF-8 replaced).
pub fn decode_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_url() {
        let p =
            UsersParams::parse_query("window=7d&tag.plan=pro&tag.org=acme%20corp&sort=tokens&dir=asc&page=3")
                .expect("valid");
        assert_eq!(p.window, Window::Week);
        assert_eq!(p.tags, vec![("plan".into(), "pro".into()), ("org".into(), "acme corp".into())]);
        assert_eq!((p.sort, p.dir, p.offset), (UserSort::Tokens, Dir::Asc, 100));
        assert_eq!(UsersParams::parse_query(&p.to_query()), Ok(p));
    }

    #[test]
    fn errors_name_the_parameter() {
        assert_eq!(UsersParams::parse_query("window=3d").map_err(|e| e.param), Err("window".into()));
        assert_eq!(UsersParams::parse_query("limit=0").map_err(|e| e.param), Err("limit".into()));
        assert_eq!(UsersParams::parse_query("bogus=1").map_err(|e| e.param), Err("bogus".into()));
        // A cursor is digits as the API makes them: an offset of at most 9, bounds of at most 15.
        for bad in ["0.-5.5", "+5", "1234567890", "0.1", "0.1.2.3", "0.1234567890123456.1"] {
            assert_eq!(
                UsersParams::parse_query(&format!("cursor={bad}")).map_err(|e| e.param),
                Err("cursor".into())
            );
        }
        assert_eq!(UsersParams::parse_query("cursor=999999999.0.5").map(|p| p.offset), Ok(999_999_999));
        // Empty `tag=` fields are ignored but count toward the document's `maxItems` (16).
        let many = |n: usize| vec!["tag="; n].join("&");
        assert!(UsersParams::parse_query(&many(16)).is_ok());
        assert_eq!(UsersParams::parse_query(&many(17)).map_err(|e| e.param), Err("tag".into()));
    }

    #[test]
    fn form_fields_read_like_their_url_forms() {
        let p = UsersParams::parse_query("tag=plan%3Dpro&from=&to=&stack=provider").expect("valid");
        assert_eq!(p.tags, vec![("plan".into(), "pro".into())]);
        assert_eq!((&p.from, &p.to), (&None, &None));
        assert_eq!(p.stack, Stack::Provider);
        assert_eq!(p.to_query(), "?tag.plan=pro&stack=provider");
        assert_eq!(UsersParams::parse_query("tag=plan").map_err(|e| e.param), Err("tag".into()));
        assert_eq!(UsersParams::parse_query("stack=day").map_err(|e| e.param), Err("stack".into()));
    }

    #[test]
    fn sorting_a_column_twice_flips_it() {
        let p = UsersParams::default().with_sort(UserSort::Tokens);
        assert_eq!(p.dir, Dir::Desc);
        assert_eq!(p.with_sort(UserSort::Tokens).dir, Dir::Asc);
        assert_eq!(p.with_sort(UserSort::User).dir, Dir::Asc);
    }

    #[test]
    fn decoding_handles_odd_input() {
        let one = |q: &str| decode_pairs(q).into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        assert_eq!(one("a=a%3Cb%3E+c"), ["a=a<b> c"]);
        assert_eq!(one("?a=100%&&b=%zz&c"), ["a=100%", "b=%zz", "c="]);
        assert_eq!(one("tag=plan%3Dpro"), ["tag=plan=pro"]);
        assert_eq!(encode("<img src=x>"), "%3Cimg%20src%3Dx%3E");
        assert_eq!(encode("dave@example.com/ä"), "dave%40example.com%2F%C3%A4");
    }
}
