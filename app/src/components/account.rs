//! The sidebar's footer: the project switcher, settings, and sign-out. Plain forms, so they
//! work without JavaScript; each carries the CSRF token.

use crate::api::Answer;
use crate::api::get_session;
use crate::model::admin::SessionView;
use leptos::prelude::*;

/// The browser's session (user, project, CSRF token), read once per page load and shared by
/// every component that needs it.
#[derive(Clone, Copy)]
pub struct SessionResource(pub Answer<SessionView>);

/// Creates the shared session resource; call once, at the top of the app.
pub fn provide_session() {
    provide_context(SessionResource(Answer::new(|| (), |_| get_session())));
}

/// The shared session resource (a fresh one if none was provided).
pub fn use_session() -> Answer<SessionView> {
    use_context::<SessionResource>().map_or_else(|| Answer::new(|| (), |_| get_session()), |s| s.0)
}

/// Project switcher, settings link and sign-out.
#[component]
pub fn Account() -> impl IntoView {
    let session = use_session();
    let here = leptos_router::hooks::use_location();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let Ok(s) = session.await else { return ().into_any() };
                let next = move || format!("{}{}", here.pathname.get(), here.search.get());
                let options = s
                    .projects
                    .iter()
                    .map(|(id, name)| view! { <option value=id.to_string() selected=*id == s.project>{name.clone()}</option> })
                    .collect_view();
                let logout = s.user.clone().map(|u| {
                    view! {
                        <form method="post" action="/logout" class="logout">
                            <input type="hidden" name="csrf" value=s.csrf.clone()/>
                            <span class="who">{u}</span>
                            <button type="submit">"Sign out"</button>
                        </form>
                    }
                });
                let local = (!s.login_required).then(|| view! { <p class="who">"Login off (local only)"</p> });
                view! {
                    <div class="account">
                        <form method="post" action="/project" class="switcher" aria-label="Project">
                            <input type="hidden" name="csrf" value=s.csrf.clone()/>
                            <input type="hidden" name="next" value=next/>
                            <label>"Project " <select name="project" aria-label="Project" onchange="this.form.submit()">{options}</select></label>
                            <noscript><button type="submit">"Switch"</button></noscript>
                        </form>
                        <a href="/settings" class="section">"Settings"</a>
                        {logout}
                        {local}
                    </div>
                }
                .into_any()
            })}
        </Suspense>
    }
}
