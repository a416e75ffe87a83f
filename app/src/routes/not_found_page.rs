//! The page for paths nothing else answers.

use leptos::prelude::*;

/// "Not found", with a way back.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="page">
            <h1>"Not found"</h1>
            <p>"Nothing lives at this address. " <a href="/ai-apps/users">"Go to Users"</a></p>
        </section>
    }
}
