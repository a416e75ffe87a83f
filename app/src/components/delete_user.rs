//! "Delete this user": a confirmation that says what goes, then a POST (with the CSRF token)
//! that removes every event, trace and rollup contribution of the user.

use super::account::use_session;
use crate::api::Answer;
use crate::api::get_user_footprint;
use crate::components::users_table::count;
use crate::model::query::encode;
use leptos::prelude::*;

/// The deletion control of a user's page.
#[component]
pub fn DeleteUser(#[prop(into)] user_id: Signal<String>) -> impl IntoView {
    let footprint = Answer::new(move || user_id.get(), get_user_footprint);
    let session = use_session();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let (Ok(f), Ok(s)) = (footprint.await, session.await) else { return ().into_any() };
                let user = user_id.get();
                let action = format!("/ai-apps/users/{}/delete", encode(&user));
                view! {
                    <details class="danger">
                        <summary>"Delete this user…"</summary>
                        <p role="note">
                            {format!("This permanently removes {} events and {} traces of ", count(f.events), count(f.traces))}
                            <strong>{user.clone()}</strong>
                            " from every view, total and rollup, and scrubs them from the database file. Everyone else's figures stay as they are. It can't be undone."
                        </p>
                        <form method="post" action=action>
                            <input type="hidden" name="csrf" value=s.csrf/>
                            <button type="submit" class="danger">"Delete user and their data"</button>
                        </form>
                    </details>
                }
                .into_any()
            })}
        </Suspense>
    }
}
