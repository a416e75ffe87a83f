//! What an empty Users view says: the four usual reasons no user shows up.

use leptos::prelude::*;

/// Explains why no users are listed, and what to check.
#[component]
pub fn EmptyState() -> impl IntoView {
    view! {
        <div class="empty" role="status">
            <h2>"No users in this window"</h2>
            <p>"Events are attributed to a user by the " <code>"userId"</code> " tag. The usual causes:"</p>
            <ol>
                <li>"No " <code>"withTrace"</code> " around the request: LLM calls run outside any trace carry no tags."</li>
                <li>"No " <code>"tags.userId"</code> " passed to " <code>"withTrace"</code> ": the calls are counted, but not per user."</li>
                <li>"The window is too narrow: try 28d, or check the app's clock."</li>
                <li>"A custom redaction layer strips tags before they are sent."</li>
            </ol>
        </div>
    }
}
