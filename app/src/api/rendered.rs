//! Parts of pages that only display (detail pages, tables) rendered on the server and sent as
//! markup, so the browser bundle compiles none of their views.
//!
//! The server renders the same Leptos view it always did, with `to_html` (text and attributes are
//! escaped there), and the page puts the markup inside a `<div>` with `inner_html` ([`ServerPart`]). Links in it
//! are plain `<a href>`: the router handles their clicks like any other link, so navigation stays
//! client-side. Interactive parts (filters, forms, live refresh) stay components.

use super::Answer;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Markup the server rendered from a view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered(String);

#[cfg(feature = "ssr")]
impl Rendered {
    /// Renders `view` to HTML under a root owner of its own (disposed after): the same markup
    /// whether it is called while the server renders a page or when the browser calls the
    /// server function, since nothing of the page's owner (contexts, hydration ids) reaches it.
    pub fn of<V: IntoView + 'static>(view: impl FnOnce() -> V) -> Self {
        let outer = Owner::current();
        let owner = Owner::new_root(None);
        let html = owner.with(|| view().into_view().to_html());
        owner.unset_with_forced_cleanup();
        if let Some(outer) = outer {
            outer.set();
        }
        Rendered(html)
    }

    /// What a detail page says for an id with nothing behind it (in this project): "No trace
    /// with this id."
    pub fn not_found(what: &str) -> Self {
        let text = format!("No {what} with this id.");
        Rendered::of(move || view! { <p class="error" role="alert">{text}</p> })
    }

    /// The markup, for tests.
    pub fn html(&self) -> &str {
        &self.0
    }
}

/// A part of a page the server renders: "Loading…" (unless `quiet`) until its answer is there,
/// then the markup in a `<div class="rendered">`, or the error.
#[component]
pub fn ServerPart(
    /// The server function's answer.
    answer: Answer<Rendered>,
    /// No "Loading…" while it loads.
    #[prop(optional)]
    quiet: bool,
) -> impl IntoView {
    view! {
        <Transition fallback=move || (!quiet).then(|| view! { <p class="loading">"Loading…"</p> })>
            {move || Suspend::new(async move {
                match answer.await {
                    Ok(html) => view! { <div class="rendered" inner_html=html.0></div> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_when_rendered() {
        let evil = "<img src=x onerror=alert(1)>\"&";
        let html = Rendered::of(|| view! { <p title=evil>{evil}</p> });
        assert!(!html.html().contains("<img"), "{}", html.html());
        assert!(html.html().contains("&lt;img src=x onerror=alert(1)&gt;"), "{}", html.html());
        assert!(html.html().starts_with("<p title=\""), "{}", html.html());
    }

    #[test]
    fn rendering_leaves_the_callers_owner_as_it_was() {
        let page = Owner::new_root(None);
        provide_context(7u8);
        let html = Rendered::of(
            || view! { <p>{use_context::<u8>().map_or("none".to_string(), |v| v.to_string())}</p> },
        );
        assert!(html.html().contains(">none<"), "the page's contexts leak in: {}", html.html());
        assert_eq!(Owner::current(), Some(page.clone()));
        assert_eq!(use_context::<u8>(), Some(7));
        page.unset();
    }
}
